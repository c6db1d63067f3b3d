"""Ingest a landed batch: the Data Steward validates, repairs or quarantines its rows and publishes the clean batch.

Trigger it when a batch lands (``airflow-agentic demo`` does, through the REST API) with
``conf={"source": "<url of the batch>", "batch": "<name>"}``. Outputs go to ``<data_root>/clean/<batch>/`` and the
``agentic_clean_batch`` Asset gets an event naming them, which schedules ``agentic_monitoring``. The steward compares
every batch with the reference profile ``<data_root>/reference/profile.npz`` (the demo writes it from the first
batch). ``data_root`` is ``[agentic] data_root`` (``airflow_agentic.config``; default
``file://$AIRFLOW_HOME/agentic-data``).

One file for every model: besides the default flywheel, ``[agentic] fleet = churn, fraud`` builds the same DAG for
each model named (``agentic_ingest_churn`` on ``<data_root>/fleet/churn``, publishing ``agentic_clean_batch_churn``;
``config.flywheels()``).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Asset, Param

from airflow_agentic import config
from airflow_agentic.operators.steward import DataStewardOperator

for flywheel in config.flywheels():
    with DAG(
        flywheel.name("agentic_ingest"),
        schedule=None,
        catchup=False,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
        doc_md=__doc__,
        tags=["agentic", "flywheel"],
        params={"source": Param("", type="string", description="URL or path of the landed batch"),
                "batch": Param("manual", type="string", description="batch name, used for the output folder")},
    ):
        DataStewardOperator(
            task_id="steward",
            source="{{ params.source }}",
            output=flywheel.data_root + "/clean/{{ params.batch }}",
            profile=f"{flywheel.data_root}/reference/profile.npz",
            id_column="row_id",
            # A covariate shift moves clean rows outside the reference range: only far-out values are suspicious.
            config={"range_tolerance": 3.0, "drift": False},
            outlets=[Asset(flywheel.name("agentic_clean_batch"))],
        )
