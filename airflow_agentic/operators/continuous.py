"""``ContinuousLearningOperator``: one turn of the flywheel from fresh data, in one task.

Data Steward -> annotation check -> training warm-started from the champion -> deployment gate -> promotion or not.
The work is ``airflow_agentic.flywheel.continuous.continuous_turn`` (the same agents and functions the steward,
training and deployment operators use); this module is Airflow glue only: where the data and MLflow are, and what
goes to XCom. The return value is the ``ContinuousTurnResult`` dict (its ``steps`` are the decision trace of the
whole turn); the same trace, with the data and the drift events that started the turn, is in XCom ``flywheel_turn``.

Where MLflow is (``resolve_tracking_uri``), first match wins, resolved when the task runs:
1. the Airflow connection ``mlflow_conn_id`` (type ``mlflow``, default ``mlflow_default``), through ``MLflowHook``
   when that hook is installed;
2. the environment variable ``MLFLOW_TRACKING_URI``;
3. the file ``$AIRFLOW_HOME/agentic/mlflow_uri`` (``airflow-agentic demo`` writes it);
4. ``sqlite:///$AIRFLOW_HOME/agentic/mlflow.db`` (a local store, for trying things out).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

TURN_XCOM_KEY = "flywheel_turn"


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def _from_connection(conn_id: str) -> str | None:
    try:
        from airflow_agentic.hooks.mlflow import MLflowHook
    except ImportError:
        return None
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - no such connection (AirflowNotFoundException) or no way to look it up
        return None
    try:
        # configure() also exports the connection's credentials for the MLflow client.
        return str(MLflowHook(mlflow_conn_id=conn_id).configure())
    except Exception:  # noqa: BLE001 - fall back to reading the connection ourselves
        pass
    extra = conn.extra_dejson or {}
    uri = extra.get("tracking_uri") or conn.host
    if uri and "://" not in uri:
        uri = f"http://{uri}{f':{conn.port}' if conn.port else ''}"
    return uri or None


def resolve_tracking_uri(conn_id: str | None = "mlflow_default") -> str:
    """The MLflow tracking URI at run time: connection, env ``MLFLOW_TRACKING_URI``, the file
    ``$AIRFLOW_HOME/agentic/mlflow_uri``, then a local SQLite store (see the module docstring)."""
    uri = _from_connection(conn_id) if conn_id else None
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    marker = airflow_home() / "agentic" / "mlflow_uri"
    if marker.is_file() and marker.read_text().strip():
        return marker.read_text().strip()
    local = airflow_home() / "agentic"
    local.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{local / 'mlflow.db'}"


def use_tracking_uri(conn_id: str | None = "mlflow_default") -> str:
    """Resolve the tracking URI and make it this process's (MLflow's fluent API and ``models:/`` URIs use it)."""
    uri = resolve_tracking_uri(conn_id)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def _locations(data: Any) -> list[str]:
    if data is None:
        return []
    if isinstance(data, str):
        text = data.strip()
        if text.startswith("["):
            return [str(x) for x in json.loads(text)]
        return [part.strip() for part in text.split(",") if part.strip()]
    return [str(x) for x in data]


class ContinuousLearningOperator(BaseOperator):
    """One turn of the flywheel on the batches in ``data``.

    :param data: batch location(s) with features and labels (templated; a URL, a list, or an XComArg), e.g. the
        clean outputs of the Data Steward named by the drift events.
    :param target: label column; ``id_column``: row id column (kept out of the features).
    :param model_name: registered model; ``experiment_name`` defaults to it.
    :param families: model families the training agent may search (default logistic regression and histogram GBM).
    :param n_trials: HPO budget; ``warm_start``: seed the search with the champion's parameters.
    :param holdout_fraction: share of the labelled rows kept out of training for the gate.
    :param gate_policy: ``GatePolicy`` fields (default accuracy, margin 0.01, no latency ratio).
    :param annotation_policy: ``AnnotationAgent`` settings for the training pool (``threshold`` for automatic labels
        by the champion, ``rare_share`` below which a class gets synthetic rows, ``check_label_quality``).
    :param promote: False: gate only, the challenger keeps its alias.
    :param profile_dir: where the new version's reference profile goes (the monitoring step reads it).
    :param drift_event: what started the turn (templated), recorded in the trace and the model's lineage.
    :param mlflow_conn_id: connection checked first by ``resolve_tracking_uri``.
    """

    template_fields: Sequence[str] = ("data", "target", "model_name", "experiment_name", "profile_dir",
                                      "drift_event", "gate_policy", "annotation_policy")
    template_fields_renderers = {"drift_event": "json", "gate_policy": "json"}
    ui_color = "#fff3e0"

    def __init__(self, *, data: Any, model_name: str, target: str = "label", experiment_name: str | None = None,
                 id_column: str | None = "row_id", families: Sequence[str] | None = None, n_trials: int = 6,
                 warm_start: bool = True, holdout_fraction: float = 0.3, min_labelled_rows: int = 100,
                 gate_policy: dict[str, Any] | None = None, annotation_policy: dict[str, Any] | None = None,
                 promote: bool = True, profile_dir: str | None = None,
                 drift_event: Any = None, mlflow_conn_id: str | None = "mlflow_default", seed: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.target = target
        self.model_name = model_name
        self.experiment_name = experiment_name
        self.id_column = id_column
        self.families = list(families) if families else None
        self.n_trials = n_trials
        self.warm_start = warm_start
        self.holdout_fraction = holdout_fraction
        self.min_labelled_rows = min_labelled_rows
        self.gate_policy = gate_policy
        self.annotation_policy = annotation_policy
        self.promote = promote
        self.profile_dir = profile_dir
        self.drift_event = drift_event
        self.mlflow_conn_id = mlflow_conn_id
        self.seed = seed

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_agentic.flywheel.continuous import continuous_turn, read_frames

        locations = _locations(self.data)
        tracking_uri = use_tracking_uri(self.mlflow_conn_id)
        self.log.info("Continuous learning for %s on %d batch(es) %s (MLflow %s)", self.model_name,
                      len(locations), locations, tracking_uri)
        frame = read_frames(locations)
        dag_run = context.get("dag_run")
        event = self.drift_event if isinstance(self.drift_event, (dict, list)) else None
        run_id = getattr(dag_run, "run_id", "") or ""
        # A stable key: a retry of this task resumes the training agent's parent run instead of starting another.
        lineage = {"run_key": f"{self.dag_id}.{self.task_id}.{run_id}", "dag_id": self.dag_id, "run_id": run_id,
                   "drift_event_id": json.dumps(event, default=str)[:200] if event else ""}
        result = continuous_turn(
            frame, target=self.target, model_name=self.model_name,
            experiment_name=self.experiment_name or self.model_name, id_column=self.id_column,
            families=self.families, n_trials=self.n_trials, warm_start=self.warm_start,
            holdout_fraction=self.holdout_fraction, min_labelled_rows=self.min_labelled_rows,
            gate_policy=self.gate_policy, annotation_policy=self.annotation_policy, tracking_uri=tracking_uri,
            profile_dir=self.profile_dir,
            promote=self.promote, data_location=",".join(locations)[:500] or None, lineage=lineage, seed=self.seed)
        for step in result.steps:
            self.log.info("%-12s %-18s %s", step["agent"], step["action"], step["reason"])
        self.log.info("Turn %s: champion %s -> %s (challenger %s) in %.1fs", result.status, result.champion_before,
                      result.champion_after, result.challenger, result.seconds)
        context["ti"].xcom_push(key=TURN_XCOM_KEY, value={
            "model_name": self.model_name, "status": result.status, "data": locations, "drift_event": event,
            "tracking_uri": tracking_uri, "steps": result.steps, "champion_before": result.champion_before,
            "champion_after": result.champion_after, "challenger": result.challenger})
        return result.to_dict()
