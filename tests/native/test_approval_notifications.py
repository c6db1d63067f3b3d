"""Approvals that reach a person: the agent parks a destructive step in Airflow's `awaiting_input`, and the approval
notifier (a WebhookNotifier on a loopback receiver) is told who asks, what, why and where to answer; a rejection
and a time-out are told too. Airflow's own code answers: the Core API's HITL route and the scheduler's time-out
sweep, on a real metadata database under dag.test()."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.integration

SECRET_PATH = "/services/T0000/B0000/s3cr3t-token"


def _ti(dag_id: str):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag_id, task_id="counter").order_by(
            TaskInstance.start_date.desc()).first()
        return (ti.run_id, ti.state) if ti else (None, None)


def _wait_parked(dag_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_id, state = _ti(dag_id)
        if state == "awaiting_input":
            return run_id
        time.sleep(0.2)
    raise TimeoutError(f"{dag_id} never parked for input")


def _reject_through_core_api(dag_id: str, run_id: str) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    with create_session() as session:
        update_hitl_detail(dag_id=dag_id, dag_run_id=run_id, task_id="counter",
                           update_hitl_detail_payload=UpdateHITLDetailPayload(
                               chosen_options=["Reject"], params_input={"comment": "not on a Friday"}),
                           user=SimpleAuthManagerUser(username="alice", role="admin"), session=session)


def _time_out_through_scheduler_sweep() -> None:
    import logging

    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    SchedulerJobRunner.check_awaiting_input_timeouts(SimpleNamespace(log=logging.getLogger("sweep")))


def _run_answering(dag, answer) -> tuple:
    errors: list[BaseException] = []

    def person():
        try:
            answer(_wait_parked(dag.dag_id))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test below
            errors.append(exc)

    helper = threading.Thread(target=person, daemon=True)
    helper.start()
    dr = dag.test()
    helper.join(30)
    assert not errors, errors
    return dr


@pytest.fixture()
def notified(webhook, native_llm, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_NATIVE_WEBHOOK", json.dumps({"conn_type": "http",
                                                                  "host": webhook.url + SECRET_PATH}))
    native_llm.then({"tool": "wipe", "arguments": {"reason": "stale rows from the old schema"}}, {"tool": "finish"})
    return webhook


def test_request_and_rejection_are_notified(airflow_db, notified, monkeypatch, tmp_path):
    from native_dags import load_native_dag as load_dag

    monkeypatch.setenv("AIRFLOW__AGENTIC__APPROVAL_NOTIFIER", "native_webhook")  # the configured default
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    monkeypatch.setenv("AGENTIC_NATIVE_SIDE_EFFECTS", str(tmp_path / "published.txt"))
    dag = load_dag("agentic_native_approval")

    dr = _run_answering(dag, lambda run_id: (notified.wait_for(1), _reject_through_core_api(dag.dag_id, run_id)))

    assert dr.state == "success"
    asked, rejected = [r["json"]["text"] for r in notified.wait_for(2)]
    assert all(r["path"] == SECRET_PATH for r in notified.requests)
    link = (f"https://airflow.example.com/dags/agentic_native_approval/runs/{quote(dr.run_id, safe='')}/tasks/"
            "counter/required_actions?map_index=-1")
    print(asked, rejected, sep="\n")
    # who, what, why, where
    assert asked.startswith(f"[agentic_native_approval.counter {dr.run_id}] approval_requested: counter asks for "
                            "approval of step 1: wipe (risk: destructive)")
    assert "stale rows from the old schema" in asked and "Why:" in asked and link in asked
    assert "was rejected by alice (not on a Friday); the step is skipped" in rejected and link in rejected
    assert len(notified.requests) == 2


def test_timed_out_approval_is_notified(airflow_db, notified, tmp_path, monkeypatch):
    from native_dags import load_native_dag as load_dag

    monkeypatch.setenv("AGENTIC_NATIVE_SIDE_EFFECTS", str(tmp_path / "published.txt"))
    dag = load_dag("agentic_native_approval_timeout")

    def nobody_answers(run_id):
        notified.wait_for(1)
        time.sleep(1.5)  # past the 1 s approval_timeout
        _time_out_through_scheduler_sweep()

    dr = _run_answering(dag, nobody_answers)

    assert dr.state == "success"
    asked, timed_out = [r["json"]["text"] for r in notified.wait_for(2)]
    assert "Unanswered after 0:00:01, the step is rejected" in asked
    assert "approval_timed_out: counter: nobody approved step 1: wipe in time; the step is skipped" in timed_out
    assert not (tmp_path / "published.txt").exists() or "wipe" not in (tmp_path / "published.txt").read_text()
