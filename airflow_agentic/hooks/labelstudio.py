"""A thin hook over ``label_studio_sdk`` (through :class:`airflow_agentic.data.labelstudio.LabelStudioClient`).

Connection type ``labelstudio``: Host = the Label Studio URL (``http://localhost:8080``), Password = the API token
(a legacy token is sent as ``Token <key>``, a personal access token / JWT as ``Bearer``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow_agentic.data.labelstudio import LabelStudioClient


class LabelStudioUnavailable(ConnectionError):
    """Label Studio did not answer (down, unreachable, or answering with server errors)."""


class LabelStudioHook(BaseHook):
    conn_name_attr = "labelstudio_conn_id"
    default_conn_name = "labelstudio_default"
    conn_type = "labelstudio"
    hook_name = "Label Studio"

    def __init__(self, labelstudio_conn_id: str = default_conn_name, *, timeout: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labelstudio_conn_id = labelstudio_conn_id
        self._timeout = timeout
        self._client: LabelStudioClient | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"host": "Label Studio URL", "password": "API token"},
            "placeholders": {"host": "http://localhost:8080", "password": "legacy token or personal access token"},
        }

    def base_url_and_token(self) -> tuple[str, str]:
        conn = self.get_connection(self.labelstudio_conn_id)
        base_url = conn.host or ""
        if base_url and "://" not in base_url:  # a bare host name, as the classic form stores it
            base_url = f"{conn.schema or 'http'}://{base_url}{f':{conn.port}' if conn.port else ''}"
        token = conn.password or conn.extra_dejson.get("api_key") or ""
        if not base_url or not token:
            raise ValueError(f"connection {self.labelstudio_conn_id!r} needs host (Label Studio URL) and password "
                             "(API token)")
        return base_url.rstrip("/"), token

    @property
    def timeout(self) -> float:
        """Seconds per request: the argument, else the connection's ``timeout`` extra, else 30."""
        if self._timeout is None:
            self._timeout = float(self.get_connection(self.labelstudio_conn_id).extra_dejson.get("timeout") or 30.0)
        return self._timeout

    def get_conn(self) -> LabelStudioClient:
        """The project/task/annotation client for this connection."""
        if self._client is None:
            from airflow_agentic.extras import require

            require("label_studio_sdk.client", "labelstudio", "LabelStudioHook")
            from label_studio_sdk.client import LabelStudio

            from airflow_agentic.data.labelstudio import LabelStudioClient

            base_url, token = self.base_url_and_token()
            self._client = LabelStudioClient(base_url, token,
                                             client=LabelStudio(base_url=base_url, api_key=token, timeout=self.timeout))
        return self._client

    def call(self, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        """Call a client method; network failures and 5xx answers become :class:`LabelStudioUnavailable`."""
        try:
            return getattr(self.get_conn(), fn_name)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_unavailable(exc):
                raise LabelStudioUnavailable(f"Label Studio at {self.base_url_and_token()[0]} is unavailable: "
                                             f"{type(exc).__name__}: {exc}") from exc
            raise

    def test_connection(self) -> tuple[bool, str]:
        import httpx

        try:
            base_url, token = self.base_url_and_token()
            scheme = "Bearer" if token.count(".") == 2 else "Token"
            r = httpx.get(f"{base_url}/api/projects", params={"page_size": 1},
                          headers={"Authorization": f"{scheme} {token}"}, timeout=self.timeout)
            if r.status_code == 200:
                return True, "Connected to Label Studio."
            return False, f"Label Studio answered HTTP {r.status_code}: {r.text[:200]}"
        except Exception as exc:  # noqa: BLE001 - reported to the UI
            return False, f"{type(exc).__name__}: {exc}"


def is_unavailable(exc: BaseException) -> bool:
    """Connection refused, time-outs, DNS failures and 5xx: worth waiting for. 4xx (bad token, bad id) is not."""
    import httpx

    if isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError, LabelStudioUnavailable)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status >= 500
