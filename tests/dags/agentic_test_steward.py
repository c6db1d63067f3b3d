"""Test DAGs for the Data Steward and annotation operators (copied into the test dags folder by tests/conftest.py).
Paths arrive as params (dag.test(run_conf=...)), so one file serves every test."""

from __future__ import annotations

from airflow.sdk import DAG, Asset

from airflow_agentic.operators.annotation import AnnotationOperator
from airflow_agentic.operators.steward import DataStewardOperator
from airflow_agentic.sensors.annotation import LabelStudioAnnotationSensor

CLEAN_BATCH = Asset("agentic-test-clean-batch")
PARAMS = {"source": "", "output": "", "profile": ""}

with DAG("agentic_test_steward", schedule=None, catchup=False, params=PARAMS):
    DataStewardOperator(task_id="steward", source="{{ params.source }}", output="{{ params.output }}",
                        profile="{{ params.profile }}", id_column="row_id", outlets=[CLEAN_BATCH])

with DAG("agentic_test_steward_s3", schedule=None, catchup=False, params=PARAMS):
    DataStewardOperator(task_id="steward", source="{{ params.source }}", output="{{ params.output }}",
                        profile="{{ params.profile }}", id_column="row_id", conn_id="aws_steward_test",
                        outlets=[CLEAN_BATCH])

for policy in ("wait", "auto_only"):
    with DAG(f"agentic_test_annotation_{policy}", schedule=None, catchup=False,
             params={"source": "", "output": "", "model": "", "tracking_uri": "", "project": ""}):
        annotate = AnnotationOperator(
            task_id="annotate", source="{{ params.source }}", output="{{ params.output }}/annotation",
            model_name="{{ params.model }}", tracking_uri="{{ params.tracking_uri }}",
            project_title="{{ params.project }}", labelstudio_conn_id="labelstudio_test", threshold=0.9,
            id_column="row_id", target="label", on_unavailable=policy)
        wait = LabelStudioAnnotationSensor(
            task_id="wait_for_labels", annotation_task_id="annotate", output="{{ params.output }}/merged",
            labelstudio_conn_id="labelstudio_test", on_unavailable=policy, poke_interval=1.0, timeout=300)
        annotate >> wait
