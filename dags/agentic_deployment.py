"""Deployment by hand, and the watch that rolls a bad champion back.

``deploy``: the deployment agent gates ``models:/<name>@challenger`` against ``@champion`` on recent labelled data
neither was trained on (``params.holdout``) and, when it passes, promotes it (``champion`` := challenger,
``previous`` := the old champion) and serves it in batch. ``watch``: on a newly labelled batch
(``params.watch_batch``) the watch agent compares ``champion`` with ``previous`` and rolls back when the champion is
worse by more than the margin. The event-driven path (``agentic_retraining``) promotes by itself; this DAG is for a
challenger trained elsewhere, and for the watch after any promotion.

Settings come from the ``[agentic]`` configuration section (``airflow_agentic.config``): ``data_root``,
``model_name``, ``mlflow_tracking_uri`` (else the ``mlflow_default`` connection, ``MLFLOW_TRACKING_URI``, a SQLite
file under ``$AIRFLOW_HOME/agentic``), the same for every example DAG. ``[agentic] fleet`` adds one such DAG per
model (``agentic_deployment_<model>``; ``config.flywheels()``).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param

from airflow_agentic import config
from airflow_agentic.operators.deployment import DeploymentOperator
from airflow_agentic.operators.rollback import ModelWatchOperator

for flywheel in config.flywheels():
    with DAG(
        flywheel.name("agentic_deployment"),
        schedule=None,
        catchup=False,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
        max_active_runs=1,
        doc_md=__doc__,
        tags=["agentic", "flywheel"],
        params={
            "holdout": Param(f"{flywheel.data_root}/clean/holdout/clean.parquet", type="string",
                             description="recent labelled Parquet data neither model trained on"),
            "watch_batch": Param("", type="string",
                                 description="newly labelled batch for the watch (default: holdout)"),
            "margin": Param(0.01, type="number", description="gate margin on accuracy"),
        },
    ):

        deploy = DeploymentOperator(
            task_id="deploy",
            model_name=flywheel.model_name,
            holdout="{{ params.holdout }}",
            target="label",
            margin="{{ params.margin }}",
            serving="batch",
            production=False,
        )

        watch = ModelWatchOperator(
            task_id="watch",
            model_name=flywheel.model_name,
            batch="{{ params.watch_batch or params.holdout }}",
            target="label",
            margin=0.02,
            production=False,
        )

        deploy >> watch
