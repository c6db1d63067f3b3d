"""Batch inference with the champion and the Monitoring agent, on every clean batch.

Scheduled on ``agentic_clean_batch`` (the Data Steward's output, ``agentic_ingest``). ``MonitorBatchOperator`` runs
the flywheel's monitoring step, the same code as the backtest's (``airflow_agentic.flywheel.monitor``): for each clean
batch of the triggering events it predicts with ``models:/<name>@champion`` (``<data_root>/predictions/``), scores
the labels, checks feature and prediction drift against the champion's profile, and the monitoring agent decides on
the newest one. The decision is written to ``<data_root>/reports/<batch>.json``; the agent's memory between runs is
kept in the ``agentic_clean_batch`` Asset's state store.

That folder is what the drift Asset's ``AssetWatcher(DriftEventTrigger(...))`` watches: a decision to retrain fires
``agentic_drift`` (one event per burst) and Airflow schedules ``agentic_retraining``. The watcher is declared in
``agentic_retraining.py``, because Airflow registers watchers from the schedule of the DAG that consumes the Asset.

Settings come from the ``[agentic]`` configuration section (``airflow_agentic.config``): ``data_root``,
``model_name``, ``mlflow_tracking_uri`` (else the ``mlflow_default`` connection, ``MLFLOW_TRACKING_URI``, a SQLite
file under ``$AIRFLOW_HOME/agentic``). ``[agentic] fleet`` adds one such DAG per model (``agentic_monitoring_<model>``
on ``agentic_clean_batch_<model>``; ``config.flywheels()``).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Asset

from airflow_agentic import config
from airflow_agentic.operators.monitoring import MonitorBatchOperator

for flywheel in config.flywheels():
    clean_batch = Asset(flywheel.name("agentic_clean_batch"))
    with DAG(
        flywheel.name("agentic_monitoring"),
        schedule=[clean_batch],
        catchup=False,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
        max_active_runs=1,
        doc_md=__doc__,
        tags=["agentic", "flywheel"],
    ):
        MonitorBatchOperator(task_id="monitor", model_name=flywheel.model_name, data_root=flywheel.data_root,
                             state_asset=clean_batch)
