"""The production topology (`./run stack`, scripts/stack.py) for every test of this folder: ONE stack per session,
started once and stopped at the end (``AGENTIC_STACK_ROOT``: use the one already running there and leave it up)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(REPO / "scripts" / "stack.py")]


@pytest.fixture(scope="session")
def stack():
    """The stack in a scratch folder (``AGENTIC_STACK_ROOT``: use the one already running there and leave it up)."""
    given = os.environ.get("AGENTIC_STACK_ROOT")
    if given:
        root = Path(given)
    else:  # not under pytest's tmp folder (mode 700): PostgreSQL runs as its own user when we are root
        scratch = Path(tempfile.mkdtemp(prefix="agentic-stack-"))
        scratch.chmod(0o755)
        root = scratch / "stack"
    began = time.monotonic()
    if not given:
        # The test session's Airflow settings (SQLite, LocalExecutor, its dags folder) are not the stack's.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW"))}
        done = subprocess.run([*STACK, "--detach", "--root", str(root)], env=env, capture_output=True, text=True,
                              timeout=900)
        if done.returncode:
            pytest.fail(f"./run stack did not start:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    info = json.loads((root / "stack.json").read_text())
    print(f"stack up in {info['started_seconds']} s (fixture {time.monotonic() - began:.1f} s)")
    previous = os.environ.get("AIRFLOW_CONN_AWS_DEFAULT")
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = info["env"]["AIRFLOW_CONN_AWS_DEFAULT"]  # this process writes to S3
    yield info
    if previous is None:
        os.environ.pop("AIRFLOW_CONN_AWS_DEFAULT", None)
    else:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = previous
    if not given:
        stopping = time.monotonic()
        subprocess.run([*STACK, "--stop", "--root", str(root)], capture_output=True, timeout=300)
        print(f"stack stopped in {time.monotonic() - stopping:.1f} s")
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def task_worker(stack):
    """``task_worker(ti_id)``: the Celery worker (``worker1``, ``worker2``) whose process tree runs the task instance
    (its runner's title names the TI id), None when none does."""
    return lambda ti_id: _worker_running(stack, ti_id)


def _worker_running(stack, ti_id: str) -> str | None:
    import psutil

    for name in ("worker1", "worker2"):
        try:
            family = psutil.Process(stack["processes"][name]).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for child in family:
            try:
                if ti_id in " ".join(child.cmdline()):
                    return name
            except psutil.Error:
                pass
    return None
