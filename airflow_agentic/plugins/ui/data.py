"""What the flywheel page shows, read where it already lives: Airflow's metadata database (XCom, human-in-the-loop
requests) and the MLflow model registry. There is no second store.

Every reader of DAG data takes ``dag_ids``, the DAGs the user may read, and never looks outside them.

Sources, by convention of this provider:
- drift: a task's XCom ``drift`` (a ``DriftReport`` dict, e.g. the monitoring DAG's ``score`` task), with ``accuracy``
  and ``batch`` from the same task instance when present; and the return value of a ``DriftSensor``;
- decisions: XCom ``agent_run`` (``AgentRun.to_dict()``, pushed by every ``AgentOperator``) and ``flywheel_turn``
  (``ContinuousLearningOperator``);
- promotions and rollbacks: the registry's aliases and the history tags ``ModelRegistry`` writes.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_agentic.models.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    PROMOTION_HISTORY_TAG,
    ROLLBACK_HISTORY_TAG,
)
from airflow_agentic.operators.agent import TRACE_XCOM_KEY
from airflow_agentic.operators.continuous import TURN_XCOM_KEY

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DRIFT_XCOM_KEY = "drift"
ACCURACY_XCOM_KEY = "accuracy"
BATCH_XCOM_KEY = "batch"
# Operators whose return value is a DriftReport dict (matched on TaskInstance.operator, the class name).
DRIFT_REPORT_OPERATORS = ("DriftSensor",)
ALIAS_ORDER = (CHAMPION, CHALLENGER, PREVIOUS)
# Monitoring decisions drawn on the timeline; the others (ignore, alert) are visible in the traces.
DECISION_MARKERS = {"request_retraining": "retraining requested", "request_rollback": "rollback requested"}


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="seconds")
    if isinstance(value, (int, float)):  # MLflow's epoch milliseconds
        return datetime.fromtimestamp(value / 1000, timezone.utc).isoformat(timespec="seconds")
    return str(value)


# -- XCom ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskRef:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


def _value(row: Any) -> Any:
    from airflow.models.xcom import XComModel

    value = XComModel.deserialize_value(row)
    if isinstance(value, str):  # values set through the execution API may arrive as JSON text
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _xcom_rows(session: Session, dag_ids: set[str], keys: list[str], *, dag_id: str | None = None,
               run_id: str | None = None, task_id: str | None = None, map_index: int | None = None,
               run_ids: set[str] | None = None, operators: tuple[str, ...] = (), limit: int = 500) -> list[Any]:
    from sqlalchemy import and_, select

    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel

    query = select(XComModel).where(XComModel.dag_id.in_(dag_ids), XComModel.key.in_(keys))
    if operators:
        query = query.join(TaskInstance, and_(TaskInstance.dag_id == XComModel.dag_id,
                                              TaskInstance.run_id == XComModel.run_id,
                                              TaskInstance.task_id == XComModel.task_id,
                                              TaskInstance.map_index == XComModel.map_index)
                           ).where(TaskInstance.operator.in_(operators))
    for column, wanted in (("dag_id", dag_id), ("run_id", run_id), ("task_id", task_id), ("map_index", map_index)):
        if wanted is not None:
            query = query.where(getattr(XComModel, column) == wanted)
    if run_ids is not None:
        query = query.where(XComModel.run_id.in_(run_ids))
    return list(session.scalars(query.order_by(XComModel.timestamp.desc()).limit(limit)))


def _ref(row: Any) -> TaskRef:
    return TaskRef(row.dag_id, row.run_id, row.task_id, row.map_index)


# -- drift timeline ------------------------------------------------------------------------------------------------
@dataclass
class DriftPoint:
    """One drift report on the timeline."""

    at: str
    ref: TaskRef
    score: float
    detected: bool
    drifted_columns: list[str]
    effects: dict[str, float | None]  # per feature column: W1/IQR (numeric) or PSI (categorical)
    batch: int | None = None
    accuracy: float | None = None  # on the batch's delayed labels, once they arrived

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Marker:
    """An event drawn across the timeline: a retraining or rollback request, a promotion, a rollback."""

    at: str
    kind: str
    label: str
    ref: TaskRef | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_drift_report(value: Any) -> bool:
    return isinstance(value, dict) and "score" in value and "detected" in value


def _effects(report: dict[str, Any]) -> dict[str, float | None]:
    return {c["column"]: c.get("effect") for c in report.get("columns") or [] if isinstance(c, dict) and "column" in c}


def drift_points(session: Session, dag_ids: set[str], *, dag_id: str | None = None, run_id: str | None = None,
                 limit: int = 200) -> list[DriftPoint]:
    """Drift reports of the readable DAGs, oldest first, with the accuracy of the same task instance."""
    if not dag_ids:
        return []
    where = {"dag_id": dag_id, "run_id": run_id}
    reports = _xcom_rows(session, dag_ids, [DRIFT_XCOM_KEY], limit=limit, **where)
    reports += _xcom_rows(session, dag_ids, ["return_value"], operators=DRIFT_REPORT_OPERATORS, limit=limit, **where)
    # The same task instance's accuracy and batch number, when it pushed them.
    extras: dict[TaskRef, dict[str, Any]] = defaultdict(dict)
    for row in _xcom_rows(session, dag_ids, [ACCURACY_XCOM_KEY, BATCH_XCOM_KEY], run_ids={r.run_id for r in reports},
                          limit=4 * limit, **where):
        extras[_ref(row)][row.key] = _value(row)
    points = []
    for row in reports:
        report, extra = _value(row), extras[_ref(row)]
        if not _is_drift_report(report):
            continue
        accuracy, batch = extra.get(ACCURACY_XCOM_KEY), extra.get(BATCH_XCOM_KEY)
        points.append(DriftPoint(
            at=iso(row.timestamp), ref=_ref(row), score=float(report.get("score") or 0.0),
            detected=bool(report.get("detected")), drifted_columns=list(report.get("drifted_columns") or []),
            effects=_effects(report), batch=int(batch) if isinstance(batch, (int, float)) else None,
            accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None))
    return sorted(points, key=lambda p: p.at)[-limit:]


def drift_reports(session: Session, dag_ids: set[str], dag_id: str, run_id: str) -> list[tuple[TaskRef, dict]]:
    """The full drift reports of one DAG run (the drift page behind the operators' "Drift report" link)."""
    if dag_id not in dag_ids:
        return []
    rows = _xcom_rows(session, dag_ids, [DRIFT_XCOM_KEY], dag_id=dag_id, run_id=run_id)
    rows += _xcom_rows(session, dag_ids, ["return_value"], dag_id=dag_id, run_id=run_id,
                       operators=DRIFT_REPORT_OPERATORS)
    reports = [(_ref(row), _value(row)) for row in rows]
    return [(ref, report) for ref, report in reports if _is_drift_report(report)]


# -- decision traces -----------------------------------------------------------------------------------------------
@dataclass
class Trace:
    """One agent run (or one flywheel turn) of a task instance, shaped for reading."""

    ref: TaskRef
    at: str
    kind: str  # "agent_run" | "flywheel_turn"
    agent: str
    status: str
    headline: str  # the decision in a few words
    reasons: list[str] = field(default_factory=list)
    goal: str = ""
    planner: str = ""
    observation: dict[str, Any] = field(default_factory=dict)  # the evidence the agent decided on, when kept
    steps: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None
    result: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _planner_text(planner: Any) -> str:
    """"rule", "llm (gpt-4o-mini)", or "llm (gpt-4o-mini), then rule" when the rule planner took over."""
    if not isinstance(planner, dict):
        return ""
    first = str(planner.get("kind") or "")
    final = str((planner.get("final") or {}).get("kind") or first)
    text = first + (f" ({planner['model']})" if planner.get("model") else "")
    return text if final == first else f"{text}, then {final}"


def _agent_trace(ref: TaskRef, at: str, run: dict[str, Any]) -> Trace:
    result = run.get("result") or {}
    decision = result.get("decision") if isinstance(result.get("decision"), dict) else None
    steps = [s for s in run.get("steps") or [] if isinstance(s, dict)]
    if decision and decision.get("action"):
        headline, reasons = str(decision["action"]), [str(r) for r in decision.get("reasons") or []]
    else:
        acted = [s.get("tool") for s in steps if s.get("status") == "ok"]
        headline = ", ".join(acted) or "no action"
        reasons = [s["rationale"] for s in steps if s.get("rationale") and s.get("status") != "finished"][:3]
    return Trace(
        ref=ref, at=run.get("ended_at") or at, kind=TRACE_XCOM_KEY, agent=str(run.get("agent") or "agent"),
        status=str(run.get("status") or ""), headline=headline, reasons=reasons, goal=str(run.get("goal") or ""),
        planner=_planner_text(run.get("planner")),
        observation=(decision or {}).get("signals") or result.get("signals") or {}, steps=steps,
        usage=run.get("usage") or {}, fallback_reason=run.get("fallback_reason"), result=result)


def _turn_trace(ref: TaskRef, at: str, turn: dict[str, Any]) -> Trace:
    steps = [s for s in turn.get("steps") or [] if isinstance(s, dict)]  # TraceStep dicts, as every agent's
    before, after = turn.get("champion_before"), turn.get("champion_after")
    headline = f"{turn.get('status')}: champion {before} -> {after}" if before != after else str(turn.get("status"))
    return Trace(ref=ref, at=at, kind=TURN_XCOM_KEY, agent="flywheel turn", status=str(turn.get("status") or ""),
                 headline=headline, reasons=[str(s.get("rationale")) for s in steps[-1:]],
                 observation={"model": turn.get("model_name"), "data": turn.get("data"),
                              "request": turn.get("request")}, steps=steps, result=turn)


def _trace(row: Any) -> Trace | None:
    value = _value(row)
    if not isinstance(value, dict):
        return None
    build = _agent_trace if row.key == TRACE_XCOM_KEY else _turn_trace
    return build(_ref(row), iso(row.timestamp), value)


def traces(session: Session, dag_ids: set[str], *, dag_id: str | None = None, run_id: str | None = None,
           task_id: str | None = None, map_index: int | None = None, limit: int = 50) -> list[Trace]:
    """Decision traces of the readable DAGs, newest first."""
    if not dag_ids:
        return []
    rows = _xcom_rows(session, dag_ids, [TRACE_XCOM_KEY, TURN_XCOM_KEY], dag_id=dag_id, run_id=run_id,
                      task_id=task_id, map_index=map_index, limit=limit)
    return [t for t in map(_trace, rows) if t is not None]


def decision_markers(found: list[Trace]) -> list[Marker]:
    return [Marker(at=t.at, kind=t.headline, label=f"{DECISION_MARKERS[t.headline]} ({t.ref.dag_id})", ref=t.ref)
            for t in found if t.headline in DECISION_MARKERS]


# -- approvals -----------------------------------------------------------------------------------------------------
@dataclass
class PendingApproval:
    ref: TaskRef
    subject: str
    body: str | None
    options: list[str]
    since: str
    state: str | None
    assignees: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pending_approvals(session: Session, dag_ids: set[str], *, dag_id: str | None = None,
                      run_id: str | None = None, limit: int = 100) -> list[PendingApproval]:
    """Human-in-the-loop requests nobody answered yet, on tasks still waiting, oldest first."""
    if not dag_ids:
        return []
    from sqlalchemy import select

    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.state import State

    query = (select(HITLDetail, TaskInstance).join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
             .where(HITLDetail.responded_at.is_(None), TaskInstance.dag_id.in_(dag_ids),
                    TaskInstance.state.notin_(list(State.finished))))
    if dag_id is not None:
        query = query.where(TaskInstance.dag_id == dag_id)
    if run_id is not None:
        query = query.where(TaskInstance.run_id == run_id)
    found = []
    for detail, ti in session.execute(query.order_by(HITLDetail.created_at).limit(limit)):
        found.append(PendingApproval(
            ref=TaskRef(ti.dag_id, ti.run_id, ti.task_id, ti.map_index), subject=detail.subject, body=detail.body,
            options=list(detail.options or []), since=iso(detail.created_at), state=str(ti.state) if ti.state else None,
            assignees=[a.get("name") or a.get("id") for a in detail.assignees or [] if isinstance(a, dict)]))
    return found


# -- the model registry --------------------------------------------------------------------------------------------
@dataclass
class VersionView:
    version: str
    aliases: list[str]
    created: str | None
    run_id: str | None
    run_url: str | None
    version_url: str | None
    tags: dict[str, str]  # this provider's lineage tags (agentic.*)
    trained_by: TaskRef | None = None  # the DAG run whose task registered it, from its lineage tags


@dataclass
class ModelView:
    name: str
    champion: str | None
    champion_since: str | None  # when the champion alias last moved to it, by promotion or rollback
    champion_why: str | None
    versions: list[VersionView]
    history: list[dict[str, Any]]  # promotions and rollbacks, newest first: action, from, to, reason, at
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tracking_uri() -> str:
    """The MLflow the DAGs use, resolved the same way their tasks resolve it."""
    from airflow_agentic.config import mlflow_tracking_uri

    return mlflow_tracking_uri()


def mlflow_ui_url(uri: str) -> str | None:
    """The MLflow UI for links: the connection's ``ui_url`` when set, else the tracking server itself."""
    try:
        from airflow_agentic.hooks.mlflow import MLflowHook

        configured = MLflowHook().ui_url()
    except Exception:  # noqa: BLE001 - no connection readable here: the tracking server is the UI
        configured = None
    return configured or (uri.rstrip("/") if uri.startswith(("http://", "https://")) else None)


def _history(tags: dict[str, str]) -> list[dict[str, Any]]:
    """Promotions and rollbacks from the registry's history tags, newest first.

    The tags keep times to the second, so changes within one second are put in the order the champion moved: each
    one starts from the version the one before it ended on.
    """
    entries = []
    for action, tag in (("promotion", PROMOTION_HISTORY_TAG), ("rollback", ROLLBACK_HISTORY_TAG)):
        try:
            loaded = json.loads(tags.get(tag) or "[]")
        except ValueError:
            loaded = []
        entries += [{"action": action, "from": e.get("from"), "to": e.get("to"), "reason": e.get("reason") or "",
                     "at": e.get("at") or ""} for e in loaded if isinstance(e, dict)]
    oldest_first: list[dict[str, Any]] = []
    for _, same_second in groupby(sorted(entries, key=lambda e: e["at"]), key=lambda e: e["at"]):
        pending = list(same_second)
        while pending:
            champion = str(oldest_first[-1]["to"]) if oldest_first else "None"
            follows = next((e for e in pending if str(e["from"]) == champion), pending[0])
            pending.remove(follows)
            oldest_first.append(follows)
    return oldest_first[::-1]


def _reachable(uri: str) -> None:
    """Fail in seconds when an HTTP tracking server is down (MLflow's own client retries for minutes)."""
    if uri.startswith(("http://", "https://")):
        import httpx

        httpx.get(f"{uri.rstrip('/')}/health", timeout=5).raise_for_status()


def _client(uri: str):
    from mlflow import MlflowClient

    _reachable(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(model: Any) -> tuple[str | None, list[dict[str, Any]], dict[str, Any] | None]:
    """(champion version, history newest first, the change that made it champion)."""
    history = _history(dict(model.tags or {}))
    champion = (model.aliases or {}).get(CHAMPION)
    champion = str(champion) if champion is not None else None
    return champion, history, next((e for e in history if str(e.get("to")) == champion), None)


def _model_url(ui_url: str | None, name: str) -> str | None:
    from urllib.parse import quote

    return f"{ui_url}/#/models/{quote(name, safe='')}" if ui_url else None


def _model_view(client: Any, model: Any, ui_url: str | None, max_versions: int) -> ModelView:
    from airflow_agentic.hooks.mlflow import model_version_url, run_url

    aliases_of: dict[str, list[str]] = defaultdict(list)
    for alias, version in (model.aliases or {}).items():
        aliases_of[str(version)].append(alias)
    versions = []
    newest = client.search_model_versions(f"name='{_quoted(model.name)}'", max_results=max_versions,
                                          order_by=["version_number DESC"]) if max_versions > 0 else []
    for mv in newest:
        experiment_id = None
        if mv.run_id:
            try:
                experiment_id = client.get_run(mv.run_id).info.experiment_id
            except Exception:  # noqa: BLE001 - a deleted run still leaves a readable version
                experiment_id = None
        mv_tags = {k: v for k, v in (mv.tags or {}).items() if k.startswith("agentic.")}
        trained_by = None
        if mv_tags.get("agentic.dag_id") and mv_tags.get("agentic.run_id"):
            trained_by = TaskRef(mv_tags["agentic.dag_id"], mv_tags["agentic.run_id"], "")
        versions.append(VersionView(
            version=str(mv.version),
            aliases=sorted(aliases_of.get(str(mv.version), []),
                           key=lambda a: ALIAS_ORDER.index(a) if a in ALIAS_ORDER else len(ALIAS_ORDER)),
            created=iso(mv.creation_timestamp), run_id=mv.run_id,
            run_url=run_url(ui_url, experiment_id, mv.run_id) if experiment_id else None,
            version_url=model_version_url(ui_url, model.name, str(mv.version)), tags=mv_tags,
            trained_by=trained_by))
    champion, history, last_move = _champion(model)
    return ModelView(
        name=model.name, champion=champion, champion_since=last_move["at"] if last_move else None,
        champion_why=(f"{last_move['action']}: {last_move['reason']}" if last_move else None),
        versions=versions, history=history, url=_model_url(ui_url, model.name))


def _quoted(name: str) -> str:
    """A model name inside MLflow's single-quoted filter strings."""
    return name.replace("\\", "\\\\").replace("'", "\\'")


def registry_overview(uri: str, ui_url: str | None, *, max_models: int = 20,
                      max_versions: int = 10) -> list[ModelView]:
    """Registered models (the ``max_models`` most recently updated) with their newest versions, aliases, lineage
    tags and promotion/rollback history."""
    client = _client(uri)
    # Most recently changed first: with more models than fit, the ones the flywheel is moving stay on the page.
    return [_model_view(client, model, ui_url, max_versions)
            for model in client.search_registered_models(max_results=max_models,
                                                         order_by=["last_updated_timestamp DESC", "name ASC"])]


@dataclass
class ModelSummary:
    """One row of the model list: read from the registered model alone (aliases and history tags), no version
    look-ups, so a list of hundreds of models costs one registry request per thousand."""

    name: str
    champion: str | None
    champion_since: str | None
    champion_why: str | None
    aliases: dict[str, str]
    updated: str | None
    changes: int  # promotions and rollbacks recorded
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def to_dict(self) -> dict[str, Any]:
        return {"items": [i.to_dict() if hasattr(i, "to_dict") else i for i in self.items], "page": self.page,
                "per_page": self.per_page, "total": self.total, "pages": self.pages}


MAX_LISTED_MODELS = 10_000


def model_list(uri: str, ui_url: str | None, *, search: str = "", page: int = 1, per_page: int = 25) -> Page:
    """The registry's models whose name contains ``search`` (any case), most recently updated first, one page."""
    client = _client(uri)
    wanted = search.strip().lower()
    found: list[ModelSummary] = []
    token = None
    while len(found) < MAX_LISTED_MODELS:
        batch = client.search_registered_models(max_results=1000, page_token=token,
                                                order_by=["last_updated_timestamp DESC", "name ASC"])
        for model in batch:
            if wanted and wanted not in model.name.lower():
                continue
            champion, history, last_move = _champion(model)
            found.append(ModelSummary(
                name=model.name, champion=champion, champion_since=last_move["at"] if last_move else None,
                champion_why=(f"{last_move['action']}: {last_move['reason']}" if last_move else None),
                aliases={a: str(v) for a, v in sorted((model.aliases or {}).items())},
                updated=iso(model.last_updated_timestamp), changes=len(history), url=_model_url(ui_url, model.name)))
        token = batch.token
        if not token:
            break
    page = max(1, page)
    start = (page - 1) * per_page
    return Page(items=found[start:start + per_page], page=page, per_page=per_page, total=len(found))


def model_detail(uri: str, ui_url: str | None, name: str, *, max_versions: int = 50) -> ModelView | None:
    """One model with its ``max_versions`` newest versions; None when the registry has no such model."""
    client = _client(uri)
    try:
        model = client.get_registered_model(name)
    except Exception as exc:  # noqa: BLE001 - MLflow raises its own RestException for a missing model
        if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower():
            return None
        raise
    return _model_view(client, model, ui_url, max_versions)


def models_named(trace: Trace) -> set[str]:
    """The models a decision names: a flywheel turn's model, or ``model_name`` in an agent's result, evidence or a
    step's arguments."""
    result = trace.result if isinstance(trace.result, dict) else {}
    named = {result.get("model_name"), trace.observation.get("model"), trace.observation.get("model_name")}
    named |= {s["arguments"].get("model_name") for s in trace.steps if isinstance(s.get("arguments"), dict)}
    return {str(n) for n in named if n}


def mentions_model(trace: Trace, name: str, default_model: str | None = None) -> bool:
    """Whether a decision is about model ``name``. One that names no model (the monitoring agent decides on
    signals) belongs to ``default_model``, the ``[agentic] model_name`` that such DAGs serve."""
    named = models_named(trace)
    return name in named if named else name == default_model


def agentic_dag_ids(session: Session, dag_ids: set[str]) -> list[str]:
    """The readable DAGs that have anything for this page (decisions, drift), for the DAG filter."""
    if not dag_ids:
        return []
    from sqlalchemy import select

    from airflow.models.xcom import XComModel

    query = (select(XComModel.dag_id).distinct()
             .where(XComModel.dag_id.in_(dag_ids), XComModel.key.in_([TRACE_XCOM_KEY, TURN_XCOM_KEY, DRIFT_XCOM_KEY])))
    return sorted(session.scalars(query))


def realised_accuracy(points: list[DriftPoint], since: str | None) -> tuple[float | None, int]:
    """Mean accuracy on delayed labels of the batches scored since ``since`` (the champion's promotion), and how
    many batches that is."""
    scored = [p.accuracy for p in points if p.accuracy is not None and (since is None or p.at >= since)]
    return (sum(scored) / len(scored), len(scored)) if scored else (None, 0)


# -- backtest reports ----------------------------------------------------------------------------------------------
REPORT_SUFFIXES = {".html": "text/html; charset=utf-8", ".png": "image/png", ".json": "application/json"}


def reports_root() -> Path:
    """``[agentic] reports_path``, else env ``AGENTIC_REPORTS_PATH``, else ``$AIRFLOW_HOME/agentic/reports``."""
    from airflow.configuration import conf

    from airflow_agentic.config import airflow_home

    configured = conf.get("agentic", "reports_path", fallback="") or os.environ.get("AGENTIC_REPORTS_PATH")
    return Path(configured).expanduser() if configured else airflow_home() / "agentic" / "reports"


@dataclass
class Report:
    name: str  # the output folder, relative to the reports root
    html: str  # paths relative to the reports root
    png: str | None
    modified: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backtest_reports(root: Path, limit: int = 100) -> list[Report]:
    """``airflow-agentic backtest --report`` output folders under ``root`` (report.html, report.png), newest first."""
    if not root.is_dir():
        return []
    found = []
    for html in root.rglob("report.html"):
        png = html.with_name("report.png")
        found.append(Report(name=str(html.parent.relative_to(root)) or ".", html=str(html.relative_to(root)),
                            png=str(png.relative_to(root)) if png.exists() else None,
                            modified=iso(datetime.fromtimestamp(html.stat().st_mtime, timezone.utc))))
    return sorted(found, key=lambda r: r.modified, reverse=True)[:limit]


def report_file(root: Path, relative: str) -> Path | None:
    """The file under ``root`` named by ``relative``; None when it escapes the root or is not a report file."""
    base = root.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or path.suffix not in REPORT_SUFFIXES or not path.is_file():
        return None
    return path
