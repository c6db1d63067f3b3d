"""MLflow tracking/registry access from a connection (type ``mlflow``): Host = tracking URI, Login/Password = basic
auth (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD), extra ``ui_url`` when the UI lives elsewhere."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from mlflow import MlflowClient

QUIET_MLFLOW = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def quiet_mlflow() -> None:
    """No "View run" lines or download progress bars in task logs (MLflow reads both settings at each use); a value
    the user set wins."""
    for key, value in QUIET_MLFLOW.items():
        os.environ.setdefault(key, value)
    # Saving a scikit-learn model walks every loaded module's attributes (skops), which touches each of Airflow's
    # deprecated import shims: hundreds of deprecation warnings per save, none about the user's code.
    warnings.filterwarnings("ignore", module=r"skops\.")


class MLflowHook(BaseHook):
    """The tracking URI in the provider's one order (``airflow_agentic.config.mlflow_tracking_uri``: ``[agentic]
    mlflow_tracking_uri``, this connection, ``MLFLOW_TRACKING_URI``, a SQLite file under ``$AIRFLOW_HOME/agentic``).
    ``client()`` returns an ``MlflowClient`` on that URI with the connection's credentials."""

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "mlflow"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str | None = default_conn_name, **kwargs: Any) -> None:
        quiet_mlflow()
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id
        self._resolved: tuple[str, dict[str, Any]] | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Tracking URI", "login": "Username", "password": "Password"},
            "placeholders": {"host": "http://mlflow.example.com:5000 (or sqlite:////path/mlflow.db, databricks)"},
        }

    def _connection(self) -> Any | None:
        from airflow_agentic.config import connection

        return connection(self.mlflow_conn_id)

    def _from_connection(self) -> tuple[str, dict[str, Any]] | None:
        conn = self._connection()
        if conn is None or not (conn.host or (conn.extra_dejson or {}).get("tracking_uri")):
            return None
        extra = conn.extra_dejson or {}
        uri = extra.get("tracking_uri") or conn.host
        if "://" not in uri and uri != "databricks":
            uri = f"http://{uri}{f':{conn.port}' if conn.port else ''}"
        return uri, {"username": conn.login, "password": conn.password, "ui_url": extra.get("ui_url"),
                     "registry_uri": extra.get("registry_uri")}

    def connection_uri(self) -> str | None:
        """The tracking URI the connection names, or None when there is no such connection."""
        found = self._from_connection()
        return found[0] if found else None

    def _resolve(self) -> tuple[str, dict[str, Any]]:
        if self._resolved is None:
            from airflow_agentic.config import mlflow_tracking_uri, option

            found = None if option("mlflow_tracking_uri") else self._from_connection()
            self._resolved = found or (mlflow_tracking_uri(conn_id=None), {})
        return self._resolved

    def tracking_uri(self) -> str:
        return self._resolve()[0]

    def registry_uri(self) -> str:
        return self._resolve()[1].get("registry_uri") or self.tracking_uri()

    def ui_url(self) -> str | None:
        """Base URL of the MLflow UI (for operator links); None when the store is not an HTTP server."""
        uri, extra = self._resolve()
        if extra.get("ui_url"):
            return str(extra["ui_url"]).rstrip("/")
        return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None

    def export_credentials(self) -> None:
        """The connection's login and password for MLflow's client, which reads them only from the environment."""
        _, extra = self._resolve()
        if extra.get("username"):
            os.environ["MLFLOW_TRACKING_USERNAME"] = extra["username"]
        if extra.get("password"):
            os.environ["MLFLOW_TRACKING_PASSWORD"] = extra["password"]

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        self.export_credentials()
        return MlflowClient(tracking_uri=self.tracking_uri(), registry_uri=self.registry_uri())

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.client().search_experiments(max_results=1)
            return True, f"MLflow at {self.tracking_uri()} answers"
        except Exception as exc:  # noqa: BLE001
            return False, f"{type(exc).__name__}: {exc}"


def run_url(ui_url: str | None, experiment_id: str, run_id: str) -> str | None:
    return f"{ui_url}/#/experiments/{experiment_id}/runs/{run_id}" if ui_url else None


def model_version_url(ui_url: str | None, model_name: str, version: str) -> str | None:
    from urllib.parse import quote

    return f"{ui_url}/#/models/{quote(model_name, safe='')}/versions/{version}" if ui_url else None
