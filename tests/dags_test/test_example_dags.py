"""The example DAGs a user copies: each parses fast in a fresh interpreter, and the retraining DAG runs end to end
under ``dag.test()`` (a conf instead of drift events) against a real MLflow server."""

from __future__ import annotations

import json
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
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    numbers = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{path.name}: import airflow.sdk {numbers['sdk']:.2f}s, DAG file {numbers['extra']:.2f}s extra")
    assert numbers["dags"], f"{path.name} defines no DAG"
    assert numbers["heavy"] == [], f"{path.name} imports heavy libraries at parse time: {numbers['heavy']}"
    assert numbers["extra"] < 1.0, f"{path.name} takes {numbers['extra']:.2f}s over `import airflow.sdk`"


def test_retraining_dag_runs_a_turn_with_dag_test(airflow_db, mlflow_uri, tmp_path, monkeypatch):
    """steward -> train -> gate -> promote on a drifted batch given by conf: a new champion, the old one previous."""
    from mlflow import MlflowClient

    from airflow_agentic.flywheel.continuous import continuous_turn
    from airflow_agentic.flywheel.streams import make_batch
    from dagbag import load_dag

    model = "flywheel_dagtest"
    monkeypatch.setenv("AGENTIC_MODEL_NAME", model)
    monkeypatch.setenv("AGENTIC_DATA_ROOT", f"file://{tmp_path}/data")
    first = continuous_turn(make_batch("stable", seed=1), target="label", model_name=model, experiment_name=model,
                            families=["logistic_regression"], n_trials=3, tracking_uri=mlflow_uri,
                            profile_dir=f"file://{tmp_path}/data/profiles")
    assert first.status == "promoted"
    batch = tmp_path / "drifted.parquet"
    make_batch("drifted", seed=7).to_parquet(batch, index=False)

    dag = load_dag("agentic_retraining")
    run = dag.test(run_conf={"data": [f"file://{batch}"]})
    assert run.state == "success"
    turn = run.get_task_instance("continuous_learning").xcom_pull(task_ids="continuous_learning")
    assert turn["status"] == "promoted", turn["steps"]
    assert [s["agent"] for s in turn["steps"]] == ["data_steward", "annotation", "training", "deployment",
                                                   "deployment"]
    aliases = MlflowClient(mlflow_uri).get_registered_model(model).aliases
    assert str(aliases["champion"]) == turn["champion_after"] != first.champion_after
    assert str(aliases["previous"]) == first.champion_after
