"""The flywheel end to end on the production topology (`./run stack`, scripts/stack.py): PostgreSQL, Redis, two
Celery workers, MLflow on PostgreSQL with artifacts on S3, and the flywheel's data on S3 (moto's server standing in).
The scenarios are tests/flywheel_scenarios.py's, the same as on `airflow standalone` (tests/e2e); the drifted batch's
retraining also loses its Celery worker (SIGKILL, as a machine would): the task is retried on the other worker, one
new version is registered and `previous` is the old champion. Then the faults only a distributed stack has: the
scheduler killed and restarted during a run, Redis (the broker) restarted between batches."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import flywheel_scenarios as scenarios
from airflow_agentic.flywheel import demo

pytestmark = [pytest.mark.e2e, pytest.mark.stack, pytest.mark.integration]

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


@pytest.fixture(scope="module")
def flywheel(stack):
    data_root = stack["env"]["AIRFLOW__AGENTIC__DATA_ROOT"]
    assert data_root.startswith("s3://")
    api = demo.AirflowAPI(stack["urls"]["airflow"], Path(stack["home"]), username=stack["login"]["user"])
    return {**scenarios.prepare(api, Path(stack["home"]), data_root, stack["urls"]["mlflow"],
                                triggerer_log=Path(stack["logs"]) / "triggerer.log"), "stack": stack}


def _worker_running(stack, ti_id: str) -> str | None:
    """The Celery worker whose process tree runs the task instance (its runner's title names the TI id)."""
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


def _kill_worker_mid_retraining(flywheel):
    import psutil

    stack = flywheel["stack"]

    def fault(api, run):
        path = f"/dags/agentic_retraining/dagRuns/{run['dag_run_id']}/taskInstances/continuous_learning"
        deadline = time.monotonic() + 300
        worker = None
        while worker is None:
            assert time.monotonic() < deadline, "the retraining task never ran on a worker"
            ti = api.call("GET", path)
            worker = _worker_running(stack, ti["id"]) if ti["state"] == "running" else None
            time.sleep(0.3)
        time.sleep(3)  # into the turn (reading the batches, training), not at its first line
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


def test_drifted_batch_makes_a_new_champion_despite_a_killed_worker(flywheel):
    import psutil

    scenarios.drifted_batch_makes_a_new_champion(flywheel, during_retraining=_kill_worker_mid_retraining(flywheel))
    killed = flywheel["killed"]
    ti = flywheel["api"].call("GET", killed["ti"])
    assert ti["state"] == "success" and ti["try_number"] == 2, ti  # the first try was lost with its worker
    survivor = "worker2" if killed["worker"] == "worker1" else "worker1"
    assert not psutil.pid_exists(flywheel["stack"]["processes"][killed["worker"]])
    assert psutil.Process(flywheel["stack"]["processes"][survivor]).is_running()  # it ran the retry


def test_burst_of_drift_reports_starts_one_retraining(flywheel):
    scenarios.burst_of_drift_reports_starts_one_retraining(flywheel)


@pytest.fixture(scope="module")
def restarted(flywheel):
    """Processes the tests start in place of killed ones (outside the stack's supervisor): stopped at the end."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        demo.stop_process(proc)


def test_scheduler_restarted_during_a_run(flywheel, restarted):
    """The scheduler dies (SIGKILL) while a batch's ingest run is running; a new one takes over: the run and the
    monitoring run its clean batch schedules both finish."""
    from airflow_agentic.flywheel.streams import make_batch

    api, stack = flywheel["api"], flywheel["stack"]
    run_id, _ = demo.land(api, flywheel["data_root"], "0003", make_batch("drifted", seed=13, start_id=300_000))
    deadline = time.monotonic() + 120
    while api.call("GET", f"/dags/agentic_ingest/dagRuns/{run_id}")["state"] != "running":
        assert time.monotonic() < deadline, "the ingest run never started"
        time.sleep(0.3)
    _restart(stack, "scheduler", restarted)
    assert api.wait_run("agentic_ingest", run_id, 300) == "success"
    flywheel["monitoring"] += 1
    action, accuracy = scenarios.monitoring_decision(api, flywheel["monitoring"])
    assert action is not None and accuracy is not None


def test_redis_restarted_between_batches(flywheel, restarted):
    """The Celery broker restarts (empty: no persistence): the scheduler and both workers reconnect, the next batch
    goes through ingest and monitoring."""
    from airflow_agentic.flywheel.streams import make_batch

    api = flywheel["api"]
    _restart(flywheel["stack"], "redis", restarted)
    run_id, _ = demo.land(api, flywheel["data_root"], "0004", make_batch("drifted", seed=14, start_id=400_000))
    assert api.wait_run("agentic_ingest", run_id, 300) == "success"
    flywheel["monitoring"] += 1
    action, accuracy = scenarios.monitoring_decision(api, flywheel["monitoring"])
    assert action is not None and accuracy is not None


def _restart(stack, name: str, restarted: list) -> None:
    """SIGKILL a component's process group, then start it again (same command and environment) in its place."""
    import psutil

    leader = psutil.Process(stack["processes"][name])
    os.killpg(leader.pid, signal.SIGKILL)
    psutil.wait_procs([leader], timeout=10)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW"))}, **stack["env"]}
    log = open(Path(stack["logs"]) / f"{name}-restarted.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(stack["commands"][name], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=stack["root"])
    restarted.append(proc)
    stack["processes"][name] = proc.pid
