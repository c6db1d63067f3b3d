"""``HPOTrialsOperator``: one share of a hyperparameter search on a shared Optuna study, for mapped parallel tasks::

    trials = HPOTrialsOperator.partial(task_id="hpo", data=..., target="label", model_name="churn",
                                       family="hist_gradient_boosting", study_name="churn-{{ run_id }}",
                                       storage="journal:///shared/optuna/churn.log", n_trials=4,
                                       ).expand(worker=[0, 1, 2])
    register = TrainingOperator(task_id="register", ..., study_name="churn-{{ run_id }}",
                                storage="journal:///shared/optuna/churn.log")
    trials >> register

Each mapped task loads the same study (journal file for workers on one machine, PostgreSQL for several), runs its
trials with a sampler seeded by ``worker`` and logs them as runs nested under one MLflow parent run that all workers
find by the study's name. It is a plain operator, not an agent: the decisions were taken by whoever planned the study.

Reproducible across worker counts: give ``n_workers`` (the length of the ``expand`` list). The study is then a fixed
plan of ``n_trials * n_workers`` settings (``airflow_agentic.models.hpo.run_planned_trials``) and worker ``w`` runs
plan positions ``w, w + n_workers, ...``; the best the final task registers is the one a single worker running the
whole plan would find, whichever Celery worker ran which share and in what order::

    trials = HPOTrialsOperator.partial(task_id="hpo", ..., storage="postgresql://.../optuna", n_trials=4,
                                       n_workers=2).expand(worker=[0, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_agentic.links.mlflow import RUN_URL_XCOM_KEY, MLflowRunLink

if TYPE_CHECKING:
    from airflow.sdk import Context


class HPOTrialsOperator(BaseOperator):
    """Run ``n_trials`` of ``family`` on study ``study_name``; returns the ``HPOResult`` dict without per-trial rows
    (plus ``trials_run``), including the study's best over all workers so far.

    :param max_total_trials: stop every worker once the study holds this many finished trials.
    :param n_workers: run a fixed plan of ``n_trials * n_workers`` settings shared by that many mapped tasks (this
        one runs its share, chosen by ``worker``): the study's best is then independent of how many workers ran it
        (no pruning, no timing terms in the objective; ``timeout`` and ``max_total_trials`` do not apply).
    :param drop: columns of ``data`` that are not features (ids, timestamps), left out when present.
    :param conn_id: Airflow connection for the object store holding the data (e.g. ``aws_default`` for ``s3://``);
        None: the one named in the URL, or the store's default.
    """

    template_fields: Sequence[str] = ("data", "target", "model_name", "experiment_name", "family", "study_name",
                                      "storage")
    operator_extra_links = (MLflowRunLink(),)
    ui_color = "#fdf3e8"

    def __init__(self, *, data: str, target: str = "label", model_name: str, family: str, study_name: str,
                 storage: str | None = None, worker: int = 0, n_trials: int = 5, timeout: float | None = None,
                 metric: str = "accuracy", experiment_name: str | None = None, max_total_trials: int | None = None,
                 n_workers: int | None = None,
                 categorical: list[str] | None = None, drop: list[str] | None = None,
                 hpo_config: dict[str, Any] | None = None,
                 conn_id: str | None = None, mlflow_conn_id: str | None = "mlflow_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if n_workers is not None and int(n_workers) < 1:
            raise ValueError(f"n_workers must be at least 1, got {n_workers}")
        self.n_workers = n_workers
        self.data = data
        self.target = target
        self.model_name = model_name
        self.family = family
        self.study_name = study_name
        self.storage = storage
        self.worker = worker
        self.n_trials = n_trials
        self.timeout = timeout
        self.metric = metric
        self.experiment_name = experiment_name
        self.max_total_trials = max_total_trials
        self.categorical = categorical
        self.drop = drop
        self.hpo_config = hpo_config
        self.conn_id = conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> Any:
        from airflow_agentic.agents.training import ensure_parent_run, safe_key
        from airflow_agentic.hooks.mlflow import MLflowHook, run_url
        from airflow_agentic.models.hpo import HPOConfig, run_planned_trials, run_trials
        from airflow_agentic.config import mlflow_tracking, optuna_storage
        from airflow_agentic.operators._mlops import load_dataset, push_url

        hook = MLflowHook(self.mlflow_conn_id)
        client = hook.client()
        dataset = load_dataset(self.data, self.target, categorical=self.categorical, drop=self.drop,
                               conn_id=self.conn_id)
        experiment = self.experiment_name or f"{self.model_name}-training"
        ti = context["ti"]
        # The TrainingOperator that registers this study's best finds the same parent run by the same key.
        experiment_id, parent_run_id = ensure_parent_run(
            client, experiment, safe_key(self.study_name), run_name=f"train-{self.model_name}",
            tags={"agentic.study": self.study_name, "agentic.dag_id": ti.dag_id, "agentic.run_id": ti.run_id})
        storage = self.storage or optuna_storage()
        config = HPOConfig(**{**(self.hpo_config or {}), "metric": self.metric})
        with mlflow_tracking(hook.tracking_uri()):
            if self.n_workers:
                result = run_planned_trials(self.study_name, storage, self.family, dataset,
                                            int(self.n_trials) * int(self.n_workers), worker_id=int(self.worker),
                                            n_workers=int(self.n_workers), config=config,
                                            parent_run_id=parent_run_id, tracking_uri=hook.tracking_uri())
            else:
                result = run_trials(self.study_name, storage, self.family, dataset, int(self.n_trials), self.timeout,
                                    config=config, parent_run_id=parent_run_id, tracking_uri=hook.tracking_uri(),
                                    max_total_trials=self.max_total_trials, worker_id=int(self.worker))
        push_url(context, RUN_URL_XCOM_KEY, run_url(hook.ui_url(), experiment_id, parent_run_id))
        summary = {k: v for k, v in result.to_dict().items() if k not in ("trials", "config")}
        summary.update(trials_run=len(result.trials), parent_run_id=parent_run_id,
                       trial_numbers=[t.number for t in result.trials])
        self.log.info("worker %s ran %d trials of %s on %s; study best %s", self.worker, len(result.trials),
                      self.family, self.study_name, result.best_score)
        return summary
