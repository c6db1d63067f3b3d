"""`agentic_retraining` declares an Airflow DeadlineAlert; a missed deadline posts through the provider's notifier."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _parse_retraining_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "agentic_retraining.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("agentic_retraining")


def test_retraining_dag_declares_a_deadline_that_serializes(airflow_db, monkeypatch):
    from airflow.sdk import AsyncCallback, DeadlineReference
    from airflow.serialization.serialized_objects import DagSerialization

    monkeypatch.setenv("AIRFLOW__AGENTIC__RETRAINING_DEADLINE", "45")
    dag = _parse_retraining_dag()
    (alert,) = dag.deadline
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT and alert.interval == timedelta(minutes=45)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "airflow_agentic.notifications.deadline.notify_missed_deadline"
    assert alert.callback.kwargs == {"what": "retraining", "minutes": 45.0}  # no URL, no secret
    serialized = json.dumps(DagSerialization.to_dict(dag), default=str)
    assert "notify_missed_deadline" in serialized


@pytest.mark.parametrize("value, expected", [("0", None), ("1.5", timedelta(seconds=90))])
def test_deadline_setting(monkeypatch, value, expected):
    from airflow_agentic.notifications.deadline import retraining_deadline

    monkeypatch.setenv("AIRFLOW__AGENTIC__RETRAINING_DEADLINE", value)
    alert = retraining_deadline()
    assert (alert.interval if alert else None) == expected


@pytest.mark.parametrize("value", ["soon", "-5"])
def test_bad_deadline_setting_is_a_clear_error(monkeypatch, value):
    from airflow_agentic.notifications.deadline import retraining_deadline

    monkeypatch.setenv("AIRFLOW__AGENTIC__RETRAINING_DEADLINE", value)
    with pytest.raises(ValueError, match="minutes"):
        retraining_deadline()


def test_missed_deadline_posts_to_the_webhook(webhook, monkeypatch):
    """The callback as Airflow's CallbackTrigger calls it: kwargs plus the scheduler's simple context."""
    from airflow_agentic.notifications.deadline import notify_missed_deadline

    monkeypatch.setenv("AIRFLOW_CONN_PEOPLE", json.dumps({"conn_type": "http", "host": f"{webhook.url}/hooks/x"}))
    monkeypatch.setenv("AIRFLOW__AGENTIC__APPROVAL_NOTIFIER", "people")
    context = {"dag_run": {"dag_id": "agentic_retraining", "dag_run_id": "asset_triggered__1", "state": "running",
                           "queued_at": "2026-12-03T05:00:00+00:00"},
               "deadline": {"id": "d1", "deadline_time": "2026-12-03T06:00:00+00:00"}}
    message = asyncio.run(notify_missed_deadline(what="retraining", minutes=60.0, context=context))
    (request,) = webhook.wait_for(1)
    assert request["path"] == "/hooks/x"
    assert request["json"]["text"] == f"[agentic_retraining asset_triggered__1] deadline_missed: {message}"
    assert "retraining run asset_triggered__1 of agentic_retraining has not finished 60 minutes after" in message


@pytest.mark.e2e
def test_a_run_past_its_deadline_is_notified_under_the_real_scheduler(native_stack):
    """Scheduler: the deadline passes and the miss is queued; triggerer: the provider's callback posts."""
    import time

    stack, receiver = native_stack
    run_id = stack.trigger("agentic_native_deadline")
    started = time.monotonic()
    (request,) = receiver.wait_for(1, timeout=120)
    text = request["json"]["text"]
    print(f"deadline notification {time.monotonic() - started:.1f} s after the trigger: {text}")
    assert request["path"] == "/hooks/people"
    assert text.startswith(f"[agentic_native_deadline {run_id}] deadline_missed: the retraining run {run_id}")
    assert "has not finished 0.1 minutes after it was queued (state running" in text
