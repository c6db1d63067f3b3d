"""Test DAGs for the agent operator (copied into the test dags folder by tests/conftest.py)."""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_agentic.operators.agent import AgentOperator


class CounterAgentOperator(AgentOperator):
    def build_agent(self, context):
        from agents.toy import CounterAgent  # tests/ is on sys.path in the test session

        return CounterAgent(target=2)


journal = os.environ.get("AGENTIC_TEST_JOURNAL")

with DAG("agentic_test_rule", schedule=None, catchup=False):
    CounterAgentOperator(task_id="counter")

with DAG("agentic_test_llm", schedule=None, catchup=False):
    CounterAgentOperator(task_id="counter", llm_conn_id="test_llm", allowed_tools=["increment"])

for option in ("approve", "reject"):
    with DAG(f"agentic_test_hitl_{option}", schedule=None, catchup=False):
        CounterAgentOperator(task_id="counter", llm_conn_id="test_llm", journal_path=journal and f"file://{journal}/{option}")
