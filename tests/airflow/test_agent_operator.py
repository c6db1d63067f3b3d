"""The agent operator on a real Airflow metadata database with dag.test(): rule planner, LLM connection,
approval answered through the HITL rows and Airflow's own resume path, and the trace in XCom."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def _dag(dag_id: str):
    from dagbag import load_dag

    return load_dag(dag_id)


def _xcom(dr, key="agent_run"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id="counter", key=key).one()
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


def test_rule_planner_dag_test(airflow_db):
    dag = _dag("agentic_test_rule")
    dr = dag.test()
    assert dr.state == "success"
    run = _xcom(dr)
    assert run["status"] == "finished"
    assert [s["tool"] for s in run["steps"]] == ["increment", "increment", "publish", "finish"]


def test_llm_connection_dag_test(airflow_db, monkeypatch):
    from llm_server import ScriptedLLM

    with ScriptedLLM() as server:
        server.then({"tool": "increment", "arguments": {"by": 2}}, {"tool": "finish"})
        monkeypatch.setenv("AIRFLOW_CONN_TEST_LLM", json.dumps({
            "conn_type": "agentic_llm", "host": server.base_url, "password": "sk-secret-xyz",
            "extra": {"model": "scripted-model", "timeout": 5, "max_retries": 0},
        }))
        dag = _dag("agentic_test_llm")
        dr = dag.test()
    assert dr.state == "success"
    run = _xcom(dr)
    assert [s["planner"] for s in run["steps"]] == ["llm", "llm"]
    assert "sk-secret-xyz" not in json.dumps(run)


@pytest.mark.e2e
@pytest.mark.parametrize("option", ["Approve", "Reject"])
def test_destructive_step_needs_approval_answered_through_rest(airflow_stack, scripted_llm, option):
    """The real scheduler runs the task; it parks in awaiting_input; a person answers through the REST API."""
    dag_id = f"agentic_test_hitl_{option.lower()}"
    scripted_llm.then({"tool": "wipe", "arguments": {"reason": "stale data"}}, {"tool": "finish"})
    calls_before = scripted_llm.calls
    run_id = airflow_stack.trigger(dag_id)
    airflow_stack.wait_task_state(dag_id, run_id, "counter", "awaiting_input", timeout=120)
    details = airflow_stack.hitl_details(dag_id, run_id)
    assert len(details) == 1
    assert details[0]["options"] == ["Approve", "Reject"] and "wipe" in details[0]["subject"]
    assert scripted_llm.calls == calls_before + 1  # asked once, then waiting: no worker held, no more calls
    r = airflow_stack.answer(dag_id, run_id, "counter", option)
    assert r.status_code == 200, r.text
    assert airflow_stack.answer(dag_id, run_id, "counter", option).status_code == 409  # one answer only
    state = airflow_stack.wait_run(dag_id, run_id)
    assert state == "success", airflow_stack.task_log(dag_id, run_id, "counter")[-4000:]
    run = airflow_stack.xcom(dag_id, run_id, "counter", key="agent_run")
    first = run["steps"][0]
    assert first["tool"] == "wipe" and first["approval"]["by"] == "admin"
    assert first["status"] == ("ok" if option == "Approve" else "rejected")
    assert first["replayed"] is True  # the decision before the wait came from the journal
    assert scripted_llm.calls == calls_before + 2  # only `finish` was asked after the resume
