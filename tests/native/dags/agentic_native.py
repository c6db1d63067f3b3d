"""DAGs of the tests in tests/native (copied into the test dags folder by tests/native/conftest.py).

A counter agent whose `publish` side effect appends a line to a file, so a test can count side effects across
retries; the planner is the LLM connection `native_llm` (a scripted loopback server)."""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import DAG, task

from airflow_agentic.notifications.deadline import retraining_deadline
from airflow_agentic.notifications.webhook import WebhookNotifier
from airflow_agentic.operators.agent import AgentOperator


class FileLog(list):
    """The agent's `published` list, also appended to a file that outlives the attempt."""

    def __init__(self, path: str | None):
        super().__init__()
        self.path = path

    def append(self, item) -> None:
        super().append(item)
        if self.path:
            with open(self.path, "a") as fh:
                fh.write(f"{item}\n")


class NativeCounterOperator(AgentOperator):
    def __init__(self, *, fail_first_try: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.fail_first_try = fail_first_try

    def build_agent(self, context):
        from agents.toy import CounterAgent  # tests/ is on sys.path in the test session

        return CounterAgent(target=2, published=FileLog(os.environ.get("AGENTIC_NATIVE_SIDE_EFFECTS")))

    def on_finish(self, context, run):
        if self.fail_first_try and context["ti"].try_number == 1:
            # The agent finished, then the attempt died before Airflow recorded it: the retry must replay.
            raise RuntimeError("the worker died after the agent finished")
        return run.result


journal = os.environ.get("AGENTIC_NATIVE_JOURNAL")

for backend in ("store", "file"):
    with DAG(f"agentic_native_replay_{backend}", schedule=None, catchup=False):
        NativeCounterOperator(task_id="counter", llm_conn_id="native_llm", fail_first_try=True, retries=1,
                              retry_delay=timedelta(0),
                              journal_path=(f"file://{journal}" if backend == "file" and journal else None))

# The notifier from `[agentic] approval_notifier` (the test sets it), and one given to the operator.
with DAG("agentic_native_approval", schedule=None, catchup=False):
    NativeCounterOperator(task_id="counter", llm_conn_id="native_llm")

with DAG("agentic_native_approval_timeout", schedule=None, catchup=False):
    NativeCounterOperator(task_id="counter", llm_conn_id="native_llm", approval_timeout=timedelta(seconds=1),
                          approval_notifier=[WebhookNotifier(conn_id="native_webhook")])

# A retraining that overruns its deadline (6 s): the real scheduler and triggerer tell the webhook.

with DAG("agentic_native_deadline", schedule=None, catchup=False,
         deadline=retraining_deadline(minutes=0.1, conn_id="native_webhook")):

    @task
    def slow_retraining():
        import time

        time.sleep(30)

    slow_retraining()
