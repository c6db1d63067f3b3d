"""The FastAPI app Airflow's API server mounts at /agentic: the flywheel page, its chart, traces, reports and JSON.

Auth is Airflow's own: the app-wide dependency refuses any request without a valid Airflow token (Bearer header or
the ``_token`` cookie the UI login sets), and DAG data is filtered to the DAGs the auth manager lets the user read.
A plugin app is mounted as is, so leaving out the dependency would leave the routes open: every route, including
images and report files, is a FastAPI route under it (no StaticFiles mount, which dependencies do not cover).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag, requires_authenticated
from airflow_agentic.plugins.ui import data
from airflow_agentic.plugins.urls import DRIFT_PAGE, MODEL_PAGE, TRACE_PAGE, UI_PAGE, URL_PREFIX, page_url

log = logging.getLogger(__name__)

app = FastAPI(
    title="Agentic flywheel",
    dependencies=[Depends(requires_authenticated())],
    # The generated docs routes are not covered by the dependencies: keep them off.
    docs_url=None, redoc_url=None, openapi_url=None,
)


def readable_dag_ids(user: GetUserDep) -> set[str]:
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))


ReadableDags = Annotated[set[str], Depends(readable_dag_ids)]
# For pages about one DAG run: Airflow's own check on the `dag_id` query parameter (403 when not readable).
MayReadDag = Depends(requires_access_dag(method="GET"))


# -- pages ---------------------------------------------------------------------------------------------------------
@cache
def _templates():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["json"] = _pretty_json
    env.filters["when"] = lambda value: (value or "").replace("T", " ").split("+")[0].split(".")[0]
    return env


def _pretty_json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, default=str)


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    # Links work under any mount point: the plugin's root is where the request came in, Airflow's is above it.
    plugin_root = request.scope.get("root_path", "") or URL_PREFIX
    airflow_root = plugin_root[: -len(URL_PREFIX)] if plugin_root.endswith(URL_PREFIX) else ""

    def run_url(ref: data.TaskRef) -> str:
        return f"{airflow_root}/dags/{ref.dag_id}/runs/{ref.run_id}"

    def ti_url(ref: data.TaskRef, page: str = "") -> str:
        mapped = f"/mapped/{ref.map_index}" if ref.map_index >= 0 else ""
        return f"{run_url(ref)}/tasks/{ref.task_id}{mapped}{page}"

    def plugin_url(path: str, /, **params: Any) -> str:
        return page_url(path, base_url=airflow_root, **params)

    html = _templates().get_template(template).render(
        plugin_url=plugin_url, airflow_root=airflow_root, run_url=run_url, ti_url=ti_url, trace_page=TRACE_PAGE,
        drift_page=DRIFT_PAGE, ui_page=UI_PAGE, model_page=MODEL_PAGE, **context)
    return HTMLResponse(html)


PER_PAGE = 25


def _registry_call(read, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """(what ``read`` returned, None) or (None, why the registry could not be read): the rest of a page is still
    worth showing when MLflow is down."""
    try:
        return read(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001
        log.warning("MLflow registry unreadable: %s", exc)
        return None, f"{type(exc).__name__}: {exc}"


def _markers(models: list[data.ModelView], found: list[data.Trace],
             points: list[data.DriftPoint]) -> list[data.Marker]:
    """Monitoring decisions, and the models' promotions and rollbacks since the first drift report shown (older
    ones would squeeze the timeline; the models' pages list them all)."""
    start = points[0].at if points else ""
    markers = data.decision_markers(found)
    for model in models:
        markers += [data.Marker(at=e["at"], kind=e["action"], label=f"{model.name}: {e['action']} to v{e['to']}")
                    for e in model.history if e.get("at") and e["at"] >= start]
    return sorted(markers, key=lambda m: m.at)


def _readable(dag_id: str | None, dag_ids: set[str]) -> None:
    if dag_id is not None and dag_id not in dag_ids:
        raise HTTPException(403, "Forbidden")


