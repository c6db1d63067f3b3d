"""``TrainingOperator``: the Architect + HPO agent in a task. It plans the experiments from the data and past trials,
searches the planned families with Optuna (trials as nested MLflow runs), and registers the best model as a new
version with the alias ``challenger`` and lineage tags (data location and hash, DAG run, drift event).

With ``study_name`` it skips planning and searching and registers the best trial of a finished study, e.g. one that
mapped ``HPOTrialsOperator`` tasks filled in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_agentic.links.mlflow import (MODEL_VERSION_URL_XCOM_KEY, RUN_URL_XCOM_KEY, MLflowModelVersionLink,
                                          MLflowRunLink)
from airflow_agentic.operators._mlops import MlflowTrackingMixin
from airflow_agentic.operators.agent import AgentOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_agentic.agents import Agent, AgentRun


def drift_lineage(drift_event: Any) -> dict[str, str]:
    """The lineage tags a drift event contributes (id, score, drifted columns, batch)."""
    from airflow_agentic.operators._mlops import native

    event = native(drift_event)
    if not event:
        return {}
    if not isinstance(event, dict):
        return {"drift_event_id": str(event)[:250]}
    tags = {"drift_event_id": event.get("id") or event.get("event_id") or event.get("batch") or "",
            "drift.score": event.get("score"), "drift.batch": event.get("batch"),
            "drift.detected": event.get("detected"), "drift.reasons": "; ".join(map(str, event.get("reasons") or []))}
    columns = event.get("drifted_columns") or (event.get("drift") or {}).get("drifted_columns")
    if columns:
        tags["drift.columns"] = ",".join(map(str, columns))[:500]
    return {k: str(v)[:500] for k, v in tags.items() if v not in ("", None)}


class TrainingOperator(MlflowTrackingMixin, AgentOperator):
    """Train a challenger.

    :param data: URL (ObjectStoragePath) of a Parquet file, a folder of Parquet files or a glob (templated).
    :param target: label column (templated).
    :param model_name: registered model name (templated).
    :param experiment_name: MLflow experiment (templated); default ``<model_name>-training``.
    :param families: model families to consider; None lets the architect decide among its defaults.
    :param metric: scoring metric of the search (``accuracy``, ``roc_auc``, ``average_precision``, ``f1``);
        None lets the architect choose.
    :param n_trials: trial budget over all families.
    :param timeout: seconds per family search.
    :param storage: Optuna storage URL (``sqlite:///...``, ``journal:///path.log`` for parallel workers on one
        machine, ``postgresql://...`` for several); default ``sqlite:///$AIRFLOW_HOME/agentic/optuna.db``.
    :param warm_start: queue the champion's configuration as the first trial of its family.
    :param drift_event: the drift event that triggered this training (templated dict); goes into lineage tags.
    :param study_name: register the best of this finished study instead of searching (templated).
    :param categorical: columns to treat as categorical; None infers them.
    :param drop: columns of ``data`` that are not features (ids, timestamps), left out when present.
    :param hpo_config: ``HPOConfig`` fields (cv_folds, pruner, seed, ...).
    :param conn_id: Airflow connection for the object store holding the data (e.g. ``aws_default`` for ``s3://``);
        None: the one named in the URL, or the store's default.
    :param mlflow_conn_id: an ``mlflow`` connection; without one ``MLFLOW_TRACKING_URI`` or a local SQLite store.
    """

    template_fields: Sequence[str] = (*AgentOperator.template_fields, "data", "target", "model_name",
                                      "experiment_name", "families", "metric", "storage", "drift_event", "study_name")
    template_fields_renderers = {**AgentOperator.template_fields_renderers, "drift_event": "json"}
    operator_extra_links = (*AgentOperator.operator_extra_links, MLflowRunLink(), MLflowModelVersionLink())
    ui_color = "#fdf3e8"

    def __init__(self, *, data: str | None = None, target: str = "label", model_name: str,
                 experiment_name: str | None = None, families: list[str] | None = None,
                 metric: str | None = "accuracy", n_trials: int = 20, timeout: float | None = None,
                 storage: str | None = None, warm_start: bool = True, drift_event: Any = None,
                 study_name: str | None = None, categorical: list[str] | None = None,
                 drop: list[str] | None = None, hpo_config: dict[str, Any] | None = None, conn_id: str | None = None,
                 mlflow_conn_id: str | None = "mlflow_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.target = target
        self.model_name = model_name
        self.experiment_name = experiment_name
        self.families = families
        self.metric = metric
        self.n_trials = n_trials
        self.timeout = timeout
        self.storage = storage
        self.warm_start = warm_start
        self.drift_event = drift_event
        self.study_name = study_name
        self.categorical = categorical
        self.drop = drop
        self.hpo_config = hpo_config
        self.conn_id = conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def _hook(self):
        from airflow_agentic.operators._mlops import mlflow_hook

        return mlflow_hook(self)

    def build_agent(self, context: Context) -> Agent:
        from airflow_agentic.agents.training import TrainingAgent
        from airflow_agentic.config import optuna_storage
        from airflow_agentic.operators._mlops import load_dataset, native

        if not self.data:
            raise ValueError("TrainingOperator needs `data` (a Parquet file, folder or glob URL)")
        hook = self._hook()
        client = hook.client()
        ti = context["ti"]
        dataset = load_dataset(self.data, self.target, categorical=self.categorical, drop=self.drop,
                               conn_id=self.conn_id)
        families = native(self.families)
        lineage = {"data.location": str(self.data), "dag_id": ti.dag_id, "run_id": ti.run_id,
                   "task_id": ti.task_id, **drift_lineage(self.drift_event)}
        import airflow_agentic

        lineage["package_version"] = airflow_agentic.__version__
        return TrainingAgent(
            dataset, model_name=self.model_name, experiment_name=self.experiment_name or f"{self.model_name}-training",
            run_key=self.study_name or f"{ti.dag_id}.{ti.task_id}.{ti.run_id}", client=client, tracking_uri=hook.tracking_uri(),
            families=[families] if isinstance(families, str) else families, metric=self.metric,
            n_trials=int(self.n_trials), timeout=self.timeout, storage=self.storage or optuna_storage(),
            warm_start=self.warm_start, study_name=self.study_name or None, lineage=lineage,
            hpo_config=self.hpo_config)

    def on_finish(self, context: Context, run: AgentRun) -> Any:
        from airflow_agentic.hooks.mlflow import model_version_url, run_url
        from airflow_agentic.operators._mlops import push_url, step_result

        result = dict(run.result or {})
        if not result.get("version"):
            # A retry after registration replays register_best from the journal: its compact result is the output.
            result.update(step_result(run, "register_best") or {})
        if not result.get("version"):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"training agent ended {run.status} without registering a model: "
                                       f"{result.get('stop_reason') or run.fallback_reason or ''}")
        ui = self._hook().ui_url()
        push_url(context, RUN_URL_XCOM_KEY, run_url(ui, str(result.get("experiment_id")), result["run_id"]))
        push_url(context, MODEL_VERSION_URL_XCOM_KEY, model_version_url(ui, result["model_name"], result["version"]))
        self.log.info("Registered %s version %s (%s, %s %.4f) as challenger", result["model_name"], result["version"],
                      result.get("family"), result.get("metric"), result.get("cv_score") or 0.0)
        return result
