"""Batch inference with ``models:/<name>@champion`` and the Monitoring agent, on every clean batch.

Scheduled on ``agentic_clean_batch`` (the Data Steward's output, ``agentic_ingest``). For each clean batch of the
triggering events (a burst can bring several): predict with the champion (``$AGENTIC_DATA_ROOT/predictions/``),
check drift against the champion's training profile, score its labels; then the monitoring agent decides, and the
decision is written to ``$AGENTIC_DATA_ROOT/reports/<batch>.json``.

That folder is what the drift Asset's ``AssetWatcher(DriftEventTrigger(...))`` watches: a decision to retrain
fires ``agentic_drift`` (one event per burst) and Airflow schedules ``agentic_retraining``. The watcher is declared
in ``agentic_retraining.py``, because Airflow registers watchers from the schedule of the DAG that consumes the
Asset; no task here has the drift Asset as an outlet (that would fire it on every batch).

Configuration (environment): ``AGENTIC_DATA_ROOT`` (default ``file://$AIRFLOW_HOME/agentic-data``),
``AGENTIC_MODEL_NAME`` (default ``flywheel``). MLflow, resolved when a task runs, first match wins: the ``mlflow_default``
connection (type ``mlflow``, through ``MLflowHook`` when installed), ``MLFLOW_TRACKING_URI``, the file
``$AIRFLOW_HOME/agentic/mlflow_uri``, then ``sqlite:///$AIRFLOW_HOME/agentic/mlflow.db``.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, Asset, task

from airflow_agentic.operators.monitoring import MonitoringAgentOperator

HOME = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
DATA_ROOT = os.environ.get("AGENTIC_DATA_ROOT", f"file://{HOME}/agentic-data").rstrip("/")
MODEL_NAME = os.environ.get("AGENTIC_MODEL_NAME", "flywheel")

CLEAN_BATCH = Asset("agentic_clean_batch")

with DAG(
    "agentic_monitoring",
    schedule=[CLEAN_BATCH],
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    max_active_runs=1,
    doc_md=__doc__,
    tags=["agentic", "flywheel"],
):

    @task(multiple_outputs=True)
    def score(**context) -> dict:
        """Champion predictions and the evidence of every clean batch that arrived; the last one is decided on."""
        from airflow_agentic.flywheel.continuous import monitor_batch, read_frames
        from airflow_agentic.operators.continuous import use_tracking_uri

        tracking_uri = use_tracking_uri()
        events = list(context["triggering_asset_events"].get(CLEAN_BATCH, []))
        extras = [e.extra or {} for e in events if ((e.extra or {}).get("outputs") or {}).get("clean")]
        batches = [x["outputs"]["clean"] for x in extras] or [context["dag_run"].conf.get("clean")]
        counts = {x["outputs"]["clean"]: x.get("counts") or {} for x in extras}
        if not batches[0]:
            raise ValueError("no clean batch: run from an agentic_clean_batch event or with conf {'clean': url}")
        evidence: dict = {}
        for location in batches:
            name = os.path.basename(os.path.dirname(location.rstrip("/")))
            number = int("".join(ch for ch in name if ch.isdigit()) or 0)
            frame = read_frames([location])
            c = counts.get(location) or {}
            rows, quarantined = int(c.get("input") or 0), int(c.get("quarantined") or 0)
            quality = {"rows": rows, "quarantined": quarantined, "by_reason": c.get("by_reason") or {},
                       "quarantined_share": quarantined / rows if rows else 0.0}
            evidence = monitor_batch(frame, model_name=MODEL_NAME, batch=number, tracking_uri=tracking_uri,
                                     quality=quality,
                                     records_location=f"{DATA_ROOT}/monitoring/records-{MODEL_NAME}.json",
                                     predictions_location=f"{DATA_ROOT}/predictions/{name}.parquet")
            evidence.update(name=name, clean=[location])
            print(f"batch {name}: champion v{evidence['champion']}, accuracy {evidence['accuracy']}, "
                  f"drift {evidence['drift'].get('detected')} {evidence['drift'].get('drifted_columns')}")
        evidence["clean"] = batches
        return evidence

    scored = score()

    monitor = MonitoringAgentOperator(
        task_id="monitor",
        drift_report=scored["drift"],
        performance=scored["performance"],
        quality=scored["quality"],
        batch=scored["batch"],
    )

    @task
    def publish(decision: dict, name: str, clean: list, champion: str, drift: dict) -> str:
        """The watched report: the decision plus what a retraining needs (the clean batches behind it)."""
        from airflow_agentic.data import io as dio

        report = {"decision": decision, "batch": name, "clean": clean, "champion": champion,
                  "drift": {k: drift.get(k) for k in ("detected", "score", "max_effect", "drifted_columns")}}
        return dio.write_json(report, f"{DATA_ROOT}/reports/{name}.json")

    publish(monitor.output, scored["name"], scored["clean"], scored["champion"], scored["drift"])
