"""What keeps an approval-gated agent task whole when Airflow 3.3 drops the attempt an answer resumed (a late
"success" from the parked worker, same try number, reads as "killed externally"): one default retry, a journal that
outlives a finished run until a deliberate re-run, and a trigger that reads the answer the person already gave.
The whole path runs under the real scheduler in tests/training/test_stack.py; these are its parts, in milliseconds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest


def test_operators_that_may_ask_retry_once_unless_the_dag_says_otherwise():
    from airflow.sdk import DAG

    from airflow_agentic.operators.deployment import DeploymentOperator
    from airflow_agentic.operators.rollback import ModelWatchOperator

    with DAG("recovery_defaults", schedule=None):
        gated = DeploymentOperator(task_id="gated", model_name="m", holdout="file:///x", production=True)
        automatic_watch = ModelWatchOperator(task_id="watch", model_name="m", batch="file:///x")
        chosen = ModelWatchOperator(task_id="chosen", model_name="m", batch="file:///x", production=True, retries=0)
    with DAG("recovery_default_args", schedule=None, default_args={"retries": 3}):
        from_default_args = DeploymentOperator(task_id="gated", model_name="m", holdout="file:///x", production=True)

    assert (gated.retries, gated.retry_delay) == (1, timedelta(seconds=10))
    assert automatic_watch.retries == 0  # no approval possible: Airflow's default
    assert chosen.retries == 0 and from_default_args.retries == 3


def test_answer_trigger_round_trips_and_asks_again_when_there_is_nothing_to_read():
    from airflow_agentic.triggers.approval import ASK_AGAIN, ApprovalAnswerTrigger

    trigger = ApprovalAnswerTrigger(ti_id=uuid.uuid4(), options=["Approve", "Reject"], settle_seconds=0.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_agentic.triggers.approval.ApprovalAnswerTrigger"
    again = ApprovalAnswerTrigger(**kwargs)
    assert again.ti_id == trigger.ti_id and again.settle_seconds == 0.0

    async def first_event():
        async for event in again.run():
            return event.payload

    # Outside a triggerer there is no HITL detail to read: the task is told to ask again rather than hang.
    payload = asyncio.run(first_event())
    assert payload["error_type"] == ASK_AGAIN


@pytest.mark.parametrize("max_tries, replays", [(1, True), (2, False)])
def test_finished_journal_replays_on_a_retry_and_starts_afresh_after_a_clear(tmp_path, max_tries, replays):
    from airflow_agentic.operators.agent import AgentOperator

    op = AgentOperator(task_id="agent", journal_path=f"file://{tmp_path}")
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="agent", map_index=-1, try_number=1, max_tries=1)
    journal = op._journal({"ti": ti})
    journal.record(1, decision={"tool": "wipe"}, result={"wiped": 3})
    journal.mark_finished(try_number=1, max_tries=1, status="finished")

    # try 2 of the same series (a retry) keeps max_tries; a clear raises it
    op._start_afresh_if_cleared({"ti": SimpleNamespace(**{**vars(ti), "try_number": 2, "max_tries": max_tries})})
    again = op._journal({"ti": ti})
    assert (again.get(1).get("result") == {"wiped": 3}) is replays
    assert (again.finished is not None) is replays
