"""Sensor, notifier and monitoring operator on a real metadata database with dag.test(), and the notifier against a
loopback HTTP server that records requests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from monitoring_helpers import drifted, frame, harmless, save_profile, write_batch

pytestmark = pytest.mark.integration

DATA = Path(os.environ["AIRFLOW_HOME"]) / "monitoring"


def _dag(dag_id):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not {k: v for k, v in bag.import_errors.items() if "monitoring" in k}, bag.import_errors
    return bag.get_dag(dag_id)


def _xcoms(dr, task_id):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id).all()
        return {r.key: _decoded(r.value) for r in rows}


def _decoded(value):
    """XCom rows hold JSON, except the extra-link URLs Airflow stores as plain strings."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@pytest.fixture(scope="module")
def profile(airflow_db):
    return save_profile(DATA / "profile.npz")


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_drift_sensor(profile, mode, monkeypatch):
    """A batch without drift is skipped (deferrable: the worker computes its report and defers again); the
    drifted batch that arrives afterwards ends the wait."""
    from airflow_agentic.sensors.drift import DriftSensor

    inbox = DATA / f"sensor_{mode}"
    write_batch(inbox, "b0.parquet", frame(2000, seed=7))
    checked = []
    report_for = DriftSensor.report_for

    def then_deliver_the_drifted_batch(self, files):  # dag.test runs the task in this process
        report = report_for(self, files)
        checked.append(([f.rsplit("/", 1)[1] for f in files], report["detected"]))
        if len(checked) == 1:
            write_batch(inbox, "b1.parquet", drifted())
        return report

    monkeypatch.setattr(DriftSensor, "report_for", then_deliver_the_drifted_batch)
    dr = _dag(f"agentic_test_monitoring_sensor_{mode}").test(run_conf={"columns": ["x1", "x2"]})
    assert checked == [(["b0.parquet"], False), (["b1.parquet"], True)]
    assert dr.state == "success"
    xcoms = _xcoms(dr, "drift")
    report = xcoms["return_value"]
    assert report["detected"] and report["drifted_columns"] == ["x1"] and report["alpha"] == 0.01
    assert [c["column"] for c in report["columns"]] == ["x1", "x2"]  # templated columns
    assert xcoms["drift_files"] == [str(inbox / "b1.parquet")]
    assert xcoms["drift_since"] == pytest.approx((inbox / "b1.parquet").stat().st_mtime)


def test_drift_sensor_defers_to_drift_trigger_and_again_when_nothing_matters(profile, tmp_path):
    from airflow.sdk.exceptions import AirflowException, TaskDeferred

    from airflow_agentic.sensors.drift import DriftSensor
    from airflow_agentic.triggers.drift import DriftTrigger

    inbox = tmp_path / "in"
    sensor = DriftSensor(task_id="s", path=f"file://{inbox}", profile_path=f"file://{profile}", columns=["x1"],
                         min_effect=0.3, timeout=30, poke_interval=2, seen=["old"])
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, DriftTrigger) and deferred.value.method_name == "execute_complete"
    assert trigger.serialize()[1]["poll_interval"] == 2.0 and deferred.value.timeout.total_seconds() <= 30
    deadline = deferred.value.kwargs["deadline"]

    # The trigger fired with a harmless batch: the worker computes its report, finds nothing that matters and
    # defers again with the file seen, keeping the original deadline.
    harmless_file = str(write_batch(inbox, "h.parquet", harmless()))
    event = {"status": "success", "files": [harmless_file], "seen": ["old", harmless_file], "since": 5.0}
    with pytest.raises(TaskDeferred) as again:
        sensor.execute_complete({}, event=event, deadline=deadline)
    args = again.value.trigger.serialize()[1]
    assert set(args["seen"]) == {"old", harmless_file}
    assert args["since"] == 5.0 and again.value.kwargs["deadline"] == deadline
    with pytest.raises(AirflowException, match="drift check failed"):
        sensor.execute_complete({}, event={"status": "error", "message": "boom"})


