"""Parallel HPO on the production topology (issue 15): ``agentic_model_search``'s mapped trial tasks run on BOTH Celery
workers, fill one Optuna study on the stack's PostgreSQL, and the study's best equals a serial run of the same plan
on the same data; the best is registered once.

Why 4 mapped tasks for 2 workers: Airflow's Celery executor sets ``worker_prefetch_multiplier = 1`` and
``task_acks_late = True`` (the provider's defaults, which the stack keeps), so a worker holds at most ``concurrency x
1 = 2`` unacknowledged task messages, and a message is acknowledged only when its task ends. With 2 queued tasks one
worker may legally take both; with 4 queued at once the first worker to fetch can take only 2, so the other 2 must go
to the other worker (it is idle and consuming: the test first waits until both answer a Celery ping). Which worker
ran a task is read from the process trees while it runs (``task_worker``), else from the worker log line that names
the TI id: both workers share one host name, so the TI's ``hostname`` cannot tell them apart.

The test does not depend on the other stack tests' state: it waits (bounded) for both workers to be back after
test_stack_e2e.py killed one, and uses its own data, model name and study names.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from airflow_agentic.flywheel import demo

pytestmark = [pytest.mark.e2e, pytest.mark.stack, pytest.mark.integration]

DAG_ID = "agentic_model_search"
N_WORKERS, PER_WORKER, FAMILY, METRIC = 4, 2, "logistic_regression", "accuracy"
WORKERS = ("worker1", "worker2")


def wait_workers_ready(stack: dict, timeout: float = 120) -> set[str]:
    """Both Celery workers alive (their pids, re-read from stack.json: a supervisor may have restarted one) and
    answering a ping on the broker. Updates ``stack["processes"]`` in place for ``task_worker``."""
    import psutil
    from celery import Celery

    app = Celery(broker=stack["env"]["AIRFLOW__CELERY__BROKER_URL"])
    deadline = time.monotonic() + timeout
    ready: set[str] = set()
    while time.monotonic() < deadline:
        info = json.loads((Path(stack["root"]) / "stack.json").read_text())
        stack["processes"].update({w: info["processes"][w] for w in WORKERS})
        alive = {w for w in WORKERS if psutil.pid_exists(stack["processes"][w])}
        try:
            ready = {name.split("@")[0] for reply in app.control.ping(timeout=2) for name in reply} & alive
        except Exception:  # noqa: BLE001 - the broker may be restarting too
            ready = set()
        if ready == set(WORKERS):
            return ready
        time.sleep(2)
    pytest.fail(f"both Celery workers not ready after {timeout:.0f} s: ready {sorted(ready)}")


def training_frame(rows: int = 600, seed: int = 7):
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=rows, n_features=6, n_informative=4, flip_y=0.05, random_state=seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["label"] = y
    return frame


def mapped_tis(api, run_id: str) -> list[dict]:
    return api.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/trials/listMapped")["task_instances"]


def run_watching_workers(api, task_worker, run_id: str, timeout: float = 240) -> tuple[str, dict[int, str]]:
    """Wait for the run to end; meanwhile note which worker's process tree runs each mapped trial task."""
    ran_on: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            return state, ran_on
        try:
            tis = mapped_tis(api, run_id)
        except Exception:  # noqa: BLE001 - not expanded yet
            tis = []
        for ti in tis:
            if ti["state"] == "running" and ti["map_index"] not in ran_on:
                worker = task_worker(ti["id"])
                if worker:
                    ran_on[ti["map_index"]] = worker
        time.sleep(0.3)
    raise TimeoutError(f"{DAG_ID} {run_id} not done after {timeout:.0f} s")


def worker_logged(stack: dict, ti_id: str) -> str | None:
    """The worker whose log ("Executing workload in Celery: ... ti=TaskInstanceDTO(id=UUID('<id>')") took the TI."""
    for worker in WORKERS:
        for log in Path(stack["logs"]).glob(f"{worker}*.log"):
            if f"id=UUID('{ti_id}')" in log.read_text(errors="replace"):
                return worker
    return None


def test_mapped_trials_share_one_study_on_both_workers(stack, task_worker):
    import optuna
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    from airflow_agentic.data import io as dio
    from airflow_agentic.models.hpo import PLAN_INDEX, HPOConfig, best_trial, run_planned_trials
    from airflow_agentic.operators._mlops import load_dataset

    wait_workers_ready(stack)
    tag = uuid.uuid4().hex[:8]
    model = f"model-search-{tag}"
    data = f"{stack['env']['AIRFLOW__AGENTIC__DATA_ROOT']}/model-search/{tag}/train.parquet"
    dio.write_frame(training_frame(), data)
    api = demo.AirflowAPI(stack["urls"]["airflow"], Path(stack["home"]), username=stack["login"]["user"])
    api.wait_dag(DAG_ID, 120)
    api.unpause(DAG_ID)
    run_id = api.trigger(DAG_ID, {"data": data, "model_name": model, "family": FAMILY, "n_workers": N_WORKERS,
                                  "trials_per_worker": PER_WORKER, "metric": METRIC})
    state, ran_on = run_watching_workers(api, task_worker, run_id)
    for ti in mapped_tis(api, run_id):  # a task the polling missed: its worker logged the TI id when it took it
        ran_on.setdefault(ti["map_index"], worker_logged(stack, ti["id"]))
    print(f"mapped trial tasks ran on {dict(sorted(ran_on.items()))}")
    assert state == "success", [(t["task_id"], t["map_index"], t["state"], t["try_number"]) for t in api.call(
        "GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]]
    assert [t["state"] for t in mapped_tis(api, run_id)] == ["success"] * N_WORKERS
    assert set(ran_on.values()) == set(WORKERS), ran_on

    # The study the mapped tasks filled: every plan position once, by the worker the plan gives it.
    storage = stack["env"]["AIRFLOW__AGENTIC__OPTUNA_STORAGE"]
    study = optuna.load_study(study_name=f"{model}-{run_id}", storage=storage)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    by_position = {t.user_attrs[PLAN_INDEX]: (t.params, t.value) for t in complete}
    assert sorted(by_position) == list(range(N_WORKERS * PER_WORKER)), sorted(by_position)

    # The same plan, serially in this process, on the same data and storage: the same trials and the same best.
    serial = run_planned_trials(f"{model}-serial", storage, FAMILY, load_dataset(data, "label"),
                                N_WORKERS * PER_WORKER, worker_id=0, n_workers=1,
                                config=HPOConfig(cv_folds=3, seed=0, metric=METRIC), log_to_mlflow=False)
    serial_trials = optuna.load_study(study_name=f"{model}-serial", storage=storage).get_trials(
        deepcopy=False, states=(TrialState.COMPLETE,))
    assert {t.user_attrs[PLAN_INDEX]: (t.params, t.value) for t in serial_trials} == by_position
    best = best_trial(complete)
    assert (best.params, best.value) == (serial.best_params, serial.best_score)

    # Registered once, the study's best as the challenger.
    registered = api.xcom(DAG_ID, run_id, "register")
    assert registered["family"] == FAMILY and registered["cv_score"] == pytest.approx(best.value)
    client = MlflowClient(stack["urls"]["mlflow"])
    versions = client.search_model_versions(f"name='{model}'")
    assert [v.version for v in versions] == [str(registered["version"])]
    assert client.get_model_version_by_alias(model, "challenger").version == str(registered["version"])
