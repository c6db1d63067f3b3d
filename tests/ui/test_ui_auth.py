"""Airflow's auth on the plugin, against the real API server with the FAB auth manager: no route answers without a
valid token, a user sees only the DAGs their role may read, and the operators' extra links lead to the plugin."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
import pytest
from ui_seed import DAG_A, DAG_B, MODEL

pytestmark = pytest.mark.integration

REPORT = "drift-sudden/agentic/report.html"  # where `airflow-agentic backtest --out ... --report` would write it


def _every_route(stack) -> list[str]:
    """One concrete URL per route of the plugin's app, path parameters filled in."""
    from airflow_agentic.plugins.ui.app import app
    from airflow_agentic.plugins.urls import URL_PREFIX

    dag_id, run_id = stack.runs["a2"]
    urls = []
    for route in app.routes:
        path = re.sub(r"\{relative:path\}", REPORT, route.path)
        params = {p.name for p in route.dependant.query_params}
        wanted = {**({"dag_id": dag_id, "run_id": run_id} if "dag_id" in params else {}),
                  **({"name": MODEL} if "name" in params else {})}
        query = "?" + urlencode(wanted) if wanted else ""
        urls.append(f"{stack.url}{URL_PREFIX}{path}{query}")
    return urls


def stack_logs(stack) -> str:
    """The API server's last traceback, where a 500's cause is."""
    text = (stack.home / "api-server.log").read_text(errors="replace")
    start = text.rfind("Traceback")
    return text[start:start + 6000] if start >= 0 else text[-3000:]


def _get(url: str, token: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers, timeout=120, follow_redirects=False, **kw)


def test_every_route_refuses_a_request_without_a_valid_token(ui_stack):
    (ui_stack.reports / REPORT).parent.mkdir(parents=True, exist_ok=True)
    (ui_stack.reports / REPORT).write_text("<html><body>a backtest report</body></html>")
    urls = _every_route(ui_stack)
    assert len(urls) >= 10
    for url in urls:
        assert _get(url).status_code == 401, url
        assert _get(url, token="not-a-token").status_code == 403, url
        assert _get(url, cookies={"_token": "not-a-token"}).status_code == 403, url
    # ... and the same URLs answer a logged-in admin, by header and by the UI's cookie.
    token = ui_stack.token()
    for url in urls:
        answer = _get(url, token=token)
        assert answer.status_code == 200, (url, answer.text[:500], stack_logs(ui_stack))
    page = _get(urls[0], cookies={"_token": token})
    assert page.status_code == 200 and "Agentic flywheel" in page.text and REPORT in page.text
    report = _get(next(u for u in urls if u.endswith(REPORT)), token=token)
    assert "script-src 'none'" in report.headers["content-security-policy"]


def test_a_reader_of_one_dag_sees_only_that_dags_traces_approvals_and_drift(ui_stack):
    from airflow_agentic.plugins.urls import URL_PREFIX

    base = f"{ui_stack.url}{URL_PREFIX}"
    admin, reader = ui_stack.token(), ui_stack.as_user("reader").token()

    def dags_in(path: str, token: str, key: str) -> set[str]:
        r = _get(f"{base}{path}", token=token)
        assert r.status_code == 200, r.text
        return {item["ref"]["dag_id"] for item in r.json()[key]}

    assert dags_in("/api/traces", admin, "traces") == {DAG_A, DAG_B}
    assert dags_in("/api/traces", reader, "traces") == {DAG_A}
    assert dags_in("/api/approvals", admin, "approvals") == {DAG_A, DAG_B}
    assert dags_in("/api/approvals", reader, "approvals") == {DAG_A}
    assert dags_in("/api/timeline", admin, "points") == {DAG_A, DAG_B}
    assert dags_in("/api/timeline", reader, "points") == {DAG_A}

    page = _get(f"{base}/ui", token=reader)
    assert page.status_code == 200 and DAG_A in page.text and DAG_B not in page.text
    # Asking for DAG B by name is refused.
    b_dag, b_run = ui_stack.runs["b1"]
    assert _get(f"{base}/ui/timeline.png", token=reader, params={"dag_id": b_dag}).status_code == 403
    for page_name in ("ui/trace", "ui/drift"):
        assert _get(f"{base}/{page_name}", token=reader, params={"dag_id": b_dag, "run_id": b_run}).status_code == 403
        assert _get(f"{base}/{page_name}", token=admin, params={"dag_id": b_dag, "run_id": b_run}).status_code == 200
    # The registry is not a DAG's: every logged-in user sees it (the session's MLflow server also holds the
    # models of other test modules, so only the seeded one is checked).
    models = _get(f"{base}/api/models", token=reader, params={"q": MODEL}).json()
    assert models["error"] is None and MODEL in [m["name"] for m in models["items"]]
    # A model's page shows the reader only DAG A's part of it.
    page = _get(f"{base}/ui/model", token=reader, params={"name": MODEL})
    assert page.status_code == 200 and DAG_A in page.text and DAG_B not in page.text
    assert _get(f"{base}/ui/model", token=reader, params={"name": MODEL, "dag_id": DAG_B}).status_code == 403
    assert _get(f"{base}/ui/model", token=reader, params={"name": "no-such-model"}).status_code == 404


def test_extra_links_of_the_agent_operator_open_its_trace_and_drift(ui_stack):
    dag_id, run_id = ui_stack.runs["a2"]
    links = ui_stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/monitor/links").json()["extra_links"]
    assert set(links) == {"Decision trace", "Drift report"}
    trace = _get(links["Decision trace"], token=ui_stack.token())
    assert trace.status_code == 200
    assert "request_retraining" in trace.text and "performance drop on delayed labels" in trace.text
    drift = _get(links["Drift report"], token=ui_stack.token())
    assert drift.status_code == 200 and "Drift detected" in drift.text and "x1" in drift.text
