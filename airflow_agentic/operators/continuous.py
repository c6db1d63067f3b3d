"""``ContinuousLearningOperator``: one continuous-learning turn of the flywheel, in one task.

The work is :func:`airflow_agentic.flywheel.turn.learn`, the same function the backtest runs, on an
:class:`~airflow_agentic.flywheel.store.MlflowStore`: annotate -> train candidates (since the change point, the last
window, earlier champions) -> gate against the champion on held-out labelled rows -> register and promote through the
registry's aliases (``champion`` := new version, ``previous`` := the old one), or keep the champion. This module is
Airflow glue only: where the data and MLflow are (``airflow_agentic.config``), and what goes to XCom. The return
value is the ``TurnResult`` dict (its ``steps`` are the decision trace of the turn); the same trace, with the data and
the request that started the turn, is in XCom ``flywheel_turn``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_agentic.links.mlflow import MODEL_VERSION_URL_XCOM_KEY, MLflowModelVersionLink

if TYPE_CHECKING:
    from airflow.sdk import Context

TURN_XCOM_KEY = "flywheel_turn"


def numbered_locations(data: Any) -> dict[int, str]:
    """``{batch number: location}`` from a dict, a list of URLs or their rendered text. A list is numbered by the
    digits in each batch's name (``.../clean/batch_0007/`` -> 7), as the monitoring step numbers batches, or by its
    order when the names carry no number."""
    from airflow_agentic.operators._mlops import native

    data = native(data)
    if data is None or data == "":
        return {}
    if isinstance(data, str):
        data = [part.strip() for part in data.split(",") if part.strip()]
    if isinstance(data, dict):
        return {int(k): str(v) for k, v in data.items()}
    data = [str(location) for location in data]
    try:
        numbers = [batch_number(location) for location in data]
    except ValueError:  # names without numbers (an annotation sensor's training.parquet): numbered in the given order
        numbers = list(range(len(data)))
    out: dict[int, str] = {}
    for number, location in zip(numbers, data):
        if number in out:
            raise ValueError(f"two batches numbered {number}: {out[number]} and {location}")
        out[number] = location
    return out


def clean_batches(root: str, conn_id: str | None = None) -> dict[int, str]:
    """The Data Steward's outputs under ``root`` (one folder per batch, ``<root>/<batch name>/clean.parquet``)."""
    from airflow_agentic.data import io as dio

    folder = dio.resolve_path(root, conn_id)
    found: dict[int, str] = {}
    for child in sorted(folder.iterdir(), key=str) if folder.exists() else []:
        if (child / "clean.parquet").exists():
            found[batch_number(str(child))] = str(child / "clean.parquet")
    return found


