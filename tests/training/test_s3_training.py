"""Training and continuous learning with their data on S3 (a local moto server) read through an Airflow ``aws``
connection, against the real MLflow server, run with dag.test()."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from training.conftest import make_frame

pytestmark = pytest.mark.integration

BUCKET = "flywheel"
DAG_FILE = "agentic_test_s3_training.py"
# Written into the session's dags folder by the test (dag.test() needs the DAG in a file there). Every read of data
# goes through the connection `aws_test` (tests/conftest.py's `s3` fixture).
DAG_SOURCE = '''
from airflow.sdk import DAG

from airflow_agentic.operators.continuous import ContinuousLearningOperator
from airflow_agentic.operators.training import TrainingOperator

with DAG("agentic_test_s3_training", schedule=None, catchup=False, render_template_as_native_obj=True):
    TrainingOperator(task_id="train", data="{{ dag_run.conf['data'] }}", target="label",
                     model_name="{{ dag_run.conf['model_name'] }}", families=["logistic_regression"], n_trials=2,
                     hpo_config={"cv_folds": 2, "n_startup_trials": 2}, conn_id="aws_test")
    ContinuousLearningOperator(task_id="continuous_learning", clean_root="{{ dag_run.conf['clean_root'] }}",
                               request="{{ dag_run.conf['request'] }}", model_name="{{ dag_run.conf['flywheel'] }}",
                               profile_dir="{{ dag_run.conf['profiles'] }}", target="label", id_column="row_id",
                               conn_id="aws_test")
'''


def test_training_and_continuous_learning_read_s3_through_a_connection(s3, airflow_db, mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    from airflow_agentic.data import io as dio
    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch, first_champion
    from dagbag import load_dag

    s3.create_bucket(Bucket=BUCKET)
    frame = make_frame(300, 1)
    for k, part in enumerate((frame.iloc[:150], frame.iloc[150:]), start=1):
        s3.put_object(Bucket=BUCKET, Key=f"train/batch_{k:03d}.parquet", Body=part.to_parquet(index=False))
    s3.put_object(Bucket=BUCKET, Key="train/_SUCCESS", Body=b"")  # a manifest, not data

    # The steward's committed outputs on S3, as it writes them (files, then the manifest), and a first champion
    # trained on the stable ones; the concept changes at batch 2.
    flywheel = "s3_flywheel"
    frames = {b: make_batch("stable" if b < 2 else "drifted", rows=300, seed=10 + b, start_id=b * 10_000)
              for b in range(4)}
    for b, batch in frames.items():
        dio.write_outputs(dio.resolve_path(f"s3://{BUCKET}/clean/{b:04d}", "aws_test"),
                          {"clean.parquet": dio.frame_to_bytes(batch)}, rows={"clean.parquet": len(batch)})
    profiles = f"file://{tmp_path}/profiles"
    warm = {b: LabelledBatch.from_frame(frames[b], target="label", id_column="row_id") for b in (0, 1)}
    first = first_champion(warm, MlflowStore(flywheel, mlflow_uri, profile_dir=profiles))

    Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], DAG_FILE).write_text(DAG_SOURCE)
    dag = load_dag("agentic_test_s3_training", file=DAG_FILE)
    name = "s3-train-model"
    run = dag.test(run_conf={
        "data": f"s3://{BUCKET}/train/", "model_name": name, "clean_root": f"s3://{BUCKET}/clean",
        "flywheel": flywheel, "profiles": profiles,
        "request": {"kind": "drift", "since_batch": 2, "batch": 3, "reason": "accuracy dropped at batch 2"}})
    assert run.state == "success"

    trained = run.get_task_instance("train").xcom_pull(task_ids="train")
    assert trained["model_name"] == name and trained["version"] == "1" and trained["cv_score"] > 0.7
    client = MlflowClient(mlflow_uri)
    assert client.get_model_version(name, "1").tags["agentic.data.location"] == f"s3://{BUCKET}/train/"

    turn = run.get_task_instance("continuous_learning").xcom_pull(task_ids="continuous_learning")
    assert turn["status"] == "promoted" and turn["champion_before"] == first.champion_after, turn["steps"]
    details = run.get_task_instance("continuous_learning").xcom_pull(task_ids="continuous_learning",
                                                                     key="flywheel_turn")
    # read through the connection: the locations name it (s3://aws_test@flywheel/...)
    assert sorted(details["data"].values()) == [f"s3://aws_test@{BUCKET}/clean/{b:04d}/clean.parquet"
                                                for b in range(4)]
    assert str(client.get_registered_model(flywheel).aliases["champion"]) == turn["champion_after"]
