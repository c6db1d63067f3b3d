"""Parallel HPO that is reproducible: a planned study shared by several workers on a real PostgreSQL (Optuna's RDB
storage) finds exactly the best a single worker finds, whichever worker ran which trial; mapped HPOTrialsOperator
tasks under dag.test() share the study and the final task registers that best."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from model_data import make_frame

from airflow_agentic.models.dataset import Dataset
from airflow_agentic.models.hpo import (PLAN_INDEX, HPOConfig, best_trial, create_or_load_study, plan_trials,
                                        run_planned_trials)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONFIG = HPOConfig(cv_folds=2, seed=5)
PLANNED = 4


@pytest.fixture(autouse=True)
def quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _by_plan(study_name: str, storage: str) -> dict[int, tuple[dict, float]]:
    from optuna.trial import TrialState

    study = create_or_load_study(study_name, storage)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    indices = [t.user_attrs[PLAN_INDEX] for t in complete]
    assert len(indices) == len(set(indices)), "a planned setting ran twice"
    return {t.user_attrs[PLAN_INDEX]: (dict(t.params), t.value) for t in complete}


def test_the_plan_is_fixed_by_its_arguments():
    first = plan_trials("logistic_regression", 8, seed=3)
    assert first == plan_trials("logistic_regression", 8, seed=3)
    assert first != plan_trials("logistic_regression", 8, seed=4)
    assert len(first) == 8 and len({json.dumps(p, sort_keys=True) for p in first}) == 8
    from airflow_agentic.models.families import get_family

    assert first[0] == get_family("logistic_regression").default_params()  # the defaults go first
    data = Dataset(*make_frame(100))
    for bad in (HPOConfig(seed=None), HPOConfig(cost_weight=0.01)):  # would make the best depend on the run
        with pytest.raises(ValueError):
            run_planned_trials("bad", "sqlite://", "logistic_regression", data, 2, config=bad, log_to_mlflow=False)


WORKER = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [{here!r}, {repo!r}]
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from model_data import make_frame
    from airflow_agentic.models.dataset import Dataset
    from airflow_agentic.models.hpo import HPOConfig, run_planned_trials
    result = run_planned_trials("parallel", sys.argv[1], "logistic_regression", Dataset(*make_frame(300)), {planned},
                                worker_id=int(sys.argv[2]), n_workers=2, config=HPOConfig(cv_folds=2, seed=5),
                                log_to_mlflow=False)
    print(json.dumps([t.number for t in result.trials]))
""")


@pytest.mark.integration
def test_two_processes_on_postgres_find_the_serial_best(postgres_url):
    data = Dataset(*make_frame(300))
    serial = run_planned_trials("serial", postgres_url, "logistic_regression", data, PLANNED, config=CONFIG,
                                log_to_mlflow=False)
    assert serial.n_complete == PLANNED

    script = WORKER.format(here=str(HERE), repo=str(REPO), planned=PLANNED)
    workers = [subprocess.Popen([sys.executable, "-c", script, postgres_url, str(i)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[1][-2000:] for o in outputs]
    numbers = [json.loads(o[0].strip().splitlines()[-1]) for o in outputs]
    assert sorted(numbers[0] + numbers[1]) == list(range(PLANNED))  # one study, trial numbers handed out once
    assert len(numbers[0]) == len(numbers[1]) == PLANNED // 2

    # Same settings with the same scores at the same plan positions, so the same best, by construction.
    assert _by_plan("parallel", postgres_url) == _by_plan("serial", postgres_url)
    again = run_planned_trials("parallel", postgres_url, "logistic_regression", data, PLANNED, worker_id=0,
                               n_workers=2, config=CONFIG, log_to_mlflow=False)
    assert again.trials == []  # a retried worker finds its share done and runs nothing twice
    assert (again.best_params, again.best_score) == (serial.best_params, serial.best_score)

    def best_position(name: str) -> int:
        from optuna.trial import TrialState

        trials = create_or_load_study(name, postgres_url).get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return best_trial(trials).user_attrs[PLAN_INDEX]

    assert best_position("parallel") == best_position("serial")


MAPPED_DAG = textwrap.dedent('''
    from airflow.sdk import DAG

    from airflow_agentic.operators.hpo import HPOTrialsOperator
    from airflow_agentic.operators.training import TrainingOperator

    CONF = "{{ dag_run.conf"
    with DAG("agentic_test_hpo_planned", schedule=None, catchup=False):
        common = dict(data=f"{CONF}['data'] }}}}", target="label", model_name=f"{CONF}['model_name'] }}}}",
                      study_name=f"{CONF}['study'] }}}}", storage=f"{CONF}['storage'] }}}}")
        trials = HPOTrialsOperator.partial(task_id="hpo", family="logistic_regression", n_trials=2, n_workers=2,
                                           hpo_config={"cv_folds": 2, "seed": 5}, **common).expand(worker=[0, 1])
        trials >> TrainingOperator(task_id="register", **common)
''')


@pytest.mark.integration
def test_mapped_trial_tasks_share_the_study_and_register_the_serial_best(airflow_db, mlflow_uri, postgres_url,
                                                                          tmp_path):
    from dagbag import load_dag
    from mlflow import MlflowClient

    X, y = make_frame(300)
    (tmp_path / "train").mkdir()
    X.assign(label=y).to_parquet(tmp_path / "train" / "batch.parquet")
    Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "agentic_test_hpo_planned.py").write_text(MAPPED_DAG)
    dag = load_dag("agentic_test_hpo_planned", "agentic_test_hpo_planned.py")
    run = dag.test(run_conf={"data": f"file://{tmp_path}/train", "model_name": "planned-hpo", "study": "mapped",
                             "storage": postgres_url})
    assert run.state == "success"

    serial = run_planned_trials("mapped-serial", postgres_url, "logistic_regression", Dataset(X, y), 4,
                                config=HPOConfig(cv_folds=2, seed=5, metric="accuracy"), log_to_mlflow=False)
    mapped = _by_plan("mapped", postgres_url)
    assert sorted(mapped) == [0, 1, 2, 3]  # two mapped tasks x two trials, each plan position once
    assert mapped == _by_plan("mapped-serial", postgres_url)
    version = MlflowClient().get_model_version_by_alias("planned-hpo", "challenger")
    assert json.loads(version.tags["agentic.params"]) == serial.best_params  # the final task registered that best