@pytest.mark.parametrize("style", ["slack", "pagerduty"])
def test_webhook_notifier_posts_a_drift_summary(webhook_server, monkeypatch, style):
    from airflow_agentic.drift.detectors import detect_drift
    from airflow_agentic.drift.profile import ReferenceProfile
    from airflow_agentic.notifications.webhook import WebhookNotifier

    report = detect_drift(ReferenceProfile.from_frame(frame(), sample_rows=0), drifted()).to_dict()
    monkeypatch.setenv("AIRFLOW_CONN_HOOK_CONN", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": int(webhook_server.url.rsplit(":", 1)[1]), "schema": "http",
        "password": "rk-123", "extra": {"endpoint": "/v2/enqueue", "style": style}}))
    WebhookNotifier(conn_id="hook_conn", report="{{ params.report }}", severity="error")(
        {"params": {"report": json.dumps(report)}})
    (request,) = webhook_server.requests
    assert request["path"] == "/v2/enqueue"
    body = request["json"]
    if style == "slack":
        assert body["text"].startswith("drift DETECTED; 1/3 columns drifted") and "x1" in body["text"]
    else:
        assert body["routing_key"] == "rk-123" and body["event_action"] == "trigger"
        assert body["payload"]["severity"] == "error" and body["payload"]["class"] == "drift"
        assert body["payload"]["custom_details"]["drifted_columns"] == ["x1"]
        assert "drift DETECTED" in body["payload"]["summary"]


def test_webhook_notifier_direct_url_and_failure(webhook_server):
    from airflow_agentic.notifications.webhook import WebhookNotifier

    WebhookNotifier(url=webhook_server.url + "/hook", text="hello {{ who }}")({"who": "ops"})
    assert webhook_server.requests[-1]["json"] == {"text": "hello ops"}
    webhook_server.status = 500
    from airflow_agentic.notifications.webhook import WebhookError

    # The error names the host and status, never the URL (a Slack URL is a secret).
    with pytest.raises(WebhookError, match="500") as raised:
        WebhookNotifier(url=webhook_server.url + "/secret-path")({"who": "ops"})
    assert "secret-path" not in str(raised.value)
    with pytest.raises(ValueError, match="routing key"):
        WebhookNotifier(style="pagerduty")._target()


# -- the monitoring agent ------------------------------------------------------------------------------------------
STEADY = [0.88, 0.89, 0.875, 0.885, 0.88, 0.882, 0.879, 0.886]


def _records(accuracies, rows=1000):
    return [{"batch": 5 + k, "version": "v1", "rows": rows, "correct": int(round(a * rows))}
            for k, a in enumerate(accuracies)]


def _asset_events(run_id):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .filter(AssetModel.name == "agentic_test_monitoring_retrain", AssetEvent.source_run_id == run_id).all())
        return [dict(r.extra or {}) for r in rows]


@pytest.fixture()
def hook(webhook_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TEST_WEBHOOK", json.dumps({"conn_type": "http", "host": webhook_server.url}))
    return webhook_server


def test_monitoring_operator_concept_drift_emits_the_asset_event(airflow_db, hook):
    drift = {"detected": True, "score": 0.33, "drifted_columns": ["x1"], "max_effect": 0.8, "columns": [],
             "alpha": 0.05, "correction": "bh", "backend": "builtin", "n_ref": 3000, "n_cur": 2000}
    conf = {"drift": drift, "performance": {"records": _records(STEADY + [0.80, 0.71]), "champion": "v1"},
            "batch": 14}
    dr = _dag("agentic_test_monitoring_agent").test(run_conf=conf)
    assert dr.state == "success"
    decision = _xcoms(dr, "monitor")["return_value"]
    assert decision["action"] == "request_retraining" and decision["retrain"]["since_batch"] == 13
    (extra,) = _asset_events(dr.run_id)
    assert extra["action"] == "request_retraining" and extra["retrain"]["since_batch"] == 13
    assert extra["drift"]["drifted_columns"] == ["x1"]
    (request,) = hook.requests  # the retraining request went to the webhook too
    assert request["json"]["text"].startswith("[agentic_test_monitoring_agent.monitor")
    assert "request_retraining: performance drop" in request["json"]["text"]
    from airflow.models.variable import Variable

    assert Variable.get("agentic_test_monitoring_state", deserialize_json=True)["in_flight"] is True
    Variable.delete("agentic_test_monitoring_state")


def test_monitoring_operator_harmless_shift_alerts_without_asset_event(airflow_db, hook):
    from airflow_agentic.drift.detectors import detect_drift
    from airflow_agentic.drift.profile import ReferenceProfile

    drift = detect_drift(ReferenceProfile.from_frame(frame(), sample_rows=0), harmless()).to_dict()
    assert drift["detected"]
    conf = {"drift": drift, "performance": {"records": _records(STEADY + [0.884]), "champion": "v1"}}
    dr = _dag("agentic_test_monitoring_agent").test(run_conf=conf)
    assert dr.state == "success"
    decision = _xcoms(dr, "monitor")["return_value"]
    assert decision["action"] == "alert" and decision["retrain"] is None
    assert _asset_events(dr.run_id) == []
    (request,) = hook.requests
    assert "alert: distribution shift in columns ['x1']" in request["json"]["text"]
    from airflow.models.variable import Variable

    Variable.delete("agentic_test_monitoring_state")
