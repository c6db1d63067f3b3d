"""A real Airflow for tests: `airflow standalone` (scheduler, dag-processor, triggerer, API server, LocalExecutor)
on SQLite in the test's AIRFLOW_HOME, driven through the public REST API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from servers import free_port, wait_http

BIN = Path(sys.executable).parent


class AirflowStack:
    def __init__(self, home: Path, dags: Path, extra_env: dict[str, str] | None = None):
        self.home, self.dags = Path(home), Path(dags)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self._token: str | None = None

    def env(self) -> dict[str, str]:
        tests_dir = str(Path(__file__).resolve().parent)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH", "")) if p),
        }
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 180) -> AirflowStack:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "standalone.log", "ab")
        self.proc = subprocess.Popen([str(BIN / "airflow"), "standalone"], env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(f"{self.url}/api/v2/monitor/health", timeout=timeout, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    # -- REST ------------------------------------------------------------------------------------------------------
    @property
    def password(self) -> str:
        data = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        return data["admin"]

    def token(self) -> str:
        if self._token is None:
            r = httpx.post(f"{self.url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kw.pop("headers", {})}
        for attempt in range(3):  # the API server shares 2 cores with the scheduler and the task: be patient
            try:
                return httpx.request(method, f"{self.url}/api/v2{path}", headers=headers, timeout=60, **kw)
            except (httpx.ReadTimeout, httpx.ConnectError):
                if attempt == 2 or method not in ("GET",):
                    raise
                time.sleep(2)
        raise AssertionError("unreachable")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api("GET", f"/dags/{dag_id}").status_code == 200:
                return
            time.sleep(1)
        errors = self.api("GET", "/importErrors").json()
        raise TimeoutError(f"DAG {dag_id} not parsed after {timeout}s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        r = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        r.raise_for_status()
        return r.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise TimeoutError(f"{dag_id}/{run_id} still {state} after {timeout}s")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        r = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                     params={"full_content": True}, headers={"Accept": "application/json"})
        try:
            content = r.json().get("content", [])
        except ValueError:
            return r.text
        lines = []
        for item in content if isinstance(content, list) else [content]:
            if isinstance(item, dict):
                lines.append(" ".join(str(item.get(k, "")) for k in ("timestamp", "level", "event", "error_detail")))
            else:
                lines.append(str(item))
        return "\n".join(lines)

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}").json().get("state")

    def wait_task_state(self, dag_id: str, run_id: str, task_id: str, state: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.task_state(dag_id, run_id, task_id)
            if current == state:
                return
            if current in ("failed", "success", "upstream_failed"):
                raise AssertionError(f"{task_id} ended {current}, expected {state}")
            time.sleep(1)
        raise TimeoutError(f"{task_id} not {state} after {timeout}s")

    def hitl_details(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/hitlDetails").json()["hitl_details"]

    def answer(self, dag_id: str, run_id: str, task_id: str, option: str) -> httpx.Response:
        return self.api("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
                        json={"chosen_options": [option], "params_input": {}})

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        r = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                     params={"deserialize": True, "stringify": False})
        r.raise_for_status()
        return r.json()["value"]
