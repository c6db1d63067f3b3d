"""The flywheel's end-to-end scenarios, one implementation for every topology they run on: ``airflow standalone`` on
SQLite with local data (tests/e2e) and the production stack, Postgres + Celery + S3 (tests/stack).

A drifted batch lands -> the Data Steward publishes it -> the champion scores it and the monitoring agent asks for
retraining -> the AssetWatcher fires -> agentic_retraining runs -> a new version holds `champion` and `previous` holds
the old one. A harmless shift starts no retraining; a burst of drift reports starts one run that sees all of them.

``flywheel`` is the dict :func:`prepare` returns; the scenarios run in this order and update it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from airflow_agentic.flywheel import demo

COOLDOWN = 5  # [agentic] drift_cooldown default in dags/agentic_retraining.py


def retraining_runs(api):
    """Runs the drift Asset started (the dags_test area runs the same DAG by hand in this session's database)."""
    return [r for r in api.runs("agentic_retraining") if r.get("run_type") == "asset_triggered"]


def wait_retraining_runs(api, count, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = retraining_runs(api)
        if len(runs) >= count:
            return runs
        time.sleep(1)
    raise TimeoutError(f"fewer than {count} asset-triggered agentic_retraining run(s) after {timeout}s")


def monitoring_decision(api, count):
    decision, numbers = demo.monitoring_decision(api, count, timeout=240)
    return decision.get("action"), numbers["accuracy"]


def model_versions(uri: str) -> list[str]:
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri=uri).search_model_versions(f"name='{demo.MODEL_NAME}'")
    return sorted(str(v.version) for v in found)


def prepare(api, home: Path, data_root: str, uri: str, *, triggerer_log: Path | None = None) -> dict[str, Any]:
    """The first champion, the example DAGs unpaused and the drift watcher running."""
    first = demo.bootstrap(data_root, uri)
    for dag_id in demo.DAG_IDS:
        api.wait_dag(dag_id)
        api.unpause(dag_id)
    demo.wait_watcher(home, data_root, log=triggerer_log)
    monitoring = len(api.runs("agentic_monitoring"))
    return {"api": api, "uri": uri, "first": first["champion_after"], "monitoring": monitoring,
            "data_root": data_root.rstrip("/")}


def harmless_shift_starts_no_retraining(flywheel):
    from airflow_agentic.flywheel.streams import make_batch

    api = flywheel["api"]
    run_id, _ = demo.land(api, flywheel["data_root"], "0001", make_batch("harmless", seed=11, start_id=100_000))
    assert api.wait_run("agentic_ingest", run_id, 240) == "success"
    flywheel["monitoring"] += 1
    action, accuracy = monitoring_decision(api, flywheel["monitoring"])
    assert action != "request_retraining", (action, accuracy)
    time.sleep(COOLDOWN + 3)
    assert retraining_runs(api) == []
    assert demo.aliases(flywheel["uri"])["champion"] == flywheel["first"]


def drifted_batch_makes_a_new_champion(flywheel, during_retraining: Callable[[Any, dict], None] | None = None):
    """``during_retraining(api, run)``: called once the retraining run exists (a fault to inject into it)."""
    from airflow_agentic.flywheel.streams import make_batch

    api, uri = flywheel["api"], flywheel["uri"]
    versions = model_versions(uri)
    _, landed = demo.land(api, flywheel["data_root"], "0002", make_batch("drifted", seed=12, start_id=200_000))
    if during_retraining is not None:
        during_retraining(api, wait_retraining_runs(api, 1, timeout=300)[0])
    champion, serving = demo.wait_champion_change(uri, flywheel["first"], timeout=420)
    print(f"drifted batch landed -> new champion v{champion} serving in {serving - landed:.1f}s")
    flywheel["monitoring"] += 1
    action, accuracy = monitoring_decision(api, flywheel["monitoring"])
    assert action == "request_retraining" and accuracy < 0.7
    (run,) = wait_retraining_runs(api, 1)
    assert api.wait_run("agentic_retraining", run["dag_run_id"], 240) == "success"
    turn = api.xcom("agentic_retraining", run["dag_run_id"], "continuous_learning")
    assert turn["status"] == "promoted" and turn["champion_after"] == champion
    event = api.xcom("agentic_retraining", run["dag_run_id"], "continuous_learning", "flywheel_turn")["drift_event"]
    assert event["files"] == ["0002.json"]
    aliases = demo.aliases(uri)
    assert aliases["champion"] == champion != flywheel["first"]
    assert aliases["previous"] == flywheel["first"]
    assert len(model_versions(uri)) == len(versions) + 1, "exactly one new version"
    flywheel["clean"] = f"{flywheel['data_root']}/clean/0002/clean.parquet"
    flywheel["retraining_run"] = run["dag_run_id"]


def burst_of_drift_reports_starts_one_retraining(flywheel):
    from airflow_agentic.data import io as dio

    api = flywheel["api"]
    reports = demo.data_paths(flywheel["data_root"])["reports"]
    before = len(retraining_runs(api))
    for k in range(3):
        report = {"decision": {"action": "request_retraining", "reasons": [f"burst {k}"]}, "batch": f"burst{k}",
                  "clean": [flywheel["clean"]]}
        dio.write_json(report, reports / f"burst{k}.json")  # atomic: the watcher never sees half a report
        time.sleep(0.7)
    runs = wait_retraining_runs(api, before + 1)
    run = runs[before]
    assert api.wait_run("agentic_retraining", run["dag_run_id"], 240) == "success"
    event = api.xcom("agentic_retraining", run["dag_run_id"], "continuous_learning", "flywheel_turn")["drift_event"]
    assert event["events"] == 1 and event["files"] == ["burst0.json", "burst1.json", "burst2.json"]
    time.sleep(COOLDOWN + 3)
    assert len(retraining_runs(api)) == before + 1
