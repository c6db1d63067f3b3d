"""train_best -> challenger, promote/rollback through aliases, failure mid-way through a dropping proxy, the gate on
registered versions, batch serving. All against a real MLflow server on loopback."""

from __future__ import annotations

import json

import pytest
from model_data import make_frame
from proxy import DroppingProxy

import airflow_agentic
from airflow_agentic.models.architect import ExperimentPlan, PlanItem
from airflow_agentic.models.dataset import Dataset
from airflow_agentic.models.hpo import HPOConfig
from airflow_agentic.models.registry import (PROMOTION_HISTORY_TAG, ROLLBACK_HISTORY_TAG, ModelRegistry,
                                             PromotionRecord, RegistryError)
from airflow_agentic.models.training import TrainingResult, skops_trusted_types, train_best


def register(name: str, params: dict | None = None, signature: bool = True, n: int = 400, seed: int = 0) -> str:
    """Log and register a logistic-regression version quickly (no search)."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from airflow_agentic.models.families import get_family

    data = Dataset(*make_frame(n, seed=seed))
    model = get_family("logistic_regression").fit(data.X, data.y, params, data.schema)
    mlflow.set_experiment(f"registry-{name}")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name,
            signature=infer_signature(data.X, model.predict(data.X)) if signature else None,
            pip_requirements=["scikit-learn"], skops_trusted_types=skops_trusted_types(model))
    version = str(info.registered_model_version)
    MlflowClient().set_registered_model_alias(name, "challenger", version)
    MlflowClient().set_model_version_tag(name, version, "agentic.data.hash", data.content_hash())
    return version


@pytest.fixture()
def fail_fast(monkeypatch):
    # The MLflow client retries failed calls with backoff; the failure tests want the first failure to surface.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def test_train_best_registers_a_challenger_with_lineage(mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    data = Dataset(*make_frame(500), location="s3://bucket/batches/2026-01-01.parquet")
    plan = ExperimentPlan([PlanItem("logistic_regression", 4, "test"), PlanItem("random_forest", 2, "test")])
    result = train_best(data, "train-model", experiment_name="train-exp", plan=plan,
                        storage=str(tmp_path / "s.db"), hpo_config=HPOConfig(cv_folds=2, n_startup_trials=2),
                        dag_id="continuous_learning", run_id="manual__1", drift_event_id="drift-42")

    client = MlflowClient()
    version = client.get_model_version_by_alias("train-model", "challenger")
    assert version.version == result.version
    tags = version.tags
    assert tags["agentic.data.location"] == "s3://bucket/batches/2026-01-01.parquet"
    assert tags["agentic.data.hash"] == data.content_hash() == result.data_hash
    assert tags["agentic.parent_run_id"] == result.run_id
    assert tags["agentic.dag_id"] == "continuous_learning" and tags["agentic.run_id"] == "manual__1"
    assert tags["agentic.package_version"] == airflow_agentic.__version__
    assert tags["agentic.drift_event_id"] == "drift-42"
    assert json.loads(tags["agentic.params"]) == result.params
    assert TrainingResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result

    import mlflow

    info = mlflow.models.get_model_info(result.model_uri)
    assert info.signature is not None and "colour" in info.signature.inputs.input_names()
    children = client.search_runs([result.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 6
    assert mlflow.pyfunc.load_model(result.model_uri).predict(data.X.head(3)).shape == (3,)


def test_promote_and_rollback_with_history(mlflow_uri):
    registry = ModelRegistry()
    name = "promo-model"
    v1 = register(name)
    first = registry.promote(name, reason="first model")
    assert registry.aliases(name) == {"champion": v1}
    assert first.from_version is None and first.to_version == v1

    v2 = register(name, {"C": 0.05, "class_weight": "balanced"})
    second = registry.promote(name, reason="better")
    assert registry.aliases(name) == {"champion": v2, "previous": v1}
    assert PromotionRecord.from_dict(second.to_dict()) == second
    again = registry.promote(name, v2)
    assert again.already_done and again.steps == []

    back = registry.rollback(name, reason="error rate up")
    assert registry.aliases(name) == {"champion": v1}
    assert (back.from_version, back.to_version) == (v2, v1)
    history = registry.history(name)
    assert [(h["from"], h["to"], h["reason"]) for h in history] == [(v2, v1, "error rate up")]
    assert registry.rollback(name).already_done  # a retried rollback does nothing more
    assert len(json.loads(registry.tags(name)[ROLLBACK_HISTORY_TAG])) == 1
    assert [h["to"] for h in json.loads(registry.tags(name)[PROMOTION_HISTORY_TAG])] == [v1, v2]

    from mlflow import MlflowClient

    from airflow_agentic.models.training import champion_params

    client = MlflowClient()
    client.set_model_version_tag(name, v1, "agentic.family", "logistic_regression")
    client.set_model_version_tag(name, v1, "agentic.params", json.dumps({"C": 2.0, "class_weight": "none"}))
    assert champion_params(name, client) == {"logistic_regression": {"C": 2.0, "class_weight": "none"}}
    assert champion_params("no-such-model", client) == {}


def test_promotion_refuses_bad_versions_and_keeps_the_champion(mlflow_uri, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    registry = ModelRegistry()
    name = "guarded-model"
    v1 = register(name)
    registry.promote(name)
    with pytest.raises(RegistryError, match="no 'challenger'"):
        registry.promote(name)

    unsigned = register(name, signature=False)
    with pytest.raises(RegistryError, match="no input signature"):
        registry.promote(name)
    assert registry.aliases(name)["champion"] == v1

    # A version whose artifacts do not load (its pickle is not a model).
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n"
        "    python_version: 3.11.7\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"
        "    sklearn_version: 1.9.1\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x1\", \"required\": true}]'\n"
        "  outputs: null\n")
    (broken / "model.pkl").write_bytes(b"not a pickle")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(broken), "model")
        source = mlflow.get_artifact_uri("model")
    bad = MlflowClient().create_model_version(name, source, run_id=run.info.run_id).version
    with pytest.raises(RegistryError, match="failed to load"):
        registry.promote(name, bad)
    assert registry.aliases(name) == {"champion": v1, "challenger": unsigned}


def test_registry_down_is_a_registry_error(fail_fast):
    registry = ModelRegistry(tracking_uri="http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(RegistryError, match="get_registered_model"):
        registry.promote("anything")


@pytest.mark.parametrize("when", ["before", "after"])
def test_failure_mid_promotion_leaves_a_valid_state_and_a_retry_finishes(mlflow_server, mlflow_uri, fail_fast,
                                                                        when):
    name = f"flaky-model-{when}"
    registry_direct = ModelRegistry()
    old = register(name)
    registry_direct.promote(name)
    new = register(name, {"C": 0.1, "class_weight": "none"})

    with DroppingProxy(mlflow_server.url) as proxy:
        registry = ModelRegistry(tracking_uri=proxy.url)
        # Alias calls in promote: 1st sets `previous`, 2nd moves `champion`. Drop the 2nd.
        proxy.drop("POST", "/registered-models/alias", nth=2, when=when)
        with pytest.raises(RegistryError) as failure:
            registry.promote(name, reason="flaky")
        assert failure.value.step == "set champion"
        assert proxy.dropped and "alias" in proxy.dropped[0]

        state = registry_direct.aliases(name)
        assert state["champion"] in (old, new)  # never none
        assert state["previous"] == old
        assert state["champion"] == (old if when == "before" else new)

        proxy.clear()
        record = registry.promote(name, reason="flaky")
    assert registry_direct.aliases(name) == {"champion": new, "previous": old}
    assert record.to_version == new


def test_failure_mid_rollback_resumes(mlflow_server, mlflow_uri, fail_fast):
    name = "flaky-rollback"
    direct = ModelRegistry()
    v1 = register(name)
    direct.promote(name)
    v2 = register(name, {"C": 0.1, "class_weight": "none"})
    direct.promote(name)
    with DroppingProxy(mlflow_server.url) as proxy:
        registry = ModelRegistry(tracking_uri=proxy.url)
        proxy.drop("DELETE", "/registered-models/alias", nth=1, when="before")  # champion moved, previous stays
        with pytest.raises(RegistryError, match="delete previous"):
            registry.rollback(name, reason="bad")
        assert direct.aliases(name)["champion"] == v1
        proxy.clear()
        record = registry.rollback(name)
    assert (record.from_version, record.to_version, record.reason) == (v2, v1, "bad")
    assert direct.aliases(name) == {"champion": v1}
    assert len(direct.history(name)) == 1


def test_gate_on_registered_versions_and_batch_serving(mlflow_uri):
    from airflow_agentic.models.gate import GatePolicy, gate_from_registry
    from airflow_agentic.models.serving import BatchServing

    name = "gated-model"
    registry = ModelRegistry()
    register(name, {"C": 1e-3, "class_weight": "none"})
    registry.promote(name)
    register(name, {"C": 1.0, "class_weight": "none"}, seed=1)
    X_new, y_new = make_frame(400, seed=7)
    verdict = gate_from_registry(name, Dataset(X_new, y_new).X, y_new, policy=GatePolicy(margin=0.0, max_latency_ratio=None))
    assert verdict.numbers["challenger_version"] == "2" and verdict.numbers["champion_version"] == "1"
    assert "signature matches" in verdict.reasons
    assert verdict.passed == (verdict.numbers["improvement"] >= 0), verdict.to_dict()

    train_X, train_y = make_frame(400, seed=1)  # the challenger's own training data is refused
    refused = gate_from_registry(name, Dataset(train_X, train_y).X, train_y)
    assert not refused.passed and "training data" in refused.reasons[0]

    batch = BatchServing(name)
    assert batch.health()["ok"] and batch.health()["version"] == "1"
    first = batch.predict(Dataset(X_new, y_new).X)
    assert len(first) == 400
    registry.promote(name)
    batch.predict(Dataset(X_new, y_new).X)
    assert batch.last_version == "2" and len(batch.describe()["cached"]) == 2
    batch.deploy(f"models:/{name}/1")  # pin
    batch.predict(X_new.head(5))
    assert batch.last_version == "1"
    batch.rollback()  # unpin: back to following the alias
    batch.predict(X_new.head(5))
    assert batch.last_version == "2"
