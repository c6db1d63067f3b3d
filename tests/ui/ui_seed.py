"""What the UI tests seed.

- MLflow: model ``ui_flywheel`` with four versions, promoted and rolled back through ``ModelRegistry`` (so the
  aliases and history tags are the ones the flywheel writes): champion v3, previous v1, challenger v4.
- MLflow: a fleet of ``FLEET`` more models (``fleet-000`` ...), registered after it, so the list pages and the search
  finds ``ui_flywheel`` among them; each has one version of the same logged model, most a champion.
- Airflow: real runs of the two test DAGs in tests/dags/agentic_test_ui.py. DAG A: batch 2 (drift and an accuracy
  drop: retraining requested), batch 3 (the agent asks a person before it acts: waiting). DAG B: batch 1 (nothing to
  do), batch 2 (waiting for a person). The user ``reader`` may read DAG A only.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_DAG_FILE = HERE.parent / "dags" / "agentic_test_ui.py"
DAG_A, DAG_B = "agentic_ui_flywheel_a", "agentic_ui_flywheel_b"
MODEL = "ui_flywheel"
RUNS = {  # name -> (DAG, run conf); the WAITING ones end with the monitor task awaiting input
    "a2": (DAG_A, {"batch": 2, "shift": 1.5, "accuracies": [0.91, 0.70]}),
    "a3": (DAG_A, {"batch": 3, "shift": 2.0, "accuracies": [0.91, 0.70, 0.66], "approval_for": "write"}),
    "b1": (DAG_B, {"batch": 1, "shift": 0.0, "accuracies": [0.90]}),
    "b2": (DAG_B, {"batch": 2, "shift": 1.2, "accuracies": [0.90, 0.68], "approval_for": "write"}),
}
WAITING = {"a3", "b2"}
FLEET = 200


def _register_versions(uri: str, count: int) -> list[str]:
    """Small real models with signatures, as promotion requires."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(MODEL)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200), "x3": rng.normal(size=200)})
    y = (X["x1"] + X["x3"] > 0).astype(int)
    versions = []
    for c in range(count):
        model = LogisticRegression(C=0.1 * (c + 1)).fit(X, y)
        with mlflow.start_run():
            # cloudpickle: skops' type scan is slow and these versions are never loaded (check_load=False below).
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL,
                                            signature=infer_signature(X, model.predict(X)),
                                            serialization_format="cloudpickle", pip_requirements=["scikit-learn"])
        versions.append(str(info.registered_model_version))
    return versions


def seed_registry(uri: str) -> None:
    from mlflow import MlflowClient

    from airflow_agentic.models.registry import ModelRegistry

    v1, v2, v3, v4 = _register_versions(uri, 4)
    client = MlflowClient(uri)
    # v3 came out of a retraining run, as the training operator tags it.
    for key, value in {"agentic.dag_id": "agentic_retraining", "agentic.run_id": "asset_triggered__2026-11-01",
                       "agentic.drift_event_id": '{"batch": 2, "drifted_columns": ["x1", "x3"]}',
                       "agentic.family": "logistic_regression"}.items():
        client.set_model_version_tag(MODEL, v3, key, value)
    registry = ModelRegistry(uri)
    registry.promote(MODEL, v1, reason="first model", check_load=False)
    registry.promote(MODEL, v2, reason="gate passed: accuracy 0.91 vs 0.88 on the holdout", check_load=False)
    registry.rollback(MODEL, reason="v2 worse than v1 on the same 400 labelled rows (McNemar z=3.1)")
    registry.promote(MODEL, v3, reason="retrained after drift in x1, x3: accuracy 0.90 vs 0.72", check_load=False)
    client.set_registered_model_alias(MODEL, "challenger", v4)


def seed_fleet(uri: str, count: int = FLEET) -> None:
    """``count`` registered models with one version each (the source of ui_flywheel's v1: nothing is logged
    again), a champion alias on all but every fifth and a promotion in the history tag: what a registry of many
    flywheels looks like to the list page. A few threads: the registry answers one request at a time anyway."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from mlflow import MlflowClient

    from airflow_agentic.models.registry import PROMOTION_HISTORY_TAG

    client = MlflowClient(uri)
    source = client.get_model_version(MODEL, "1")
    model_id = source.model_id or source.source.rsplit("/", 1)[-1]

    def one(i: int) -> None:
        name = f"fleet-{i:03d}"
        at = f"2026-11-{1 + i % 28:02d}T10:00:00+00:00"
        tags = {} if i % 5 == 0 else {PROMOTION_HISTORY_TAG: json.dumps(
            [{"from": None, "to": "1", "reason": f"first model of fleet {i}", "at": at}])}
        client.create_registered_model(name, tags=tags)
        # A `models:/m-...` source names its logged model; MLflow takes it with that model's id and no run id.
        mv = client.create_model_version(name, source.source, model_id=model_id, await_creation_for=0)
        if i % 5:
            client.set_registered_model_alias(name, "champion", mv.version)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(count)))
