"""A retried task must finish the job, not do it twice: the continuous-learning turn re-run with the same run key
registers no second version and reports the promotion that landed; the monitoring step labelling the same batch
again keeps one performance record. Real MLflow server on loopback."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def _batches(kinds: dict[int, str]) -> dict:
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch

    return {b: LabelledBatch.from_frame(make_batch(kind, seed=100 + b, start_id=b * 10_000), target="label",
                                        id_column="row_id") for b, kind in kinds.items()}


def test_retried_turn_registers_nothing_new_and_reports_the_promotion(mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.turn import first_champion, learn

    model = "retry_turn"
    store = MlflowStore(model, mlflow_uri, profile_dir=f"file://{tmp_path}/profiles")
    first = first_champion(_batches({0: "stable", 1: "stable"}), store, run_key="retry-first")
    assert first.status == "initial"

    batches = _batches({0: "stable", 1: "stable", 2: "drifted", 3: "drifted"})
    request = {"kind": "drift", "since_batch": 2}
    turn = learn(request, batches, store, run_key="agentic_retraining.continuous_learning.manual__1")
    assert turn.status == "promoted", turn.steps
    client = MlflowClient(mlflow_uri)
    versions_before = {v.version for v in client.search_model_versions(f"name = '{model}'")}

    # The worker died after the promotion: Airflow runs the task again with the same run key. The champion is
    # now the version that turn registered; the retry must neither register another one nor move the aliases.
    again = learn(request, batches, MlflowStore(model, mlflow_uri, profile_dir=f"file://{tmp_path}/profiles"),
                  run_key="agentic_retraining.continuous_learning.manual__1")
    versions_after = {v.version for v in client.search_model_versions(f"name = '{model}'")}
    assert versions_after == versions_before, "a retry registered another version"
    assert again.champion_before == turn.champion_after
    aliases = client.get_registered_model(model).aliases
    assert str(aliases["champion"]) == turn.champion_after and str(aliases["previous"]) == first.champion_after
    history = json.loads(client.get_registered_model(model).tags["agentic.promotion_history"])
    assert [(h["from"], h["to"]) for h in history].count((first.champion_after, turn.champion_after)) == 1


def test_labelling_a_batch_twice_keeps_one_performance_record(mlflow_uri, tmp_path):
    from airflow_agentic.flywheel.monitor import Watch, drift_check
    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import first_champion

    model = "retry_score"
    store = MlflowStore(model, mlflow_uri, profile_dir=f"file://{tmp_path}/profiles")
    first_champion(_batches({0: "stable", 1: "stable"}), store, run_key="retry-score-first")
    champion = MlflowStore(model, mlflow_uri).champion()
    batch = make_batch("stable", seed=3)
    X = batch.drop(columns=["row_id", "label"])
    watch = Watch()
    for _ in range(2):  # a retried task starts again from the watch it saved last time
        saved = Watch.from_dict(json.loads(json.dumps(watch.to_dict())))
        saved.score(4, X, batch.row_id.to_numpy(), champion)
        saved.label(4, batch.label.to_numpy())
    assert [r.batch for r in saved.records] == [4]
    predictions = champion.model.predict(X)

    # The profile stored with the version holds the model's reference outputs: the DAG path tests prediction drift
    # too, before any label arrives (the features moved, so did the predicted class shares).
    assert drift_check(champion.profile, X, predictions)["prediction"]["drifted"] is False
    moved = make_batch("drifted", seed=5).drop(columns=["row_id", "label"])
    report = drift_check(champion.profile, moved, champion.model.predict(moved))
    assert report["prediction"]["drifted"] is True and report["detected"] is True


def test_a_model_not_registered_yet_has_no_champion(mlflow_uri):
    """A fresh install: the retraining DAG asks for the champion of a model nobody registered yet."""
    from airflow_agentic.flywheel.store import MlflowStore

    store = MlflowStore("never_registered_model", mlflow_uri)
    assert store.champion() is None and store.earlier() == []
