"""Durable replay on both journal backends, through Airflow's own task runner on a real metadata database
(dag.test()): Airflow 3.3's task state store (the default) and an ObjectStoragePath file (`journal_path`).

The agent finishes, then its attempt dies before Airflow records it; the retry replays without a single LLM call
and without publishing twice. A deliberate clear starts afresh."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

SCRIPT = ({"tool": "increment", "arguments": {"by": 2}}, {"tool": "publish", "arguments": {"channel": "ops"}},
          {"tool": "finish"})


def _rows(model, dr, task_id="counter"):
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(model).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id).all()


def _clear_and_run_again(dag, dr, task_id="counter"):
    """What Browse -> Clear does (a new try with a raised max_tries), then the task runner runs that try."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id).all()
        clear_task_instances(tis, session, dag_run_state=DagRunState.RUNNING)
    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id).one()
        ti.try_number += 1
        ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        session.refresh(ti)
        session.expunge(ti)
    _run_task(ti=ti, task=dag.task_dict[task_id])
    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id).one()
        return ti.state, ti.try_number, ti.max_tries


@pytest.mark.parametrize("backend", ["store", "file"])
def test_replay_on_retry_and_afresh_after_clear(airflow_db, native_llm, tmp_path, monkeypatch, backend):
    from airflow.models.task_state_store import TaskStateStoreModel
    from native_dags import load_native_dag as load_dag

    side_effects = tmp_path / "published.txt"
    monkeypatch.setenv("AGENTIC_NATIVE_SIDE_EFFECTS", str(side_effects))
    monkeypatch.setenv("AGENTIC_NATIVE_JOURNAL", str(tmp_path / "journal"))
    native_llm.then(*SCRIPT)

    dag = load_dag(f"agentic_native_replay_{backend}")
    dr = dag.test()

    assert dr.state == "success"
    assert native_llm.calls == 3  # try 1 planned three steps; try 2 (the retry) asked nothing
    assert side_effects.read_text().splitlines() == ["('ops', 2)"]  # published once over both tries
    store_keys = sorted(row.key for row in _rows(TaskStateStoreModel, dr))
    files = sorted(p.name for p in (tmp_path / "journal").rglob("*") if p.is_file())
    if backend == "store":
        assert store_keys == ["agentic.journal", *(f"agentic.journal.step.{i}" for i in (1, 2, 3))]
        assert files == []
    else:
        assert store_keys == [] and files == ["counter.json"]  # no temporary file left beside it

    # A deliberate re-run (clear) plans afresh and acts again.
    native_llm.then(*SCRIPT)
    state, try_number, max_tries = _clear_and_run_again(dag, dr)
    assert (state, try_number) == ("success", 3) and max_tries > 1
    assert native_llm.calls == 6
    assert side_effects.read_text().splitlines() == ["('ops', 2)", "('ops', 2)"]
