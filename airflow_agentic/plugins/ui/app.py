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
from airflow_agentic.plugins.urls import DRIFT_PAGE, TRACE_PAGE, UI_PAGE, URL_PREFIX, page_url

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

    def plugin_url(page: str, **params: Any) -> str:
        return page_url(page, base_url=airflow_root, **params)

    html = _templates().get_template(template).render(
        plugin_url=plugin_url, airflow_root=airflow_root, run_url=run_url, ti_url=ti_url, trace_page=TRACE_PAGE,
        drift_page=DRIFT_PAGE, ui_page=UI_PAGE, **context)
    return HTMLResponse(html)


def _registry(max_versions: int = 10) -> tuple[str, list[data.ModelView], str | None]:
    uri = data.tracking_uri()
    try:
        return uri, data.registry_overview(uri, data.mlflow_ui_url(uri), max_versions=max_versions), None
    except Exception as exc:  # noqa: BLE001 - the rest of the page is still worth showing
        log.warning("MLflow registry at %s unreadable: %s", uri, exc)
        return uri, [], f"{type(exc).__name__}: {exc}"


def _markers(models: list[data.ModelView], found: list[data.Trace],
             points: list[data.DriftPoint]) -> list[data.Marker]:
    """Monitoring decisions, and the models' promotions and rollbacks since the first drift report shown (older
    ones would squeeze the timeline; the models section lists them all)."""
    start = points[0].at if points else ""
    markers = data.decision_markers(found)
    for model in models:
        markers += [data.Marker(at=e["at"], kind=e["action"], label=f"{model.name}: {e['action']} to v{e['to']}")
                    for e in model.history if e.get("at") and e["at"] >= start]
    return sorted(markers, key=lambda m: m.at)


@app.get(f"/{UI_PAGE}", response_class=HTMLResponse)
def flywheel_page(request: Request, session: SessionDep, dag_ids: ReadableDags) -> HTMLResponse:
    uri, models, registry_error = _registry()
    found = data.traces(session, dag_ids, limit=30)
    points = data.drift_points(session, dag_ids)
    return render(request, "flywheel.html", models=models, registry_error=registry_error, tracking_uri=uri,
                  points=points, markers=_markers(models, found, points), traces=found,
                  approvals=data.pending_approvals(session, dag_ids),
                  reports=data.backtest_reports(data.reports_root()))


@app.get(f"/{UI_PAGE}/timeline.png")
def timeline_chart(session: SessionDep, dag_ids: ReadableDags, dag_id: str | None = None) -> Response:
    """The drift timeline of one DAG (all readable DAGs together without ``dag_id``)."""
    from airflow_agentic.plugins.ui.chart import timeline_png

    if dag_id is not None and dag_id not in dag_ids:
        raise HTTPException(403, "Forbidden")
    _, models, _ = _registry(max_versions=0)  # the history tags are enough here
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
def models_json() -> dict[str, Any]:
    uri, models, error = _registry()
    return {"tracking_uri": uri, "error": error, "models": [m.to_dict() for m in models]}


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
