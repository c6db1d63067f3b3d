"""Where the plugin's pages live, in one place: the plugin mounts them, operator links and templates point at them.

Imports nothing from Airflow, so a worker building an extra link pays nothing for it.
"""

from __future__ import annotations

from urllib.parse import urlencode

URL_PREFIX = "/agentic"  # the FastAPI app's mount point on the API server
UI_PAGE = "ui"  # the flywheel page; the navigation entry opens it in an iframe at /plugin/agentic
TRACE_PAGE = "ui/trace"
MODEL_PAGE = "ui/model"  # one registered model: ?name=
DRIFT_PAGE = "ui/drift"


def page_url(path: str, /, *, base_url: str = "", **params: object) -> str:
    """``{base_url}/agentic/{path}?{params}``; parameters that are None are left out (``path`` is positional only,
    so any query parameter name, ``page`` too, is free)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{base_url.rstrip('/')}{URL_PREFIX}/{path}" + (f"?{query}" if query else "")
