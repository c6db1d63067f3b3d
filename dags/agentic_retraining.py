"""Continuous learning on drift: scheduled ONLY on the ``agentic_drift`` Asset; one run per burst of drift.

The Asset's ``AssetWatcher`` runs ``DriftEventTrigger`` over ``<data_root>/reports/`` (the decisions that
``agentic_monitoring`` writes): a decision to retrain opens a window of ``[agentic] drift_cooldown`` seconds (default
5); every report that matters within it joins, and the window closes with ONE event. Airflow 3.3 can also bundle
several events into one run (apache/airflow#56050); the operator reads all ``triggering_asset_events`` and acts on
the newest retraining request.

Then one continuous-learning turn (``ContinuousLearningOperator`` -> ``airflow_agentic.flywheel.turn.learn``, the
function the backtest runs): candidates since the change point, on the last window and earlier champions -> gate
against the champion on held-out labelled rows -> registry aliases (``champion`` := new version, ``previous`` := the
old champion) or no change. The decision trace of the turn is the task's return value and XCom ``flywheel_turn``.

Run it by hand (no event) with ``conf={"request": {"kind": "drift", "since_batch": 20}}``.

Settings come from the ``[agentic]`` configuration section (``airflow_agentic.config``): ``data_root``,
``model_name``, ``mlflow_tracking_uri`` (else the ``mlflow_default`` connection, ``MLFLOW_TRACKING_URI``, a SQLite
file under ``$AIRFLOW_HOME/agentic``) and ``drift_cooldown``. Nothing is looked up over the network while parsing.
``[agentic] fleet`` adds one such DAG per model (``agentic_retraining_<model>`` on ``agentic_drift_<model>``, its
watcher on ``<data_root>/fleet/<model>/reports``; ``config.flywheels()``).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_agentic import config
from airflow_agentic.operators.continuous import ContinuousLearningOperator
from airflow_agentic.notifications.deadline import retraining_deadline
from airflow_agentic.triggers.drift_event import DriftEventTrigger

COOLDOWN = float(config.option("drift_cooldown", "5"))

for flywheel in config.flywheels():
    drift = Asset(flywheel.name("agentic_drift"), watchers=[AssetWatcher(
        name=flywheel.name("agentic_drift_watcher"),
        trigger=DriftEventTrigger(path=f"{flywheel.data_root}/reports", cooldown=COOLDOWN, poll_interval=1.0),
    )])
    with DAG(
        flywheel.name("agentic_retraining"),
        schedule=[drift],
        catchup=False,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
        max_active_runs=1,
        deadline=retraining_deadline(),  # [agentic] retraining_deadline minutes; told via [agentic] approval_notifier
        doc_md=__doc__,
        tags=["agentic", "flywheel"],
    ):
        ContinuousLearningOperator(
            task_id="continuous_learning",
            clean_root=f"{flywheel.data_root}/clean",
            request="{{ dag_run.conf.get('request') | tojson if dag_run.conf.get('request') else '' }}",
            model_name=flywheel.model_name,
            target="label",
            id_column="row_id",
        )
