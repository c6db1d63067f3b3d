"""``AgenticPlugin``: the flywheel page in the Airflow UI (a FastAPI app under /agentic plus a Browse menu entry).

Airflow loads plugins in every component (scheduler, DAG processor, workers), but only the API server mounts
FastAPI apps: the app, with FastAPI, Jinja2 and the data readers, is built the first time ``fastapi_apps`` is read.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_agentic.plugins.urls import UI_PAGE, URL_PREFIX


@cache
def _fastapi_apps() -> list[dict[str, Any]]:
    from airflow_agentic.plugins.ui.app import app

    return [{"app": app, "url_prefix": URL_PREFIX, "name": "Agentic flywheel"}]


class _BuiltOnFirstRead:
    """A class attribute whose value is computed when first read (on the class or an instance)."""

    def __init__(self, build):
        self.build = build

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self.build()


class AgenticPlugin(AirflowPlugin):
    name = "agentic"
    fastapi_apps = _BuiltOnFirstRead(_fastapi_apps)  # type: ignore[assignment]
    external_views = [
        {
            "name": "Agentic",
            "href": f"{URL_PREFIX}/{UI_PAGE}",
            "destination": "nav",
            "category": "browse",
            # With a url_route the UI shows the page inside its own frame, at /plugin/agentic.
            "url_route": "agentic",
        }
    ]
