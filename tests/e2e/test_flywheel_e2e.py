"""The flywheel under the real scheduler, triggerer and DAG processor (the session's `airflow standalone`), with the
example DAGs of dags/ and a real MLflow server: a drifted batch lands -> the Data Steward publishes it -> the
champion scores it and the monitoring agent asks for retraining -> the AssetWatcher fires -> agentic_retraining runs
-> a new version holds `champion` and `previous` holds the old one. A harmless shift starts no retraining; a burst
of drift reports starts one run that sees all of them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from airflow_agentic.flywheel import demo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

HOME = Path(os.environ["AIRFLOW_HOME"])
DATA_ROOT = f"file://{HOME}/agentic-data"  # the example DAGs' default
COOLDOWN = 5  # [agentic] drift_cooldown default in dags/agentic_retraining.py


def _retraining_runs(api):
    """Runs the drift Asset started (the dags_test area runs the same DAG by hand in this session's database)."""
    return [r for r in api.runs("agentic_retraining") if r.get("run_type") == "asset_triggered"]


def _wait_retraining_runs(api, count, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _retraining_runs(api)
        if len(runs) >= count:
            return runs
        time.sleep(1)
    raise TimeoutError(f"fewer than {count} asset-triggered agentic_retraining run(s) after {timeout}s")


def _monitoring_decision(api, count):
    decision, numbers = demo.monitoring_decision(api, count, timeout=240)
    return decision.get("action"), numbers["accuracy"]


@pytest.fixture(scope="module")
def flywheel(airflow_stack, mlflow_server):
    # The stack runs with [agentic] mlflow_tracking_uri = the session's MLflow server (tests/conftest.py).
    first = demo.bootstrap(DATA_ROOT, mlflow_server.url)
    api = demo.AirflowAPI(airflow_stack.url, airflow_stack.home)
    for dag_id in demo.DAG_IDS:
        api.wait_dag(dag_id)
        api.unpause(dag_id)
    demo.wait_watcher(airflow_stack.home, DATA_ROOT)
    monitoring = len(api.runs("agentic_monitoring"))
    return {"api": api, "uri": mlflow_server.url, "first": first["champion_after"], "monitoring": monitoring}


def test_harmless_shift_starts_no_retraining(flywheel):
    from airflow_agentic.flywheel.streams import make_batch

    api = flywheel["api"]
    run_id, _ = demo.land(api, DATA_ROOT, "0001", make_batch("harmless", seed=11, start_id=100_000))
    assert api.wait_run("agentic_ingest", run_id, 240) == "success"
    flywheel["monitoring"] += 1
    action, accuracy = _monitoring_decision(api, flywheel["monitoring"])
    assert action != "request_retraining", (action, accuracy)
    time.sleep(COOLDOWN + 3)
    assert _retraining_runs(api) == []
    assert demo.aliases(flywheel["uri"])["champion"] == flywheel["first"]


def test_drifted_batch_makes_a_new_champion(flywheel):
    from airflow_agentic.flywheel.streams import make_batch

    api, uri = flywheel["api"], flywheel["uri"]
    _, landed = demo.land(api, DATA_ROOT, "0002", make_batch("drifted", seed=12, start_id=200_000))
    champion, serving = demo.wait_champion_change(uri, flywheel["first"], timeout=300)
    print(f"drifted batch landed -> new champion v{champion} serving in {serving - landed:.1f}s")
    flywheel["monitoring"] += 1
    action, accuracy = _monitoring_decision(api, flywheel["monitoring"])
    assert action == "request_retraining" and accuracy < 0.7
    (run,) = _wait_retraining_runs(api, 1)
    assert api.wait_run("agentic_retraining", run["dag_run_id"], 240) == "success"
    turn = api.xcom("agentic_retraining", run["dag_run_id"], "continuous_learning")
    assert turn["status"] == "promoted" and turn["champion_after"] == champion
    event = api.xcom("agentic_retraining", run["dag_run_id"], "continuous_learning", "flywheel_turn")["drift_event"]
    assert event["files"] == ["0002.json"]
    aliases = demo.aliases(uri)
    assert aliases["champion"] == champion != flywheel["first"]
    assert aliases["previous"] == flywheel["first"]
    flywheel["clean"] = f"{DATA_ROOT}/clean/0002/clean.parquet"


def test_burst_of_drift_reports_starts_one_retraining(flywheel):
    api = flywheel["api"]
    reports = demo.data_paths(DATA_ROOT)["reports"]
    before = len(_retraining_runs(api))
    for k in range(3):
        report = {"decision": {"action": "request_retraining", "reasons": [f"burst {k}"]}, "batch": f"burst{k}",
                  "clean": [flywheel["clean"]]}
        tmp = reports / f".burst{k}.tmp"
        tmp.write_text(json.dumps(report))
        os.replace(tmp, reports / f"burst{k}.json")
        time.sleep(0.7)
    runs = _wait_retraining_runs(api, before + 1)
    run = runs[before]
    assert api.wait_run("agentic_retraining", run["dag_run_id"], 240) == "success"
    event = api.xcom("agentic_retraining", run["dag_run_id"], "continuous_learning", "flywheel_turn")["drift_event"]
    assert event["events"] == 1 and event["files"] == ["burst0.json", "burst1.json", "burst2.json"]
    time.sleep(COOLDOWN + 3)
    assert len(_retraining_runs(api)) == before + 1
