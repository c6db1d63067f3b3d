"""Model search in parallel: ``n_workers`` mapped ``HPOTrialsOperator`` tasks share one Optuna study, then the
study's best is registered as a ``challenger``.

Trigger it by hand (UI or REST API); every parameter has a default. ``shares`` turns ``n_workers`` into one mapped
trial task per worker; the tasks run wherever the executor puts them (with CeleryExecutor: on any Celery worker) and
meet in the study ``<model_name>-<run_id>`` on the configured Optuna storage (``[agentic] optuna_storage``: the
stack's PostgreSQL database ``optuna``). The study is a fixed, seeded plan of ``n_workers * trials_per_worker``
settings and worker ``w`` runs plan positions ``w, w + n_workers, ...`` (``airflow_agentic.models.hpo
.run_planned_trials``): its best is the one a single worker running the whole plan would find, however many workers
ran it and in what order. ``register`` (``TrainingOperator`` with ``study_name``) then refits that best setting on
all the data and registers it as a new version of ``model_name`` with the alias ``challenger`` (the
``agentic_deployment`` gate decides whether it becomes the champion).

The default ``data`` is every clean batch the Data Steward published (``<data_root>/clean/*/clean.parquet``, there
once the flywheel has ingested a batch); ``NOT_FEATURES`` names the columns that are not features (the batches'
``row_id``), left out of training where present. Settings come from the ``[agentic]`` configuration section
(``airflow_agentic.config``): ``data_root``, ``model_name``, ``optuna_storage``, ``mlflow_tracking_uri``. Nothing is
looked up over the network while parsing.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, task

from airflow_agentic import config
from airflow_agentic.operators.hpo import HPOTrialsOperator
from airflow_agentic.operators.training import TrainingOperator

DATA_ROOT = config.data_root()
FAMILIES = ["logistic_regression", "hist_gradient_boosting", "random_forest", "mlp"]
STUDY = "{{ params.model_name }}-{{ run_id }}"
NOT_FEATURES = ["row_id"]  # the flywheel's id column
HPO_CONFIG = {"cv_folds": 3, "seed": 0}  # the seed fixes the plan: the same best for any number of workers


@task
def shares(params: dict | None = None) -> list[dict]:
    """One mapped trial task per worker: its place in the plan and the plan's size."""
    n_workers, per_worker = int(params["n_workers"]), int(params["trials_per_worker"])
    if n_workers < 1 or per_worker < 1:
        raise ValueError(f"n_workers and trials_per_worker must be at least 1, got {n_workers}, {per_worker}")
    return [{"worker": w, "n_workers": n_workers, "n_trials": per_worker, "metric": params["metric"]}
            for w in range(n_workers)]


with DAG(
    "agentic_model_search",
    schedule=None,
    catchup=False,
    # A retried trial task (a lost worker) skips the plan positions the study already holds.
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    doc_md=__doc__,
    tags=["agentic"],
    params={
        "data": Param(f"{DATA_ROOT}/clean/*/clean.parquet", type="string",
                      description="Parquet URL (file, folder or glob) of labelled training data: features and `label`"),
        "model_name": Param(config.model_name(), type="string",
                            description="registered model that gets the best as a new `challenger` version"),
        "family": Param("hist_gradient_boosting", type="string", enum=FAMILIES, description="model family searched"),
        "n_workers": Param(2, type="integer", minimum=1, maximum=32,
                           description="how many mapped trial tasks share the study (one per worker slot)"),
        "trials_per_worker": Param(4, type="integer", minimum=1, description="planned trials each task runs"),
        "metric": Param("accuracy", type="string", enum=["accuracy", "roc_auc", "average_precision", "f1"],
                        description="cross-validated score the search maximises"),
    },
):
    trials = HPOTrialsOperator.partial(
        task_id="trials", data="{{ params.data }}", target="label", model_name="{{ params.model_name }}",
        family="{{ params.family }}", study_name=STUDY, hpo_config=HPO_CONFIG, drop=NOT_FEATURES,
    ).expand_kwargs(shares())
    register = TrainingOperator(
        task_id="register", data="{{ params.data }}", target="label", model_name="{{ params.model_name }}",
        metric="{{ params.metric }}", study_name=STUDY, hpo_config=HPO_CONFIG, drop=NOT_FEATURES,
    )
    trials >> register
