"""Test DAGs of the monitoring area (copied into the test dags folder by tests/conftest.py). Folders derive from
AIRFLOW_HOME because the real stack's environment is fixed when the session starts."""

from __future__ import annotations

import os

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_agentic.notifications.webhook import WebhookNotifier
from airflow_agentic.operators.monitoring import MonitoringAgentOperator
from airflow_agentic.sensors.drift import DriftSensor
from airflow_agentic.triggers.drift_event import DriftEventTrigger

HOME = os.environ.get("AIRFLOW_HOME", "/tmp/airflow")
DATA = f"{HOME}/monitoring"
WATCH = f"{HOME}/watch"

# -- the sensor, deferrable and poking
for name, deferrable in (("deferrable", True), ("poke", False)):
    with DAG(f"agentic_test_monitoring_sensor_{name}", schedule=None, catchup=False):
        DriftSensor(task_id="drift", path=f"file://{DATA}/sensor_{name}", profile_path=f"file://{DATA}/profile.npz",
                    columns="{{ dag_run.conf.get('columns', ['x1', 'x2', 'x3']) }}", alpha="{{ 0.01 }}",
                    deferrable=deferrable, poke_interval=0.5, timeout=120)

# -- the monitoring agent: evidence from the run's conf, alerts to a webhook connection, retraining as an Asset event
RETRAIN = Asset("agentic_test_monitoring_retrain")

with DAG("agentic_test_monitoring_agent", schedule=None, catchup=False, render_template_as_native_obj=True):
    MonitoringAgentOperator(
        task_id="monitor",
        drift_report="{{ dag_run.conf['drift'] }}",
        performance="{{ dag_run.conf['performance'] }}",
        batch="{{ dag_run.conf.get('batch') }}",
        retraining_asset=RETRAIN,
        notifiers=[WebhookNotifier(conn_id="test_webhook")],
        state_variable="agentic_test_monitoring_state",
    )

# -- event-driven retraining: a watcher on a folder of batches (it only waits: one event per burst of new files);
# the triggered task computes drift on the worker and acts only on drift that matters
DRIFT = Asset("agentic_test_monitoring_drift", watchers=[AssetWatcher(
    name="agentic_test_monitoring_drift_watcher",
    trigger=DriftEventTrigger(path=f"file://{WATCH}/batches", mode="batches", cooldown=8, poll_interval=1),
)])

with DAG("agentic_test_monitoring_retraining", schedule=[DRIFT], catchup=False, max_active_runs=1):

    @task
    def retrain(**context):
        from airflow_agentic.triggers.drift import drift_for_files, drift_matters, load_profile

        events = context["triggering_asset_events"][DRIFT]
        files = [f for e in events for f in (e.extra.get("payload") or {}).get("files", [])]
        profile = load_profile(f"file://{WATCH}/profile.npz")
        reports = [drift_for_files([f], url=f"file://{WATCH}/batches", profile_path="", profile=profile)
                   for f in files]
        return {"events": len(events), "files": [os.path.basename(f) for f in files],
                "drifted": [r["drifted_columns"] for r in reports if drift_matters(r, min_effect=0.3)[0]]}

    retrain()
