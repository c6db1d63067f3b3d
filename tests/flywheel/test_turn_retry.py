"""A retried task must finish the job, not do it twice: the continuous-learning turn re-run with the same run key
registers no second version and reports the promotion that landed; the monitoring step scoring the same batch
again keeps one performance record. Real MLflow server on loopback."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_retried_turn_registers_nothing_new_and_reports_the_promotion(mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    from airflow_agentic.flywheel.continuous import continuous_turn
    from airflow_agentic.flywheel.streams import make_batch

    model = "retry_turn"
    common = dict(target="label", model_name=model, experiment_name=model, families=["logistic_regression"],
                  n_trials=2, tracking_uri=mlflow_uri, profile_dir=f"file://{tmp_path}/profiles")
    first = continuous_turn(make_batch("stable", seed=1), **common)
    assert first.status == "promoted"

    drifted = make_batch("drifted", seed=7)
    lineage = {"run_key": "agentic_retraining.continuous_learning.manual__1"}
    turn = continuous_turn(drifted, lineage=lineage, **common)
    assert turn.status == "promoted", turn.steps
    client = MlflowClient(mlflow_uri)
    versions_before = {v.version for v in client.search_model_versions(f"name = '{model}'")}

    # The worker died after the promotion: Airflow runs the task again with the same run key.
    again = continuous_turn(drifted, lineage=lineage, **common)
    versions_after = {v.version for v in client.search_model_versions(f"name = '{model}'")}
    assert versions_after == versions_before, "a retry registered another version"
    assert again.status == "promoted" and again.challenger == turn.challenger
    assert again.champion_after == turn.champion_after
    aliases = client.get_registered_model(model).aliases
    assert str(aliases["champion"]) == turn.champion_after and str(aliases["previous"]) == first.champion_after
    history = json.loads(client.get_registered_model(model).tags["agentic.promotion_history"])
    assert [(h["from"], h["to"]) for h in history].count((first.champion_after, turn.champion_after)) == 1
    assert again.verdict["numbers"]["challenger_score"] == pytest.approx(turn.verdict["numbers"]["challenger_score"])


def test_scoring_a_batch_twice_keeps_one_performance_record(mlflow_uri, tmp_path):
    from airflow_agentic.data import io as dio
    from airflow_agentic.flywheel.continuous import continuous_turn, monitor_batch
    from airflow_agentic.flywheel.streams import make_batch

    model = "retry_score"
    continuous_turn(make_batch("stable", seed=1), target="label", model_name=model, experiment_name=model,
                    families=["logistic_regression"], n_trials=2, tracking_uri=mlflow_uri,
                    profile_dir=f"file://{tmp_path}/profiles")
    records = f"file://{tmp_path}/records.json"
    batch = make_batch("stable", seed=3)
    first = monitor_batch(batch, model_name=model, batch=4, tracking_uri=mlflow_uri, records_location=records)
    second = monitor_batch(batch, model_name=model, batch=4, tracking_uri=mlflow_uri, records_location=records)
    assert first["performance"]["records"] == second["performance"]["records"]
    assert [r["batch"] for r in dio.read_json(records)] == [4]

    # The profile stored with the version holds the model's reference outputs: the DAG path tests prediction drift
    # too, before any label arrives (the features moved, so did the predicted class shares).
    assert first["drift"]["prediction"]["drifted"] is False
    unlabelled = make_batch("drifted", seed=5).drop(columns=["label"])
    moved = monitor_batch(unlabelled, model_name=model, batch=5, tracking_uri=mlflow_uri, records_location=records)
    assert moved["drift"]["prediction"]["drifted"] is True and moved["drift"]["detected"] is True
    assert moved["accuracy"] is None
