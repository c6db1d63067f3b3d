"""The example DAGs a user copies: each parses fast in a fresh interpreter, and the retraining DAG runs end to end
under ``dag.test()`` (a conf instead of drift events) against a real MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
EXPECTED = {"agentic_ingest.py", "agentic_monitoring.py", "agentic_retraining.py", "agentic_deployment.py"}

# Time `import airflow.sdk`, then the DAG file on top of it, in one fresh interpreter per file.
PROBE = """
import gc, json, runpy, sys, time
t0 = time.perf_counter()
import airflow.sdk  # noqa: F401
t1 = time.perf_counter()
ns = runpy.run_path(sys.argv[1])
t2 = time.perf_counter()
heavy = sorted(m for m in ("mlflow", "sklearn", "pandas", "great_expectations", "optuna", "scipy", "pyspark",
                           "alibi_detect", "evidently", "kubernetes", "torch", "openai") if m in sys.modules)
dags = sorted(o.dag_id for o in gc.get_objects() if type(o).__name__ == "DAG" and hasattr(o, "dag_id"))
print(json.dumps({"sdk": t1 - t0, "extra": t2 - t1, "heavy": heavy, "dags": dags}))
"""


def test_all_example_dags_present():
    assert EXPECTED <= {f.name for f in DAG_FILES}


@pytest.mark.parametrize("path", DAG_FILES, ids=[f.name for f in DAG_FILES])
def test_dag_file_imports_fast_in_a_fresh_interpreter(path):
    done = _probe(path)
    assert done.returncode == 0, done.stderr[-3000:]
    numbers = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{path.name}: import airflow.sdk {numbers['sdk']:.2f}s, DAG file {numbers['extra']:.2f}s extra")
    assert numbers["dags"], f"{path.name} defines no DAG"
    assert numbers["heavy"] == [], f"{path.name} imports heavy libraries at parse time: {numbers['heavy']}"
    assert numbers["extra"] < 1.0, f"{path.name} takes {numbers['extra']:.2f}s over `import airflow.sdk`"


def _probe(path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_a_fleet_gets_one_flywheel_per_model_from_the_same_files(tmp_path):
    """``[agentic] fleet``: every example DAG file builds its DAG for the default model and for each model named,
    each on its own data root, Assets and watcher; a name unusable in a DAG id is refused with a clear message."""
    env = {"AIRFLOW__AGENTIC__FLEET": "churn, fraud", "AIRFLOW__AGENTIC__DATA_ROOT": f"file://{tmp_path}"}
    # A DagBag, as the dag-processor parses: it keeps every DAG a file makes (a loop rebinds the module's names).
    check = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
ingest, monitoring, retraining = (bag.dags[f"agentic_{d}_fraud"] for d in ("ingest", "monitoring", "retraining"))
(drift,) = retraining.timetable.asset_condition.objects
print(json.dumps({"dags": sorted(bag.dags), "fraud": [
    ingest.tasks[0].outlets[0].name, monitoring.timetable.asset_condition.objects[0].name,
    monitoring.tasks[0].model_name, monitoring.tasks[0].data_root, drift.name, drift.watchers[0].name,
    drift.watchers[0].trigger.path, retraining.tasks[0].model_name, retraining.tasks[0].clean_root]}))
"""
    done = subprocess.run([sys.executable, "-c", check, str(REPO / "dags")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for name in EXPECTED:
        base = name.removesuffix(".py")
        assert {base, f"{base}_churn", f"{base}_fraud"} <= set(found["dags"]), (base, found["dags"])
    root = f"file://{tmp_path}/fleet/fraud"
    assert found["fraud"] == [
        "agentic_clean_batch_fraud", "agentic_clean_batch_fraud", "fraud", root, "agentic_drift_fraud",
        "agentic_drift_watcher_fraud", f"{root}/reports", "fraud", f"{root}/clean"]

    refused = _probe(REPO / "dags" / "agentic_ingest.py", AIRFLOW__AGENTIC__FLEET="churn, bad name")
    assert refused.returncode != 0 and "[agentic] fleet: 'bad name' is not a model name" in refused.stderr


def test_retraining_dag_runs_the_backtests_turn_with_dag_test(airflow_db, mlflow_uri, tmp_path, monkeypatch):
    """The operator runs the same turn as the backtest: the same labelled batches through `dag.test()` (MLflow
    registry) and through `learn` on an in-memory store give the same candidates, scores, gate verdict and
    promotion; the registry's aliases move (new champion, the old one previous)."""
    from mlflow import MlflowClient

    from airflow_agentic.data import io as dio
    from airflow_agentic.flywheel.store import MemoryStore, MlflowStore
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch, first_champion, learn
    from dagbag import load_dag

    model = "flywheel_dagtest"
    root = tmp_path / "data"
    monkeypatch.setenv("AIRFLOW__AGENTIC__MODEL_NAME", model)
    monkeypatch.setenv("AIRFLOW__AGENTIC__DATA_ROOT", f"file://{root}")
    frames = {b: make_batch("stable" if b < 3 else "drifted", seed=10 + b, start_id=b * 10_000) for b in range(6)}
    for b, frame in frames.items():  # as the Data Steward commits its outputs: files, then the manifest
        dio.write_outputs(f"file://{root}/clean/{b:04d}", {"clean.parquet": dio.frame_to_bytes(frame)},
                          rows={"clean.parquet": len(frame)})
    batches = {b: LabelledBatch.from_frame(f, target="label", id_column="row_id") for b, f in frames.items()}
    warm = {b: batches[b] for b in (0, 1)}
    first = first_champion(warm, MlflowStore(model, mlflow_uri, profile_dir=f"file://{root}/profiles"))
    request = {"kind": "drift", "since_batch": 3, "batch": 5, "reason": "accuracy dropped at batch 3"}

    dag = load_dag("agentic_retraining")
    # Airflow 3.3.2's dag.test() cannot store a DAG's deadline alerts (a SQLAlchemy error on deadline_alert.id);
    # the deadline itself is tested under the real scheduler in tests/native. The turn is what is tested here.
    dag.deadline = None
    run = dag.test(run_conf={"request": request})
    assert run.state == "success"
    turn = run.get_task_instance("continuous_learning").xcom_pull(task_ids="continuous_learning")
    assert turn["status"] == "promoted", turn["steps"]
    assert [(s["agent"], s["tool"]) for s in turn["steps"]] == [
        ("annotation", "skip"), ("training", "train_candidates"), ("deployment", "gate"), ("training", "register"),
        ("deployment", "promote")]
    aliases = MlflowClient(mlflow_uri).get_registered_model(model).aliases
    assert str(aliases["champion"]) == turn["champion_after"] != first.champion_after
    assert str(aliases["previous"]) == first.champion_after

    # The backtest's way: the same batches, the same first version, the same request, versions in memory.
    memory = MemoryStore()
    first_champion(warm, memory)
    backtest = learn(request, {b: batches[b] for b in batches if b <= 5}, memory, labelled_upto=5)
    assert backtest.status == turn["status"] and backtest.candidate == turn["candidate"]
    assert backtest.verdict == turn["verdict"]
    assert backtest.entry["trained_on"] == turn["entry"]["trained_on"]
    assert (backtest.entry["family"], backtest.entry["params"]) == (turn["entry"]["family"], turn["entry"]["params"])
