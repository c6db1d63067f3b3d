from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from model_data import make_frame

from airflow_agentic.models.dataset import Dataset
from airflow_agentic.models.hpo import (HPOConfig, HPOResult, create_or_load_study, make_pruner, make_sampler,
                                        resolve_storage, run_trials)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


@pytest.fixture(autouse=True)
def quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_pruning_warm_start_and_nested_mlflow_runs(tmp_path, mlflow_uri):
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment_id = client.create_experiment("hpo-pruning")
    parent = client.create_run(experiment_id, run_name="parent")
    champion = {"C": 0.37, "class_weight": "balanced"}
    data = Dataset(*make_frame(500))
    result = run_trials("pruning", str(tmp_path / "studies.db"), "logistic_regression", data, n_trials=14,
                        config=HPOConfig(cv_folds=3, n_startup_trials=3, seed=1), parent_run_id=parent.info.run_id,
                        warm_start_params=[champion, {"C": 0.37, "class_weight": "balanced", "unknown": 1}])

    assert result.trials[0].params == champion  # the champion's config runs first
    assert result.n_complete + result.n_pruned == 14  # the duplicate warm start was not queued twice
    assert result.n_pruned >= 1
    assert result.best_score > 0.85
    assert result.mean_trial_cost_seconds > 0
    assert HPOResult.from_dict(result.to_dict()).best_params == result.best_params

    runs = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                              max_results=100)
    states = sorted(r.data.tags["agentic.trial_state"] for r in runs)
    assert len(runs) == 14 and "PRUNED" in states and "COMPLETE" in states
    complete = next(r for r in runs if r.data.tags["agentic.trial_state"] == "COMPLETE")
    assert {"score", "fit_seconds", "duration_seconds", "objective"} <= set(complete.data.metrics)
    assert set(complete.data.params) == {"C", "class_weight"}

    from airflow_agentic.models.architect import history_from_mlflow

    history = history_from_mlflow("hpo-pruning")
    assert history["logistic_regression"].best_score == pytest.approx(result.best_score)
    assert history["logistic_regression"].n_trials == result.n_complete
    assert history["logistic_regression"].best_params == result.best_params


def test_stage_pruning_and_cost_penalty(tmp_path):
    data = Dataset(*make_frame(400))
    config = HPOConfig(prune_on="stages", n_stages=3, n_startup_trials=2, cost_penalty=0.5, seed=3)
    result = run_trials("stages", str(tmp_path / "j.log"), "hist_gradient_boosting", data, n_trials=6,
                        config=config, log_to_mlflow=False)
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    assert complete and result.n_complete + result.n_pruned == 6
    for trial in complete:  # objective = score - penalty * fit seconds
        assert trial.value == pytest.approx(trial.score - 0.5 * trial.fit_seconds)


WORKER = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [{here!r}, {repo!r}]
    from model_data import make_frame
    from airflow_agentic.models.dataset import Dataset
    from airflow_agentic.models.hpo import HPOConfig, run_trials
    result = run_trials("parallel", sys.argv[1], "logistic_regression", Dataset(*make_frame(300)), n_trials=5,
                        config=HPOConfig(cv_folds=2, pruner="none"), log_to_mlflow=False,
                        worker_id=int(sys.argv[2]))
    print(json.dumps([t.number for t in result.trials]))
""")


def test_journal_storage_two_processes_on_one_study(tmp_path):
    import json

    journal = str(tmp_path / "study.journal")
    script = WORKER.format(here=str(HERE), repo=str(REPO))
    workers = [subprocess.Popen([sys.executable, "-c", script, f"journal://{journal}", str(i)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[1][-2000:] for o in outputs]
    numbers = [json.loads(o[0].strip().splitlines()[-1]) for o in outputs]
    assert sorted(numbers[0] + numbers[1]) == list(range(10))  # no trial number handed out twice

    study = create_or_load_study("parallel", journal)
    assert len(study.trials) == 10
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 10  # workers sampled differently


def test_rdb_storage_on_postgres(postgres_url):
    storage = resolve_storage(postgres_url)
    assert type(storage).__name__ == "RDBStorage"
    data = Dataset(*make_frame(300))
    first = run_trials("pg", postgres_url, "logistic_regression", data, n_trials=3,
                       config=HPOConfig(cv_folds=2), log_to_mlflow=False)
    second = run_trials("pg", postgres_url, "logistic_regression", data, n_trials=2, worker_id=1,
                        config=HPOConfig(cv_folds=2), log_to_mlflow=False, max_total_trials=4)
    assert len(first.trials) == 3 and len(second.trials) == 1  # the study-wide cap stopped the second worker
    study = create_or_load_study("pg", postgres_url)
    assert len(study.trials) == 4
    assert second.best_score == max(t.value for t in study.trials if t.value is not None)


def test_factories_reject_unknown_names():
    with pytest.raises(ValueError):
        make_sampler("grid")
    with pytest.raises(ValueError):
        make_pruner("hyperband-ish")


def _finished(study, running_means):
    import optuna

    for values in running_means:
        study.add_trial(optuna.trial.create_trial(
            params={}, distributions={}, value=values[-1],
            intermediate_values=dict(enumerate(values))))


def test_best_gap_pruner_stops_only_trials_that_cannot_catch_up():
    import optuna

    pruner = make_pruner("best_gap", n_startup_trials=3)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    # running CV means on the same 4 folds; gaps to the best move by about 0.002 between fold 1 and the end
    _finished(study, [[0.900, 0.902, 0.901, 0.903], [0.880, 0.881, 0.884, 0.883], [0.870, 0.869, 0.872, 0.871],
                      [0.860, 0.862, 0.861, 0.864]])

    def running(first):
        return optuna.trial.create_trial(params={}, distributions={}, state=optuna.trial.TrialState.RUNNING,
                                         intermediate_values={0: first})

    assert pruner.prune(study, running(0.850))  # 0.05 behind the best on the same fold: hopeless
    assert not pruner.prune(study, running(0.899))  # within the spread: may still win
    assert not pruner.prune(study, running(0.950))  # ahead
    assert not make_pruner("best_gap", n_startup_trials=5).prune(study, running(0.850))  # too few finished yet


def test_defaults_first_fixed_evaluation_and_cost_weight(tmp_path):
    import math

    from airflow_agentic.models.families import get_family

    data = Dataset(*make_frame(300))
    runs = [run_trials(f"defaults-{seed}", str(tmp_path / "s.db"), "logistic_regression", data, n_trials=3,
                       config=HPOConfig(cv_folds=2, seed=seed, eval_seed=0, cost_weight=0.01), log_to_mlflow=False)
            for seed in (1, 2)]
    defaults = get_family("logistic_regression").default_params()
    for result in runs:
        first = result.trials[0]
        assert first.params == defaults  # no warm start: the family's defaults go first
        assert first.fit_cpu_seconds > 0
        # objective = score - cost_weight * log2(fit CPU seconds per fold)
        assert first.value == pytest.approx(first.score - 0.01 * math.log2(max(first.fit_cpu_seconds / 2, 1e-3)))
    # same eval_seed: the same setting scores the same in both studies, whatever the sampler seed
    assert runs[0].trials[0].score == pytest.approx(runs[1].trials[0].score)
