"""The plugin mostly without servers: how Airflow registers it, what its module import costs, and the data shaping of the
page (a real agent run as a trace, report files, the chart, the extra links; the model list reads a real MLflow)."""

from __future__ import annotations

import subprocess
import sys

from airflow_agentic.plugins.ui import data


def test_airflow_registers_the_app_and_the_navigation_entry():
    from airflow import plugins_manager
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    info = next(p for p in plugins_manager.get_plugin_info() if p["name"] == "agentic")
    assert info["fastapi_apps"] == [{"app": "fastapi.applications.FastAPI", "url_prefix": "/agentic",
                                     "name": "Agentic flywheel"}]
    view = ExternalViewResponse(**info["external_views"][0])
    assert (view.href, view.destination, view.url_route, view.category) == ("/agentic/ui", "nav", "agentic", "browse")


def test_every_route_depends_on_an_airflow_user():
    from fastapi.routing import APIRoute

    from airflow.api_fastapi.core_api.security import get_user
    from airflow_agentic.plugins.ui.app import app

    def calls(dependant) -> set:
        return {dependant.call} | {c for d in dependant.dependencies for c in calls(d)}

    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert routes and len(routes) == len(app.routes)  # nothing mounted beside the routes (no StaticFiles)
    for route in routes:
        assert get_user in calls(route.dependant), route.path


def test_importing_the_plugin_module_stays_cheap():
    probe = ("import sys, airflow.plugins_manager\nbefore = set(sys.modules)\n"
             "import airflow_agentic.plugins.agentic\n"
             "print(sorted(m for m in ('fastapi', 'jinja2', 'mlflow', 'matplotlib', 'pandas', 'sqlalchemy.orm')"
             " if m in sys.modules and m not in before))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_real_agent_run_reads_as_a_trace():
    from agents.toy import CounterAgent

    from airflow_agentic.agents import AgentLoop

    run = AgentLoop(CounterAgent(target=2)).run().to_dict()
    trace = data._agent_trace(data.TaskRef("d", "r", "counter"), "2026-11-27T10:00:00+00:00", run)
    assert trace.agent == "counter" and trace.status == "finished" and trace.planner == "rule"
    assert trace.headline == "increment, increment, publish"
    assert [s["tool"] for s in trace.steps] == ["increment", "increment", "publish", "finish"]
    assert trace.reasons[:2] == ["below target", "below target"]
    assert all(s["verdict"] == "allowed" for s in trace.steps)


def test_registry_history_is_newest_first_in_the_order_the_champion_moved():
    import json

    from airflow_agentic.models.registry import PROMOTION_HISTORY_TAG, ROLLBACK_HISTORY_TAG

    second = "2026-11-27T10:00:01+00:00"  # the tags keep seconds: a promotion and its rollback can share one
    tags = {PROMOTION_HISTORY_TAG: json.dumps([
                {"from": None, "to": "1", "reason": "first", "at": "2026-11-27T10:00:00+00:00"},
                {"from": "1", "to": "2", "reason": "better", "at": second},
                {"from": "1", "to": "3", "reason": "retrained", "at": "2026-11-27T10:05:00+00:00"}]),
            ROLLBACK_HISTORY_TAG: json.dumps([{"from": "2", "to": "1", "reason": "worse", "at": second}])}
    history = data._history(tags)
    assert [(e["action"], e["to"]) for e in history] == [("promotion", "3"), ("rollback", "1"), ("promotion", "2"),
                                                         ("promotion", "1")]


def test_with_more_models_than_fit_the_recently_updated_ones_are_shown(mlflow_server):
    """The session's registry holds the other modules' models too: the page keeps the ones that just moved."""
    import time

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url)
    for name in ("ui_order_c", "ui_order_a", "ui_order_b"):
        client.create_registered_model(name)
        time.sleep(0.01)
    shown = data.registry_overview(mlflow_server.url, None, max_models=2, max_versions=0)
    assert [m.name for m in shown] == ["ui_order_b", "ui_order_a"]


def test_backtest_reports_are_listed_and_only_their_files_served(tmp_path):
    folder = tmp_path / "drift-sudden" / "agentic"
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("<html></html>")
    (folder / "report.png").write_bytes(b"\x89PNG")
    (folder / "predictions.parquet").write_bytes(b"PAR1")
    (tmp_path.parent / "outside.html").write_text("secret")

    [report] = data.backtest_reports(tmp_path)
    assert (report.name, report.html, report.png) == ("drift-sudden/agentic", "drift-sudden/agentic/report.html",
                                                      "drift-sudden/agentic/report.png")
    assert data.report_file(tmp_path, report.html) == folder / "report.html"
    assert data.report_file(tmp_path, "drift-sudden/agentic/predictions.parquet") is None  # not a report file
    assert data.report_file(tmp_path, "../outside.html") is None  # outside the reports folder
    assert data.report_file(tmp_path, "missing/report.html") is None


def test_reports_folder_comes_from_config_then_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTIC_REPORTS_PATH", str(tmp_path / "from-env"))
    assert data.reports_root() == tmp_path / "from-env"
    monkeypatch.setenv("AIRFLOW__AGENTIC__REPORTS_PATH", str(tmp_path / "from-config"))
    assert data.reports_root() == tmp_path / "from-config"


