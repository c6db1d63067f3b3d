"""Under the real `airflow standalone` (LocalExecutor): mapped HPO trials sharing one journal-file study, and a
production promotion and a production rollback that wait for a person's approval given through the HITL REST API."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from training.conftest import good_model, make_frame, register, weak_model

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture()
def stack_mlflow(airflow_stack, mlflow_uri):
    # The stack's environment was fixed at its start: the DAGs read the tracking URI from this file at run time.
    Path(os.environ["AIRFLOW_HOME"], "mlflow_uri.txt").write_text(mlflow_uri)
    return airflow_stack


def test_mapped_hpo_trials_share_one_study(stack_mlflow, data_dir, tmp_path):
    import optuna
    from mlflow import MlflowClient
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    stack = stack_mlflow
    journal = tmp_path / "optuna.log"
    name = "stack-hpo-model"
    run_id = stack.trigger("agentic_test_hpo_mapped", conf={
        "data": f"file://{data_dir}/train", "model_name": name, "journal": str(journal)})
    state = stack.wait_run("agentic_test_hpo_mapped", run_id, timeout=420)
    assert state == "success", stack.task_log("agentic_test_hpo_mapped", run_id, "register")[-3000:]
    storage = JournalStorage(JournalFileBackend(str(journal)))
    studies = optuna.get_all_study_summaries(storage)
    assert len(studies) == 1 and studies[0].n_trials == 6  # 3 mapped workers x 2 trials, one study
    result = stack.xcom("agentic_test_hpo_mapped", run_id, "register")
    assert result["version"] == "1"
    client = MlflowClient()
    trials = client.search_runs([result["experiment_id"]],
                                filter_string=f"tags.mlflow.parentRunId = '{result['run_id']}'")
    assert len(trials) == 6  # every worker nested its trials under the same parent run
    assert {str(a) for a in client.get_registered_model(name).aliases} == {"challenger"}


def test_production_promotion_waits_for_approval(stack_mlflow, data_dir):
    from mlflow import MlflowClient

    stack = stack_mlflow
    name = "stack-deploy-model"
    frame = make_frame(400, 21)
    champion = register(name, weak_model(frame), frame, "champion")
    challenger = register(name, good_model(make_frame(2000, 23)), frame, "challenger")
    dag_id = "agentic_test_deploy_production"
    run_id = stack.trigger(dag_id, conf={"model_name": name, "holdout": f"file://{data_dir}/holdout.parquet"})
    stack.wait_task_state(dag_id, run_id, "deploy", "awaiting_input", timeout=240)
    details = stack.hitl_details(dag_id, run_id)
    assert len(details) == 1 and "promote" in details[0]["subject"]
    assert MlflowClient().get_registered_model(name).aliases["champion"] == champion  # nothing moved yet
    assert stack.answer(dag_id, run_id, "deploy", "Approve").status_code == 200
    assert stack.wait_run(dag_id, run_id, timeout=240) == "success", stack.task_log(dag_id, run_id, "deploy")[-3000:]
    result = stack.xcom(dag_id, run_id, "deploy")
    assert result["promoted"] is True and result["promotion"]["to_version"] == challenger
    aliases = {a: str(v) for a, v in MlflowClient().get_registered_model(name).aliases.items()}
    assert aliases == {"champion": challenger, "previous": champion}


def test_production_rollback_answered_at_once(stack_mlflow, data_dir):
    """The rollback waits for approval too; the answer comes the moment the task parks. Airflow 3.3 may then fail
    the resumed attempt (the parked worker's exit is reported late under the same try number); the operator's
    default retry replays the journal and takes the answer already given, so nobody is asked twice."""
    from mlflow import MlflowClient

    from airflow_agentic.models.registry import ModelRegistry

    stack = stack_mlflow
    name = "stack-watch-model"
    frame = make_frame(400, 11)
    good = register(name, good_model(frame), frame, "previous")
    bad = register(name, weak_model(frame), frame, "champion")
    dag_id = "agentic_test_watch_production"
    run_id = stack.trigger(dag_id, conf={"model_name": name, "batch": f"file://{data_dir}/batch.parquet"})
    deadline = time.monotonic() + 240
    while (state := stack.task_state(dag_id, run_id, "watch")) != "awaiting_input":
        assert state not in ("failed", "success", "upstream_failed") and time.monotonic() < deadline, state
        time.sleep(0.1)
    assert stack.answer(dag_id, run_id, "watch", "Approve").status_code == 200
    assert stack.wait_run(dag_id, run_id, timeout=240) == "success", stack.task_log(dag_id, run_id, "watch")[-3000:]
    ti = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/watch").json()
    print(f"rollback finished in try {ti['try_number']}")  # 2 when the race above hit and the retry recovered
    result = stack.xcom(dag_id, run_id, "watch")
    assert result["rolled_back"] is True
    assert result["rollback"]["from_version"] == bad and result["rollback"]["to_version"] == good
    run = stack.xcom(dag_id, run_id, "watch", key="agent_run")
    (step,) = [s for s in run["steps"] if s["tool"] == "rollback"]
    assert step["approval"]["approved"] is True and step["approval"]["by"] == "admin"
    assert {a: str(v) for a, v in MlflowClient().get_registered_model(name).aliases.items()} == {"champion": good}
    assert ModelRegistry().history(name)[-1]["from"] == bad
