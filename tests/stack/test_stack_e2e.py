"""The flywheel end to end on the production topology (`./run stack`, scripts/stack.py): PostgreSQL, Redis, two
Celery workers, MLflow on PostgreSQL with artifacts on S3, and the flywheel's data on S3 (moto's server standing in).
The scenarios are tests/flywheel_scenarios.py's, the same as on `airflow standalone` (tests/e2e); the drifted batch's
retraining also loses its Celery worker (SIGKILL, as a machine would): the task is retried, one new version is
registered and `previous` is the old champion. Then the faults only a distributed stack has: the scheduler killed
during a run, Redis (the broker) and PostgreSQL (every metadata store) killed between batches. Nothing here starts a
process: the stack's supervisor restarts whatever dies (its restart policy, like compose's `unless-stopped`), and the
tests wait for it in stack.json (the new pid in `processes`, `restarts` + 1)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

import flywheel_scenarios as scenarios
from airflow_agentic.flywheel import demo

pytestmark = [pytest.mark.e2e, pytest.mark.stack, pytest.mark.integration]


@pytest.fixture(scope="module")
def flywheel(stack):
    data_root = stack["env"]["AIRFLOW__AGENTIC__DATA_ROOT"]
    assert data_root.startswith("s3://")
    api = demo.AirflowAPI(stack["urls"]["airflow"], Path(stack["home"]), username=stack["login"]["user"])
    return {**scenarios.prepare(api, Path(stack["home"]), data_root, stack["urls"]["mlflow"],
                                triggerer_log=Path(stack["logs"]) / "triggerer.log"), "stack": stack}


def _kill_worker_mid_retraining(flywheel, task_worker):
    import psutil

    stack = flywheel["stack"]

    def fault(api, run):
        path = f"/dags/agentic_retraining/dagRuns/{run['dag_run_id']}/taskInstances/continuous_learning"
        deadline = time.monotonic() + 300
        worker = None
        while worker is None:
            assert time.monotonic() < deadline, "the retraining task never ran on a worker"
            ti = api.call("GET", path)
            worker = task_worker(ti["id"]) if ti["state"] == "running" else None
            time.sleep(0.3)
        time.sleep(3)  # into the turn (reading the batches, training), not at its first line
        flywheel["restarts_before"] = _state(stack)["restarts"]
        leader = psutil.Process(stack["processes"][worker])
        family = [leader, *leader.children(recursive=True)]
        os.killpg(leader.pid, signal.SIGKILL)  # the whole worker at once, as a lost machine
        for proc in family:
            try:
                proc.kill()
            except psutil.Error:
                pass
        flywheel["killed"] = {"worker": worker, "ti": path}

    return fault


def test_harmless_shift_starts_no_retraining(flywheel):
    scenarios.harmless_shift_starts_no_retraining(flywheel)


def test_drifted_batch_makes_a_new_champion_despite_a_killed_worker(flywheel, task_worker):
    import psutil

    scenarios.drifted_batch_makes_a_new_champion(flywheel, during_retraining=_kill_worker_mid_retraining(flywheel, task_worker))
    killed = flywheel["killed"]
    ti = flywheel["api"].call("GET", killed["ti"])
    assert ti["state"] == "success" and ti["try_number"] == 2, ti  # the first try was lost with its worker
    stack = flywheel["stack"]
    survivor = "worker2" if killed["worker"] == "worker1" else "worker1"
    assert not psutil.pid_exists(stack["processes"][killed["worker"]])
    assert psutil.Process(stack["processes"][survivor]).is_running()
    _wait_restarted(stack, killed["worker"], flywheel["restarts_before"])  # the supervisor brought it back


def test_burst_of_drift_reports_starts_one_retraining(flywheel):
    scenarios.burst_of_drift_reports_starts_one_retraining(flywheel)


def test_scheduler_restarted_during_a_run(flywheel):
    """The scheduler dies (SIGKILL) while a batch's ingest run is running; the supervisor starts a new one, which
    takes over: the run and the monitoring run its clean batch schedules both finish."""
    from airflow_agentic.flywheel.streams import make_batch

    api, stack = flywheel["api"], flywheel["stack"]
    run_id, _ = demo.land(api, flywheel["data_root"], "0003", make_batch("drifted", seed=13, start_id=300_000))
    deadline = time.monotonic() + 120
    while api.call("GET", f"/dags/agentic_ingest/dagRuns/{run_id}")["state"] != "running":
        assert time.monotonic() < deadline, "the ingest run never started"
        time.sleep(0.3)
    _kill_and_wait_restarted(stack, "scheduler")
    assert api.wait_run("agentic_ingest", run_id, 300) == "success"
    flywheel["monitoring"] += 1
    action, accuracy = scenarios.monitoring_decision(api, flywheel["monitoring"])
    assert action is not None and accuracy is not None


def test_redis_restarted_between_batches(flywheel):
    """The Celery broker dies and is restarted empty (no persistence): the scheduler and both workers reconnect, the
    next batch goes through ingest and monitoring."""
    from airflow_agentic.flywheel.streams import make_batch

    api = flywheel["api"]
    _kill_and_wait_restarted(flywheel["stack"], "redis")
    run_id, _ = demo.land(api, flywheel["data_root"], "0004", make_batch("drifted", seed=14, start_id=400_000))
    assert api.wait_run("agentic_ingest", run_id, 300) == "success"
    flywheel["monitoring"] += 1
    action, accuracy = scenarios.monitoring_decision(api, flywheel["monitoring"])
    assert action is not None and accuracy is not None


def test_postgres_restarted_between_batches(flywheel):
    """PostgreSQL (Airflow's metadata database, MLflow's store, Optuna's) crashes (SIGKILL of the postmaster's
    group) between batches; the supervisor restarts it (it recovers from its WAL). The Airflow components that lose
    their connection and exit are restarted by the policy: in every run so far the scheduler, dag-processor and
    triggerer (exit 1 within seconds), while the api-server, MLflow and both Celery workers reconnect. MLflow still
    names the champion from before, and the next batch goes through ingest and monitoring."""
    from airflow_agentic.flywheel.streams import make_batch

    api, stack = flywheel["api"], flywheel["stack"]
    deadline = time.monotonic() + 300  # a retraining the earlier drifted batches started may promote a champion
    while any(r["state"] in ("queued", "running") for r in scenarios.retraining_runs(api)):
        assert time.monotonic() < deadline, "a retraining run is still going"
        time.sleep(2)
    champion = demo.aliases(flywheel["uri"])["champion"]
    before = _kill_and_wait_restarted(stack, "postgres")
    health = _stack_script().airflow_healthy
    deadline = time.monotonic() + 180
    while not health(stack["urls"]["airflow"]):  # metadatabase, scheduler, triggerer, dag-processor
        assert time.monotonic() < deadline, "Airflow not healthy again after PostgreSQL's restart"
        time.sleep(1)
    assert demo.aliases(flywheel["uri"])["champion"] == champion  # MLflow answers from its restarted store
    run_id, _ = demo.land(api, flywheel["data_root"], "0005", make_batch("drifted", seed=15, start_id=500_000))
    assert api.wait_run("agentic_ingest", run_id, 300) == "success"
    flywheel["monitoring"] += 1
    action, accuracy = scenarios.monitoring_decision(api, flywheel["monitoring"])
    assert action is not None and accuracy is not None
    after = _state(stack)["restarts"]
    died = sorted(name for name in after if after[name] > before[name])
    print(f"restarted after PostgreSQL's crash: {died}")
    assert "postgres" in died


def _stack_script():
    from servers import stack_script

    return stack_script()


def _state(stack) -> dict:
    """stack.json as the supervisor last wrote it (atomically: never half a file)."""
    return json.loads((Path(stack["root"]) / "stack.json").read_text())


def _wait_restarted(stack, name: str, before: dict[str, int], timeout: float = 120) -> dict:
    """Wait until the supervisor has restarted ``name`` (its count above ``before``); the fixture's ``processes``
    then name the new pids (``task_worker`` reads them)."""
    deadline = time.monotonic() + timeout
    while (state := _state(stack))["restarts"][name] <= before[name]:
        assert time.monotonic() < deadline, f"{name} not restarted by the supervisor after {timeout:.0f}s"
        time.sleep(0.5)
    assert state["processes"][name] != stack["processes"][name]
    stack["processes"].update(state["processes"])
    return state


def _kill_and_wait_restarted(stack, name: str) -> dict[str, int]:
    """SIGKILL a component's process group, as a crash, and wait for the supervisor to start it again; the restart
    counts from before the kill."""
    state = _state(stack)
    stack["processes"].update(state["processes"])
    os.killpg(state["processes"][name], signal.SIGKILL)
    _wait_restarted(stack, name, state["restarts"])
    return state["restarts"]
