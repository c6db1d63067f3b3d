"""A real Airflow for the UI tests, with the FAB auth manager so that a role can be limited to one DAG.

`airflow standalone` forces the simple auth manager (whose roles cover every DAG), so the components are started one
by one: the API server (which mounts the plugin) and the scheduler (LocalExecutor). No DAG processor: the DAGs are
serialised once before the start (airflow_setup.py). No triggerer: a task waiting for a person holds nothing in 3.3.
The REST helpers come from ``AirflowStack``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from airflow_stack import AirflowStack
from servers import free_port, wait_http

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


class FabAirflowStack(AirflowStack):
    def __init__(self, home: Path, dags: Path, *, readable_dag_id: str, user: str = "admin",
                 extra_env: dict[str, str] | None = None):
        super().__init__(home, dags, extra_env={
            "AIRFLOW__CORE__AUTH_MANAGER": FAB,
            # SQLite serialises writers; on a busy machine its default 5 s lock wait fails requests at random.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{Path(home).resolve() / 'airflow.db'}?timeout=60",
            "AIRFLOW__CORE__PARALLELISM": "3",  # two cores: more tasks at once only fight over them
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),  # other stacks may hold the default 8793
            # Every component must sign and check the same tokens.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            **(extra_env or {}),
        })
        self.readable_dag_id = readable_dag_id
        self.user = user
        self.procs: list[subprocess.Popen] = []

    @property
    def password(self) -> str:
        from airflow_setup import PASSWORDS

        return PASSWORDS[self.user]

    def token(self) -> str:
        if self._token is None:
            r = httpx.post(f"{self.url}/auth/token", json={"username": self.user, "password": self.password},
                           timeout=60)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def as_user(self, user: str) -> FabAirflowStack:
        """The same stack, with REST calls made as another user."""
        other = object.__new__(FabAirflowStack)
        other.__dict__.update(self.__dict__, user=user, _token=None)
        return other

    def env(self) -> dict[str, str]:
        env = super().env()
        # The plugin finds MLflow as the DAGs do, here through the file $AIRFLOW_HOME/agentic/mlflow_uri.
        env.pop("MLFLOW_TRACKING_URI", None)
        return env

    def prepare(self) -> FabAirflowStack:
        """Migrate the database, create the users, serialise the DAGs (blocking)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "setup.log", "ab") as log:
            done = subprocess.run([str(BIN / "python"), str(HERE / "airflow_setup.py"), self.readable_dag_id],
                                  env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            raise RuntimeError(f"Airflow set-up failed: {(self.home / 'setup.log').read_text()[-3000:]}")
        return self

    def launch(self) -> FabAirflowStack:
        """Start the components without waiting for them."""
        for component in ("api-server", "scheduler"):
            log = open(self.home / f"{component}.log", "ab")
            self.procs.append(subprocess.Popen([str(BIN / "airflow"), component], env=self.env(), stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))
        self.proc = self.procs[0]
        return self

    def wait_ready(self, timeout: float = 240) -> FabAirflowStack:
        wait_http(f"{self.url}/api/v2/monitor/health", timeout=timeout, proc=self.proc)
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(5)  # nothing here needs a graceful end
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def logs(self, chars: int = 3000) -> str:
        logs = sorted(self.home.glob("*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in logs)
