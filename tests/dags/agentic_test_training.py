"""Test DAGs for the training, HPO, deployment and watch operators (copied into the test dags folder).

Paths, model names and the margin come from `dag_run.conf`. Under `airflow standalone` the stack's environment is
fixed before the MLflow server exists, so the tracking URI is read at run time from $AIRFLOW_HOME/mlflow_uri.txt.
"""

from __future__ import annotations

import os

from airflow.sdk import DAG

from airflow_agentic.operators.deployment import DeploymentOperator
from airflow_agentic.operators.hpo import HPOTrialsOperator
from airflow_agentic.operators.rollback import ModelWatchOperator
from airflow_agentic.operators.training import TrainingOperator


def _tracking_uri_from_file(context) -> None:
    path = os.path.join(os.environ.get("AIRFLOW_HOME", "."), "mlflow_uri.txt")
    if os.path.exists(path):
        os.environ["MLFLOW_TRACKING_URI"] = open(path).read().strip()
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"


CONF = "{{ dag_run.conf"
COMMON = {"on_execute_callback": _tracking_uri_from_file}

with DAG("agentic_test_train", schedule=None, catchup=False):
    TrainingOperator(task_id="train", data=f"{CONF}['data'] }}}}", target="label",
                     model_name=f"{CONF}['model_name'] }}}}", families=["logistic_regression", "random_forest"],
                     n_trials=4, hpo_config={"cv_folds": 2, "n_startup_trials": 2},
                     drift_event=f"{CONF}.get('drift_event') | tojson }}}}", **COMMON)

with DAG("agentic_test_deploy", schedule=None, catchup=False):
    DeploymentOperator(task_id="deploy", model_name=f"{CONF}['model_name'] }}}}", holdout=f"{CONF}['holdout'] }}}}",
                       target="label", margin=f"{CONF}.get('margin', 0.0) }}}}", **COMMON)

with DAG("agentic_test_deploy_production", schedule=None, catchup=False):
    DeploymentOperator(task_id="deploy", model_name=f"{CONF}['model_name'] }}}}", holdout=f"{CONF}['holdout'] }}}}",
                       target="label", production=True, **COMMON)

with DAG("agentic_test_watch", schedule=None, catchup=False):
    ModelWatchOperator(task_id="watch", model_name=f"{CONF}['model_name'] }}}}", batch=f"{CONF}['batch'] }}}}",
                       target="label", margin=0.02, **COMMON)

with DAG("agentic_test_watch_production", schedule=None, catchup=False):
    ModelWatchOperator(task_id="watch", model_name=f"{CONF}['model_name'] }}}}", batch=f"{CONF}['batch'] }}}}",
                       target="label", margin=0.02, production=True, **COMMON)

with DAG("agentic_test_hpo_mapped", schedule=None, catchup=False):
    study = "{{ dag_run.conf['model_name'] }}-{{ run_id }}"
    storage = "journal://{{ dag_run.conf['journal'] }}"
    trials = HPOTrialsOperator.partial(
        task_id="hpo", data=f"{CONF}['data'] }}}}", target="label", model_name=f"{CONF}['model_name'] }}}}",
        family="logistic_regression", study_name=study, storage=storage, n_trials=2,
        hpo_config={"cv_folds": 2, "n_startup_trials": 2}, **COMMON,
    ).expand(worker=[0, 1, 2])
    register = TrainingOperator(task_id="register", data=f"{CONF}['data'] }}}}", target="label",
                                model_name=f"{CONF}['model_name'] }}}}", study_name=study, storage=storage,
                                **COMMON)
    trials >> register