Search = Annotated[str, Query(max_length=200)]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


@app.get(f"/{UI_PAGE}", response_class=HTMLResponse)
def flywheel_page(request: Request, session: SessionDep, dag_ids: ReadableDags, q: Search = "",
                  page: PageNumber = 1, dag_id: str | None = None) -> HTMLResponse:
    """The model list (search, pages) and, for every readable DAG or the one chosen, drift, approvals, decisions."""
    _readable(dag_id, dag_ids)
    uri = data.tracking_uri()
    models, registry_error = _registry_call(data.model_list, uri, data.mlflow_ui_url(uri), search=q, page=page,
                                            per_page=PER_PAGE)
    found = data.traces(session, dag_ids, dag_id=dag_id, limit=30)
    points = data.drift_points(session, dag_ids, dag_id=dag_id)
    return render(request, "flywheel.html", models=models, q=q, dag_id=dag_id,
                  dag_choices=data.agentic_dag_ids(session, dag_ids), registry_error=registry_error,
                  tracking_uri=uri, points=points, markers=_markers([], found, points), traces=found,
                  approvals=data.pending_approvals(session, dag_ids, dag_id=dag_id),
                  reports=data.backtest_reports(data.reports_root()))


@app.get(f"/{MODEL_PAGE}", response_class=HTMLResponse)
def model_page(request: Request, session: SessionDep, dag_ids: ReadableDags, name: Annotated[str, Query(max_length=500)],
               dag_id: str | None = None) -> HTMLResponse:
    """One model: versions and aliases, promotion and rollback history, estimated vs realised accuracy, and the
    drift and decisions of the DAGs that work on it."""
    _readable(dag_id, dag_ids)
    uri = data.tracking_uri()
    model, registry_error = _registry_call(data.model_detail, uri, data.mlflow_ui_url(uri), name)
    if model is None and registry_error is None:
        raise HTTPException(404, "no such registered model")
    from airflow_agentic.config import model_name as default_model

    default = default_model()
    about_model = [t for t in data.traces(session, dag_ids, limit=500) if data.mentions_model(t, name, default)]
    versions = model.versions if model else []
    related = ({t.ref.dag_id for t in about_model} | {v.trained_by.dag_id for v in versions if v.trained_by}) & dag_ids
    model_dags = [d for d in sorted(related) if dag_id is None or d == dag_id]
    decisions = [t for t in about_model if t.ref.dag_id in model_dags]
    points = sorted((p for d in model_dags for p in data.drift_points(session, dag_ids, dag_id=d)), key=lambda p: p.at)
    champion = next((v for v in versions if v.version == model.champion), None)
    realised, batches = data.realised_accuracy(points, model.champion_since if model else None)
    return render(request, "model.html", name=name, model=model, registry_error=registry_error, dag_id=dag_id,
                  model_dags=model_dags, related_dags=sorted(related), points=points, markers=_markers([model] if model else [], decisions, points),
                  traces=decisions[:50], champion=champion, realised=realised, realised_batches=batches,
                  approvals=[a for a in data.pending_approvals(session, dag_ids, dag_id=dag_id)
                             if a.ref.dag_id in model_dags])


@app.get(f"/{UI_PAGE}/timeline.png")
def timeline_chart(session: SessionDep, dag_ids: ReadableDags, dag_id: str | None = None,
                   model: str | None = None) -> Response:
    """The drift timeline of one DAG (all readable DAGs together without ``dag_id``), with the promotions and
    rollbacks of ``model`` when given."""
    from airflow_agentic.plugins.ui.chart import timeline_png

    _readable(dag_id, dag_ids)
    models: list[data.ModelView] = []
    if model:
        found_model, _ = _registry_call(data.model_detail, data.tracking_uri(), None, model, max_versions=0)
        models = [found_model] if found_model else []
    points = data.drift_points(session, dag_ids, dag_id=dag_id)
    found = data.traces(session, dag_ids, dag_id=dag_id, limit=200)
    png = timeline_png(points, _markers(models, found, points))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@app.get(f"/{TRACE_PAGE}", response_class=HTMLResponse, dependencies=[MayReadDag])