def drift_events(context: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The newest retraining request among the monitoring reports that the triggering drift events carry (one
    event per burst, each with ``extra["payload"]["reports"]``, see ``DriftEventTrigger``), and what the events
    were (for the trace: how many, which report files, why each mattered)."""
    events = [e for asset_events in (context.get("triggering_asset_events") or {}).values() for e in asset_events]
    requests, files, reasons, count = [], [], [], 0
    for event in events:
        payload = (event.extra or {}).get("payload") or {}
        # A large burst carries its newest reports only; `count` says how many files it had.
        count += int(payload.get("count") or len(payload.get("reports") or []))
        for item in payload.get("reports") or []:
            files.append(str(item.get("file", "")).rsplit("/", 1)[-1])
            reasons.append(item.get("reason"))
            report = item.get("report") or {}
            retrain = (report.get("decision") or {}).get("retrain")
            if retrain:
                requests.append({**retrain, "batch": retrain.get("batch", report.get("batch_number"))})
    summary = {"events": len(events), "reports": count, "files": files, "reasons": reasons}
    newest = max(requests, key=lambda r: int(r.get("batch") if r.get("batch") is not None else -1)) \
        if requests else None
    return newest, summary


def batch_name(location: str) -> str:
    """A batch's name: its folder for a file inside a steward output (``.../clean/0007/clean.parquet`` -> 0007),
    else the file's stem."""
    parts = [p for p in str(location).rstrip("/").split("/") if p]
    if len(parts) >= 2 and parts[-1] in ("clean.parquet", "clean.csv"):
        return parts[-2]
    return parts[-1].rsplit(".", 1)[0] if parts else ""


def batch_number(location: str) -> int:
    """The batch number in a batch's name (``.../batch_0007/clean.parquet`` -> 7)."""
    found = re.findall(r"\d+", batch_name(location))
    if not found:
        raise ValueError(f"no batch number in {location!r}: name batches with a number (batch_0007) or pass "
                         f"data as a dict {{number: location}}")
    return int(found[-1])


class ContinuousLearningOperator(BaseOperator):
    """One continuous-learning turn on the labelled clean batches in ``data``.

    :param data: the clean batches (the Data Steward's outputs) by batch number: a dict ``{number: url}``, or a list
        of URLs whose names carry the number (templated; an XComArg works). Default: every batch folder under
        ``clean_root``. The turn reads only the batches it needs: since ``request["since_batch"]`` and the last
        ``2 * window`` up to the newest labelled one.
    :param clean_root: the folder of the Data Steward's outputs (``<clean_root>/<batch>/clean.parquet``).
    :param request: the monitoring agent's retraining request (templated): ``kind`` (``drift`` | ``refit``),
        ``since_batch`` (the estimated change point), ``batch`` (the newest labelled batch), ``reason``. Default:
        the newest request in the triggering drift events (a DAG scheduled on the drift Asset), else a drift turn
        on the newest batch.
    :param conn_id: Airflow connection for the object store holding the batches (e.g. ``aws_default``).
    :param model_name: registered model (default ``[agentic] model_name``); ``experiment_name`` defaults to it.
    :param target: label column; ``id_column``: row id column (kept out of the features).
    :param settings: :class:`~airflow_agentic.flywheel.turn.TurnSettings` fields (window, family, params, gate
        thresholds, automatic-label threshold, synthesis), templated.
    :param profile_dir: where each new version's drift profile goes (default ``[agentic] profile_dir``).
    :param mlflow_conn_id: MLflow connection (see ``airflow_agentic.config.mlflow_tracking_uri`` for the order).
    """

    template_fields: Sequence[str] = ("data", "clean_root", "request", "target", "model_name", "experiment_name", "profile_dir",
                                      "settings")
    template_fields_renderers = {"request": "json", "settings": "json"}
    operator_extra_links = (MLflowModelVersionLink(),)
    ui_color = "#fff3e0"

    def __init__(self, *, data: Any = None, clean_root: str | None = None, request: Any = None,
                 model_name: str | None = None, target: str = "label", experiment_name: str | None = None,
                 id_column: str | None = "row_id", settings: dict[str, Any] | None = None,
                 profile_dir: str | None = None, conn_id: str | None = None,
                 mlflow_conn_id: str | None = "mlflow_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if data is None and clean_root is None:
            raise ValueError("give data (the clean batches) or clean_root (the folder of the steward's outputs)")
        self.data = data
        self.clean_root = clean_root
        self.conn_id = conn_id
        self.request = request
        self.model_name = model_name
        self.target = target
        self.experiment_name = experiment_name
        self.id_column = id_column
        self.settings = settings
        self.profile_dir = profile_dir
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_agentic import config
        from airflow_agentic.data import io as dio
        from airflow_agentic.flywheel.store import MlflowStore
        from airflow_agentic.flywheel.turn import LabelledBatch, TurnSettings, learn
        from airflow_agentic.operators._mlops import native

        model_name = self.model_name or config.model_name()
        settings = TurnSettings.from_dict(native(self.settings))
        from_events, events = drift_events(context)
        request = dict(native(self.request) or {}) or from_events or {"kind": "drift", "reason": "requested by hand"}
        locations = numbered_locations(self.data) if self.data is not None else \
            clean_batches(self.clean_root, self.conn_id)
        if request.get("batch") is not None:  # labels newer than the request's batch were not seen by the agent
            locations = {b: loc for b, loc in locations.items() if b <= int(request["batch"])}
        if not locations:
            raise ValueError(f"no labelled clean batch in {self.data if self.data is not None else self.clean_root}")
        newest = max(locations)
        since = request.get("since_batch")
        first = min(newest - 2 * settings.window + 1, int(since) if since is not None else newest)
        needed = {b: loc for b, loc in sorted(locations.items()) if b >= first}
        tracking_uri = config.mlflow_tracking_uri(self.mlflow_conn_id)
        self.log.info("Continuous learning for %s: %s turn since batch %s on batches %s (MLflow %s)", model_name,
                      request.get("kind", "drift"), since, sorted(needed), tracking_uri)
        batches = {b: LabelledBatch.from_frame(dio.read_batch(loc, conn_id=self.conn_id), target=self.target, id_column=self.id_column)
                   for b, loc in needed.items()}
        batches = {b: batch for b, batch in batches.items() if batch.labelled.any()}
        run_id = getattr(context.get("dag_run"), "run_id", "") or ""
        store = MlflowStore(model_name, tracking_uri, profile_dir=self.profile_dir or config.profile_dir(),
                            experiment_name=self.experiment_name)
        # A stable key: a retry of this task finds the version its first try registered instead of adding one.
        lineage = {"dag_id": self.dag_id, "run_id": run_id, "request": json.dumps(request, default=str)[:500],
                   "data.location": ",".join(needed.values())[:500]}
        with config.mlflow_tracking(tracking_uri):
            result = learn(request, batches, store, settings, run_key=f"{self.dag_id}.{self.task_id}.{run_id}",
                           lineage=lineage)
        self.log.info("Turn %s: champion %s -> %s (candidate %s) in %.1fs", result.status, result.champion_before,
                      result.champion_after, result.candidate, result.seconds)
        context["ti"].xcom_push(key=TURN_XCOM_KEY, value={
            "model_name": model_name, "status": result.status, "data": needed, "request": request,
            "drift_event": events,
            "tracking_uri": tracking_uri, "steps": result.steps, "champion_before": result.champion_before,
            "champion_after": result.champion_after, "candidate": result.candidate})
        from airflow_agentic.hooks.mlflow import MLflowHook, model_version_url

        url = model_version_url(MLflowHook(self.mlflow_conn_id).ui_url(), model_name, str(result.champion_after))
        if url and result.champion_after:
            context["ti"].xcom_push(key=MODEL_VERSION_URL_XCOM_KEY, value=url)
        return result.to_dict()
