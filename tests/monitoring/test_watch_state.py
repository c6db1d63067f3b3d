"""The monitoring step keeps its watch in Airflow's asset state store (AIP-103), through the real task runner on a
real metadata database (dag.test()), and two writers at once lose no batch."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

MODEL = "watch_state_model"


@pytest.fixture()
def flywheel(airflow_db, mlflow_uri, tmp_path, monkeypatch):
    """A champion in the registry and six clean batches (committed as the Data Steward commits them)."""
    from airflow_agentic.data import io as dio
    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch, first_champion

    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:  # every test starts without a watch (the database lives for the session)
        session.query(AssetStateStoreModel).filter_by(key=f"watch/{MODEL}").delete()
    root = tmp_path / "data"
    monkeypatch.setenv("AIRFLOW__AGENTIC__MODEL_NAME", MODEL)
    monkeypatch.setenv("AIRFLOW__AGENTIC__DATA_ROOT", f"file://{root}")
    frames = {b: make_batch("stable", seed=30 + b, start_id=b * 10_000) for b in range(7)}
    urls = {}
    for b, frame in frames.items():
        urls[b] = f"file://{root}/clean/{b:04d}/clean.parquet"
        dio.write_outputs(f"file://{root}/clean/{b:04d}", {"clean.parquet": dio.frame_to_bytes(frame)},
                          rows={"clean.parquet": len(frame)})
    warm = {b: LabelledBatch.from_frame(frames[b], target="label", id_column="row_id") for b in (0, 1)}
    first_champion(warm, MlflowStore(MODEL, mlflow_uri, profile_dir=f"file://{root}/profiles"))
    return root, urls


def _stored_watch() -> dict:
    from airflow.models.asset import AssetModel
    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.utils.session import create_session

    with create_session() as session:
        asset = session.query(AssetModel).filter_by(name="agentic_clean_batch").one()
        row = session.query(AssetStateStoreModel).filter_by(asset_id=asset.id, key=f"watch/{MODEL}").one()
        return {"value": json.loads(row.value)}


def test_the_watch_lives_in_the_asset_state_store(flywheel):
    from dagbag import load_dag

    root, urls = flywheel
    dag = load_dag("agentic_test_watch_state", "agentic_test_watch.py")
    assert dag.test(run_conf={"batches": [urls[2], urls[3]]}).state == "success"
    first = _stored_watch()["value"]
    assert first["generation"] == 1 and [r["batch"] for r in first["watch"]["records"]] == [2, 3]
    # The next run goes on from where the first stopped: its records and the agent's memory.
    assert dag.test(run_conf={"batches": [urls[4]]}).state == "success"
    second = _stored_watch()["value"]
    assert second["generation"] == 2 and [r["batch"] for r in second["watch"]["records"]] == [2, 3, 4]
    assert not (root / "monitoring").exists(), "no home-made state file where Airflow offers a store"


def test_two_writers_at_once_lose_no_batch(flywheel):
    """Run A loads the watch; meanwhile run B (another DAG on the same model and Asset) monitors batch 5 and saves;
    then A saves batch 6. A finds B's save and merges: both batches are in the watch, each once."""
    from dagbag import load_dag

    root, urls = flywheel
    dag = load_dag("agentic_test_watch_state", "agentic_test_watch.py")
    run = dag.test(run_conf={"batches": [urls[6]], "meanwhile": urls[5]})
    assert run.state == "success"
    stored = _stored_watch()
    assert stored["value"]["generation"] == 2  # B saved the first, A the merged second
    batches = [r["batch"] for r in stored["value"]["watch"]["records"]]
    assert sorted(batches) == [5, 6] and len(batches) == len(set(batches))
