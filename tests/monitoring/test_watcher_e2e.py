"""Event-driven retraining under the real scheduler and triggerer: a DAG scheduled on an Asset whose AssetWatcher
runs DriftEventTrigger over a folder of batches. The trigger only waits (one event per burst of new files); the
triggered task computes drift on the worker. A harmless shift starts a run that finds nothing to act on, a drifted
batch starts one run that finds the drift, and a burst of batches within the cool-down starts exactly one run that
sees all of them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from monitoring_helpers import drifted, harmless, save_profile, write_batch

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DAG_ID = "agentic_test_monitoring_retraining"
WATCH = Path(os.environ["AIRFLOW_HOME"]) / "watch"
BATCHES = WATCH / "batches"
COOLDOWN = 8  # as in tests/dags/agentic_test_monitoring_dags.py


def _log(stack) -> str:
    path = stack.home / "standalone.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _wait_log(stack, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in _log(stack):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{needle!r} not in the standalone log after {timeout}s")


def _runs(stack) -> list[dict]:
    r = stack.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"order_by": "run_after"})
    r.raise_for_status()
    return r.json()["dag_runs"]


def _wait_runs(stack, count: int, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _runs(stack)
        if len(runs) >= count:
            return runs
        time.sleep(0.5)
    raise TimeoutError(f"{DAG_ID}: {len(_runs(stack))} run(s) after {timeout}s, expected {count}")


def _succeeded(stack, run) -> None:
    state = stack.wait_run(DAG_ID, run["dag_run_id"])
    if state != "success":
        errors = [line for line in _log(stack).splitlines() if "retrain" in line or "ERROR" in line or "rror" in line]
        raise AssertionError(f"{run['dag_run_id']} {state}:\n"
                             f"{stack.task_log(DAG_ID, run['dag_run_id'], 'retrain')[-3000:]}\n"
                             + "\n".join(errors[-40:]))


@pytest.fixture(scope="module")
def watching(airflow_stack):
    save_profile(WATCH / "profile.npz")
    BATCHES.mkdir(parents=True, exist_ok=True)
    airflow_stack.wait_for_dag(DAG_ID)
    airflow_stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
    # The watcher registers after the unpaused DAG is parsed again; its first listing is the baseline.
    _wait_log(airflow_stack, f"DriftEventTrigger watching file://{BATCHES}", timeout=120)
    time.sleep(1.5)
    return airflow_stack


def test_harmless_shift_run_finds_nothing_to_act_on(watching):
    write_batch(BATCHES, "harmless.parquet", harmless())
    _wait_log(watching, "harmless.parquet: new batch file", timeout=30)
    (run,) = _wait_runs(watching, 1)
    _succeeded(watching, run)
    result = watching.xcom(DAG_ID, run["dag_run_id"], "retrain")
    assert result == {"events": 1, "files": ["harmless.parquet"], "drifted": []}


def test_drifted_batch_starts_one_run(watching):
    before = len(_runs(watching))
    write_batch(BATCHES, "drifted.parquet", drifted(seed=3))
    run = _wait_runs(watching, before + 1)[-1]
    _succeeded(watching, run)
    result = watching.xcom(DAG_ID, run["dag_run_id"], "retrain")
    assert result == {"events": 1, "files": ["drifted.parquet"], "drifted": [["x1"]]}


def test_burst_within_cooldown_starts_exactly_one_run(watching):
    before = len(_runs(watching))
    for k in range(4):
        write_batch(BATCHES, f"burst{k}.parquet", drifted(seed=30 + k))
        time.sleep(0.7)
    runs = _wait_runs(watching, before + 1)
    run = runs[-1]
    _succeeded(watching, run)
    result = watching.xcom(DAG_ID, run["dag_run_id"], "retrain")
    assert result["events"] == 1
    assert result["files"] == [f"burst{k}.parquet" for k in range(4)]
    assert result["drifted"] == [["x1"]] * 4
    time.sleep(COOLDOWN + 3)
    assert len(_runs(watching)) == before + 1
