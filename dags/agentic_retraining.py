"""Continuous learning on drift: scheduled ONLY on the ``agentic_drift`` Asset; one run per burst of drift.

The Asset's ``AssetWatcher`` runs ``DriftEventTrigger`` over ``$AGENTIC_DATA_ROOT/reports/`` (the decisions that
``agentic_monitoring`` writes): a decision to retrain opens a window of ``AGENTIC_DRIFT_COOLDOWN`` seconds (default
5); every report that matters within it joins, and the window closes with ONE event. Airflow 3.3 can also bundle
several events into one run (apache/airflow#56050), so ``collect`` reads ALL ``triggering_asset_events``.

Then one turn of the flywheel (``ContinuousLearningOperator``): Data Steward on the drifted clean batches ->
annotation check -> training warm-started from the champion (registers ``challenger``) -> deployment gate on a
holdout -> promotion (``champion`` := new version, ``previous`` := the old champion) or not. The decision trace
of the whole turn is the task's return value and XCom ``flywheel_turn``.

Run it by hand (no event) with ``conf={"data": ["<clean batch url>", ...]}``.

Configuration (environment, read at parse time; nothing is looked up over the network while parsing):
``AGENTIC_DATA_ROOT`` (default ``file://$AIRFLOW_HOME/agentic-data``), ``AGENTIC_MODEL_NAME`` (default
``flywheel``), ``AGENTIC_FAMILIES`` (comma-separated, default ``logistic_regression``), ``AGENTIC_TRIALS``
(default 4), ``AGENTIC_DRIFT_COOLDOWN`` (seconds, default 5).

MLflow is resolved when the task runs, first match wins:
1. the Airflow connection ``mlflow_default`` (type ``mlflow``, through ``MLflowHook`` when installed),
2. the environment variable ``MLFLOW_TRACKING_URI``,
3. the file ``$AIRFLOW_HOME/agentic/mlflow_uri`` (``airflow-agentic demo`` and the e2e tests write it),
4. ``sqlite:///$AIRFLOW_HOME/agentic/mlflow.db``.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_agentic.operators.continuous import ContinuousLearningOperator
from airflow_agentic.triggers.drift_event import DriftEventTrigger

HOME = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
DATA_ROOT = os.environ.get("AGENTIC_DATA_ROOT", f"file://{HOME}/agentic-data").rstrip("/")
MODEL_NAME = os.environ.get("AGENTIC_MODEL_NAME", "flywheel")
FAMILIES = [f.strip() for f in os.environ.get("AGENTIC_FAMILIES", "logistic_regression").split(",") if f.strip()]
TRIALS = int(os.environ.get("AGENTIC_TRIALS", "4"))
COOLDOWN = float(os.environ.get("AGENTIC_DRIFT_COOLDOWN", "5"))

DRIFT = Asset("agentic_drift", watchers=[AssetWatcher(
    name="agentic_drift_watcher",
    trigger=DriftEventTrigger(path=f"{DATA_ROOT}/reports", cooldown=COOLDOWN, poll_interval=1.0),
)])

with DAG(
    "agentic_retraining",
    schedule=[DRIFT],
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    max_active_runs=1,
    doc_md=__doc__,
    tags=["agentic", "flywheel"],
):

    @task(multiple_outputs=True)
    def collect(**context) -> dict:
        """Every drift report of every triggering event (a burst), and the clean batches behind them, in order."""
        events = list(context["triggering_asset_events"].get(DRIFT, []))
        reports = [r for e in events for r in ((e.extra or {}).get("payload") or {}).get("reports", [])]
        data: list[str] = []
        for r in reports:
            for location in (r.get("report") or {}).get("clean") or []:
                if location not in data:
                    data.append(location)
        data = data or list(context["dag_run"].conf.get("data") or [])
        if not data:
            raise ValueError("no drift event names a clean batch, and no conf {'data': [...]} was given")
        summary = {"events": len(events), "reports": len(reports),
                   "files": [os.path.basename(r.get("file", "")) for r in reports],
                   "reasons": [r.get("reason") for r in reports]}
        print(f"{summary['events']} event(s), {summary['reports']} report(s): {summary['files']} -> {data}")
        return {"data": data, "drift_event": summary}

    collected = collect()

    ContinuousLearningOperator(
        task_id="continuous_learning",
        data=collected["data"],
        drift_event=collected["drift_event"],
        model_name=MODEL_NAME,
        target="label",
        id_column="row_id",
        families=FAMILIES,
        n_trials=TRIALS,
        warm_start=True,
        profile_dir=f"{DATA_ROOT}/profiles",
    )
