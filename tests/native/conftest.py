"""Fixtures of tests/native: the DAGs of this folder in the test dags folder, a loopback webhook receiver and a
scripted LLM reachable through an Airflow connection."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session", autouse=True)
def _native_dags():
    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    for src in (HERE / "dags").glob("*.py"):
        shutil.copy(src, folder / src.name)


class WebhookReceiver:
    """Records every POST; `status` is what it answers."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")
                with receiver.arrived:
                    receiver.requests.append({"path": self.path, "json": json.loads(body or b"null")})
                    receiver.arrived.notify_all()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, n: int, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.requests)} of {n} webhook calls after {timeout}s")
                self.arrived.wait(left)
            return list(self.requests)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def webhook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture()
def native_llm(monkeypatch):
    from llm_server import ScriptedLLM

    with ScriptedLLM() as server:
        monkeypatch.setenv("AIRFLOW_CONN_NATIVE_LLM", json.dumps({
            "conn_type": "agentic_llm", "host": server.base_url,
            "extra": {"model": "scripted-model", "timeout": 10, "max_retries": 0}}))
        yield server


@pytest.fixture(scope="session")
def native_stack(tmp_path_factory):
    """`airflow standalone` (scheduler, triggerer, API server) on an Airflow home of its own, with this folder's
    DAGs and the `native_webhook` connection pointing at a loopback receiver. Its own home: the session's other
    stack (tests/conftest.py) may be running on the shared one."""
    import subprocess
    import sys

    from airflow_stack import AirflowStack

    home = tmp_path_factory.mktemp("native-airflow")
    dags = home / "dags"
    dags.mkdir()
    for src in (HERE / "dags").glob("*.py"):
        shutil.copy(src, dags / src.name)
    database = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
    done = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], capture_output=True,
                          text=True, env={**os.environ, "AIRFLOW_HOME": str(home), **database})
    assert done.returncode == 0, done.stderr[-3000:]
    with WebhookReceiver() as receiver:
        conn = json.dumps({"conn_type": "http", "host": f"{receiver.url}/hooks/people"})
        stack = AirflowStack(home, dags, extra_env={**database, "AIRFLOW_CONN_NATIVE_WEBHOOK": conn}).start()
        try:
            yield stack, receiver
        finally:
            stack.stop()