def trace_page(request: Request, session: SessionDep, dag_ids: ReadableDags, dag_id: str, run_id: str,
               task_id: str | None = None, map_index: int | None = None) -> HTMLResponse:
    found = data.traces(session, dag_ids, dag_id=dag_id, run_id=run_id, task_id=task_id,
                        map_index=map_index if task_id is not None else None)
    waiting = data.pending_approvals(session, dag_ids, dag_id=dag_id, run_id=run_id)
    return render(request, "trace.html", dag_id=dag_id, run_id=run_id, task_id=task_id, traces=found,
                  approvals=waiting)


@app.get(f"/{DRIFT_PAGE}", response_class=HTMLResponse, dependencies=[MayReadDag])
def drift_page(request: Request, session: SessionDep, dag_ids: ReadableDags, dag_id: str, run_id: str,
               task_id: str | None = None, map_index: int | None = None) -> HTMLResponse:
    return render(request, "drift.html", dag_id=dag_id, run_id=run_id, task_id=task_id,
                  reports=data.drift_reports(session, dag_ids, dag_id, run_id))


@app.get(f"/{UI_PAGE}/reports/{{relative:path}}")
def report_file(relative: str) -> FileResponse:
    path = data.report_file(data.reports_root(), relative)
    if path is None:
        raise HTTPException(404, "no such report file")
    # Served from Airflow's origin: a report may style itself and show its images, but run no script.
    policy = "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'none'"
    return FileResponse(path, media_type=data.REPORT_SUFFIXES[path.suffix],
                        headers={"Content-Security-Policy": policy})


# -- JSON, the same data for scripts and tests ---------------------------------------------------------------------
@app.get("/api/models")
def models_json(q: Search = "", page: PageNumber = 1,
                per_page: Annotated[int, Query(ge=1, le=500)] = PER_PAGE) -> dict[str, Any]:
    uri = data.tracking_uri()
    models, error = _registry_call(data.model_list, uri, data.mlflow_ui_url(uri), search=q, page=page,
                                   per_page=per_page)
    return {"tracking_uri": uri, "error": error, **(models.to_dict() if models else {"items": []})}


@app.get("/api/model")
def model_json(name: Annotated[str, Query(max_length=500)]) -> dict[str, Any]:
    uri = data.tracking_uri()
    model, error = _registry_call(data.model_detail, uri, data.mlflow_ui_url(uri), name)
    if model is None and error is None:
        raise HTTPException(404, "no such registered model")
    return {"tracking_uri": uri, "error": error, "model": model.to_dict() if model else None}


@app.get("/api/timeline")
def timeline_json(session: SessionDep, dag_ids: ReadableDags) -> dict[str, Any]:
    points = data.drift_points(session, dag_ids)
    markers = data.decision_markers(data.traces(session, dag_ids, limit=200))
    return {"points": [p.to_dict() for p in points], "markers": [m.to_dict() for m in markers]}


@app.get("/api/traces")
def traces_json(session: SessionDep, dag_ids: ReadableDags, dag_id: str | None = None, run_id: str | None = None,
                task_id: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    found = data.traces(session, dag_ids, dag_id=dag_id, run_id=run_id, task_id=task_id, limit=limit)
    return {"traces": [t.to_dict() for t in found]}


@app.get("/api/approvals")
def approvals_json(session: SessionDep, dag_ids: ReadableDags) -> dict[str, Any]:
    return {"approvals": [a.to_dict() for a in data.pending_approvals(session, dag_ids)]}


@app.get("/api/reports")
def reports_json() -> dict[str, Any]:
    root = data.reports_root()
    return {"root": str(root), "reports": [r.to_dict() for r in data.backtest_reports(root)]}