def test_the_timeline_chart_is_a_png_with_or_without_data():
    from airflow_agentic.plugins.ui.chart import timeline_png

    points = [data.DriftPoint(at=f"2026-11-27T10:0{i}:00+00:00", ref=data.TaskRef("d", f"r{i}", "score"),
                              score=s, detected=s > 0.3, drifted_columns=["x1"] if s > 0.3 else [],
                              effects={"x1": s * 1.2, "x2": 0.02}, batch=i, accuracy=a)
              for i, (s, a) in enumerate([(0.0, 0.91), (0.67, 0.9), (0.67, None), (0.33, 0.7)])]
    markers = [data.Marker(at="2026-11-27T10:03:30+00:00", kind="request_retraining", label="retraining requested"),
               data.Marker(at="2026-11-27T10:04:00+00:00", kind="promotion", label="m: v1 -> v2")]
    for png in (timeline_png(points, markers), timeline_png([], [])):
        assert png.startswith(b"\x89PNG\r\n") and len(png) > 5000


def test_extra_links_point_at_the_plugin_pages(monkeypatch):
    from airflow.models.taskinstancekey import TaskInstanceKey

    from airflow_agentic.links.agentic_ui import DecisionTraceLink, DriftReportLink

    key = TaskInstanceKey(dag_id="flywheel", task_id="monitor", run_id="manual__2026-11-27T10:00:00+00:00",
                          map_index=-1)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org/")
    assert DecisionTraceLink().get_link(None, ti_key=key) == (
        "https://airflow.example.org/agentic/ui/trace?dag_id=flywheel&run_id=manual__2026-11-27T10%3A00%3A00%2B00%3A00"
        "&task_id=monitor&map_index=-1")
    assert DriftReportLink().get_link(None, ti_key=key).startswith("https://airflow.example.org/agentic/ui/drift?")


def test_model_list_searches_and_pages_through_the_whole_registry(mlflow_server):
    """More models than one registry request returns (the list pages through MLflow's own page tokens)."""
    from mlflow import MlflowClient

    from airflow_agentic.models.registry import PROMOTION_HISTORY_TAG

    client = MlflowClient(tracking_uri=mlflow_server.url)
    client.create_registered_model("ui_list_Alpha", tags={PROMOTION_HISTORY_TAG: '[{"from": null, "to": "1", '
                                                          '"reason": "first", "at": "2026-11-27T10:00:00+00:00"}]'})
    for i in range(3):
        client.create_registered_model(f"ui_list_beta_{i}")
    found = data.model_list(mlflow_server.url, None, search="UI_LIST_", per_page=2)
    assert found.total == 4 and found.pages == 2 and [m.name for m in found.items] == ["ui_list_beta_2",
                                                                                      "ui_list_beta_1"]
    last = data.model_list(mlflow_server.url, None, search="ui_list_", page=2, per_page=2)
    assert [m.name for m in last.items] == ["ui_list_beta_0", "ui_list_Alpha"] and last.items[1].changes == 1
    assert data.model_list(mlflow_server.url, None, search="alpha").total == 1
    assert data.model_list(mlflow_server.url, None, search="no such model").items == []
    assert data.model_list(mlflow_server.url, None, search="ui_list_", page=99, per_page=2).items == []
    assert data.model_detail(mlflow_server.url, None, "ui_list_Alpha").history[0]["reason"] == "first"
    assert data.model_detail(mlflow_server.url, None, "no such model") is None
    assert data.model_detail(mlflow_server.url, None, "it's 'quoted'") is None  # a name is data, not a filter


def test_a_decision_belongs_to_the_model_it_names_or_else_to_the_default_model():
    ref = data.TaskRef("d", "r", "t")
    turn = data.Trace(ref=ref, at="", kind="flywheel_turn", agent="flywheel turn", status="promoted", headline="",
                      observation={"model": "churn"})
    deploy = data.Trace(ref=ref, at="", kind="agent_run", agent="deployment", status="finished", headline="",
                        steps=[{"tool": "promote", "arguments": {"model_name": "fraud"}}])
    monitor = data.Trace(ref=ref, at="", kind="agent_run", agent="monitoring", status="finished", headline="")
    assert data.mentions_model(turn, "churn") and not data.mentions_model(turn, "fraud", "fraud")
    assert data.mentions_model(deploy, "fraud") and not data.mentions_model(deploy, "churn", "churn")
    assert data.mentions_model(monitor, "flywheel", "flywheel") and not data.mentions_model(monitor, "churn", "x")


def test_the_model_list_renders_its_pages_and_keeps_search_and_dag_in_the_links():
    from airflow_agentic.plugins.ui.app import render

    request = type("Request", (), {"scope": {"root_path": "/agentic"}})()
    rows = [data.ModelSummary(name=f"m{i}", champion="2", champion_since=None, champion_why=None,
                              aliases={"champion": "2", "previous": "1"}, updated=None, changes=1) for i in range(2)]
    html = render(request, "flywheel.html", models=data.Page(items=rows, page=2, per_page=2, total=6), q="m",
                  dag_id="d <1>", dag_choices=["d <1>"], registry_error=None, tracking_uri="http://mlflow",
                  points=[], markers=[], traces=[], approvals=[], reports=[]).body.decode()
    assert "page 2 of 3" in html and html.count('class="model-row"') == 2
    assert 'href="/agentic/ui?q=m&amp;dag_id=d+%3C1%3E&amp;page=1"' in html  # previous
    assert 'href="/agentic/ui?q=m&amp;dag_id=d+%3C1%3E&amp;page=3"' in html  # next
    assert 'href="/agentic/ui/model?name=m0&amp;dag_id=d+%3C1%3E"' in html
    assert "d <1>" not in html  # escaped everywhere
