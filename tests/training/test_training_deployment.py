"""Training, deployment and watch operators against a real MLflow server, run with dag.test()."""

from __future__ import annotations

import json

import pytest

from training.conftest import good_model, make_frame, register, weak_model

pytestmark = [
    pytest.mark.integration,
]


def _dag(dag_id):
    import os

    from airflow.dag_processing.dagbag import DagBag

    # tests/conftest.py's load_dag, inlined: `conftest` names this folder's conftest here.
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def _xcom(dr, task_id, key="return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id,
                                                 key=key).one_or_none()
        value = None if row is None else row.value
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _aliases(name):
    from mlflow import MlflowClient

    return {a: str(v) for a, v in (MlflowClient().get_registered_model(name).aliases or {}).items()}


def test_training_operator_registers_challenger(airflow_db, mlflow_uri, data_dir):
    from mlflow import MlflowClient

    name = "train-op-model"
    dr = _dag("agentic_test_train").test(run_conf={
        "data": f"file://{data_dir}/train/batch_*.parquet", "model_name": name,
        "drift_event": {"id": "evt-42", "score": 0.31, "drifted_columns": ["x1"]}})
    assert dr.state == "success"
    result = _xcom(dr, "train")
    assert result["model_name"] == name and result["version"] == "1" and result["model_uri"] == f"models:/{name}/1"
    assert result["metric"] == "accuracy" and result["cv_score"] > 0.7
    client = MlflowClient()
    assert _aliases(name) == {"challenger": "1"}
    tags = client.get_model_version(name, "1").tags
    assert tags["agentic.drift_event_id"] == "evt-42" and tags["agentic.drift.columns"] == "x1"
    assert tags["agentic.data.location"].endswith("batch_*.parquet") and tags["agentic.dag_id"] == "agentic_test_train"
    trials = client.search_runs([result["experiment_id"]],
                                filter_string=f"tags.mlflow.parentRunId = '{result['run_id']}'")
    assert 1 <= len(trials) <= 4  # nested under the one training run, within the budget
    run = _xcom(dr, "train", "agent_run")
    assert [s["tool"] for s in run["steps"]][0] == "plan_experiments"
    assert [s["tool"] for s in run["steps"]][-2:] == ["register_best", "finish"]
    # the extra links resolve to the pushed URLs
    assert _xcom(dr, "train", "mlflow_run_url").endswith(f"/runs/{result['run_id']}")
    assert _xcom(dr, "train", "model_version_url").endswith(f"/models/{name}/versions/1")


def test_deployment_refuses_worse_then_promotes_better(airflow_db, mlflow_uri, data_dir):
    name = "deploy-op-model"
    frame = make_frame(400, 7)
    champion = register(name, good_model(frame), frame, "champion")
    worse = register(name, weak_model(frame), frame, "challenger")
    conf = {"model_name": name, "holdout": f"file://{data_dir}/holdout.parquet", "margin": 0.0}
    dr = _dag("agentic_test_deploy").test(run_conf=conf)
    assert dr.state == "success"
    result = _xcom(dr, "deploy")
    assert result["promoted"] is False and result["promotion"] is None
    assert result["verdict"]["passed"] is False and result["rejected"]["version"] == worse
    assert _aliases(name)["champion"] == champion  # untouched

    better = register(name, good_model(make_frame(2000, 8)), frame, "challenger")
    dr = _dag("agentic_test_deploy").test(run_conf={**conf, "margin": -0.05})
    assert dr.state == "success"
    result = _xcom(dr, "deploy")
    assert result["promoted"] is True and result["promotion"]["to_version"] == better
    assert result["promotion"]["previous_version"] == champion
    assert result["serving"]["kind"] == "batch" and result["serving"]["health"]["ok"]
    assert _aliases(name) == {"champion": better, "previous": champion}
    assert _xcom(dr, "deploy", "model_version_url").endswith(f"/versions/{better}")


def test_deployment_bad_input_fails_clearly(airflow_db, mlflow_uri, data_dir):
    name = "deploy-no-challenger"
    frame = make_frame(300, 9)
    champion = register(name, good_model(frame), frame, "champion")
    dr = _dag("agentic_test_deploy").test(run_conf={"model_name": name,
                                                    "holdout": f"file://{data_dir}/holdout.parquet"})
    assert dr.state == "failed"
    run = _xcom(dr, "deploy", "agent_run")
    assert "no 'challenger'" in run["result"]["stop_reason"]
    assert _aliases(name) == {"champion": champion}


def test_model_watch_rolls_back_worse_champion(airflow_db, mlflow_uri, data_dir):
    from airflow_agentic.models.registry import ModelRegistry

    name = "watch-op-model"
    frame = make_frame(400, 11)
    good = register(name, good_model(frame), frame, "previous")
    bad = register(name, weak_model(frame), frame, "champion")
    dr = _dag("agentic_test_watch").test(run_conf={"model_name": name, "batch": f"file://{data_dir}/batch.parquet"})
    assert dr.state == "success"
    result = _xcom(dr, "watch")
    assert result["rolled_back"] is True
    assert result["rollback"]["from_version"] == bad and result["rollback"]["to_version"] == good
    assert _aliases(name) == {"champion": good}
    history = ModelRegistry().history(name)
    assert history[-1]["from"] == bad and "worse by" in history[-1]["reason"]
    from mlflow import MlflowClient

    assert json.loads(MlflowClient().get_model_version(name, bad).tags["agentic.watch"])["rolled_back"] is True

    # a second run finds nothing to compare with (previous cleared) and leaves the champion alone
    dr = _dag("agentic_test_watch").test(run_conf={"model_name": name, "batch": f"file://{data_dir}/batch.parquet"})
    assert dr.state == "success" and _xcom(dr, "watch")["rolled_back"] is False
    assert _aliases(name) == {"champion": good}
