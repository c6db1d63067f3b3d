"""Where everything lives, resolved in one documented order and in one place.

Every operator, example DAG, the demo and the UI ask this module; nothing else reads ``AIRFLOW_HOME`` or guesses a
default, so with nothing configured every part of the flywheel uses the same registry, study storage and data root.

Order, first match wins:

1. the ``[agentic]`` section of the Airflow configuration (``airflow.cfg`` or ``AIRFLOW__AGENTIC__<OPTION>``);
2. an Airflow connection where the thing has one (MLflow: the connection named ``mlflow_conn_id``, type ``mlflow``;
   Spark: ``spark_default``, type ``spark``, host ``spark://host:port``);
3. the environment variable the underlying tool reads itself (``MLFLOW_TRACKING_URI``; Spark's ``MASTER``);
4. the embedded default under ``$AIRFLOW_HOME`` (SQLite files and a local data root), for one machine.

Nothing here changes the process environment: :func:`mlflow_tracking` sets MLflow's tracking URI for the duration of
a ``with`` block and puts the previous one back, so one task's registry never leaks into the next task that a
long-lived (Celery) worker runs.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTION = "agentic"
DEFAULT_MODEL_NAME = "flywheel"


def option(name: str, default: str | None = None) -> str | None:
    """``[agentic] <name>`` from Airflow's configuration (empty counts as unset)."""
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - airflow is a dependency; kept for the pure-Python backtest tools
        return os.environ.get(f"AIRFLOW__AGENTIC__{name.upper()}") or default
    value = conf.get(SECTION, name, fallback=None)
    return value.strip() if value and value.strip() else default


def airflow_home() -> Path:
    try:
        from airflow.configuration import AIRFLOW_HOME

        return Path(AIRFLOW_HOME)
    except ImportError:  # pragma: no cover
        return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def local_dir() -> Path:
    """``$AIRFLOW_HOME/agentic``: the embedded defaults' files."""
    path = airflow_home() / "agentic"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_name() -> str:
    return option("model_name", DEFAULT_MODEL_NAME) or DEFAULT_MODEL_NAME


def data_root() -> str:
    """Root URL of the flywheel's data (batches, clean outputs, reports, profiles, predictions)."""
    return (option("data_root") or f"file://{airflow_home() / 'agentic-data'}").rstrip("/")


@dataclass(frozen=True)
class Flywheel:
    """One model's flywheel in the example DAGs: its registered model, its data root, and the suffix that keeps its
    DAG ids, Assets and watcher apart from the other flywheels' (``""`` for the default one)."""

    model_name: str
    data_root: str
    suffix: str = ""

    def name(self, base: str) -> str:
        """``base`` for the default flywheel, ``base_<model>`` for a fleet member (DAG ids, Asset and watcher names)."""
        return base + self.suffix


FLEET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def flywheels() -> list[Flywheel]:
    """The flywheels the example DAGs build: the default one (``model_name`` on ``data_root``), then one per name in
    ``[agentic] fleet`` (comma-separated model names): model ``<name>`` on ``<data_root>/fleet/<name>``, its DAGs and
    Assets suffixed ``_<name>`` (``agentic_ingest_<name>``, ``agentic_clean_batch_<name>``, ...). One DAG file serves
    every model, and each model's batches, reports, drift events and retraining stay its own."""
    root = data_root()
    found = [Flywheel(model_name(), root)]
    seen = {found[0].model_name}
    for name in (option("fleet") or "").split(","):
        name = name.strip()
        if not name:
            continue
        if not FLEET_NAME.fullmatch(name):
            raise ValueError(f"[agentic] fleet: {name!r} is not a model name usable in DAG ids "
                             "(letters, digits, '_', '.', '-'; starting with a letter or digit)")
        if name in seen:
            raise ValueError(f"[agentic] fleet names {name!r} twice (or it is the default model_name)")
        seen.add(name)
        found.append(fleet_member(root, name))
    return found


def fleet_member(root: str, name: str) -> Flywheel:
    """Where fleet model ``name`` lives under the data root ``root``, and how its DAGs and Assets are named."""
    return Flywheel(name, f"{root.rstrip('/')}/fleet/{name}", f"_{name}")


def profile_dir() -> str:
    """Where each registered version's drift reference profile is written."""
    return (option("profile_dir") or f"{data_root()}/profiles").rstrip("/")


def journal_path() -> str:
    """Durable-replay journals (any ObjectStoragePath URL)."""
    return (option("journal_path") or f"file://{local_dir() / 'journal'}").rstrip("/")


def optuna_storage() -> str:
    """Optuna's study storage: a shared RDB URL in production (``postgresql+psycopg2://...``)."""
    return option("optuna_storage") or f"sqlite:///{local_dir() / 'optuna.db'}"


def connection(conn_id: str | None) -> Any | None:
    """The Airflow connection ``conn_id``, or None when it is not defined (in a task or outside one)."""
    if not conn_id:
        return None
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    except Exception as exc:  # noqa: BLE001 - outside a task (no API server) a missing conn raises other types
        if "not" in str(exc).lower() and "defined" in str(exc).lower() or type(exc).__name__.endswith("NotFound"):
            return None
        raise


def spark_master(conn_id: str | None = "spark_default") -> str:
    """The Spark master the Data Steward's Spark engine uses: ``[agentic] spark_master``, the ``conn_id`` connection
    (type ``spark``, as the apache-spark provider's ``spark_default``: host ``spark://host`` or ``host``, port, or
    ``local[*]``/``yarn`` as host), Spark's own ``MASTER`` variable, then ``local[*]`` (this machine's cores)."""
    configured = option("spark_master")
    if configured:
        return configured
    conn = connection(conn_id)
    if conn is not None and conn.host:
        host = conn.host.strip().rstrip("/")
        if host.startswith(("local", "yarn")):
            return host
        if "://" not in host:  # a URI connection (spark://h:7077) arrives as host "h", port 7077
            host = f"spark://{host}"
        return f"{host}:{conn.port}" if conn.port and ":" not in host.split("://", 1)[1] else host
    return os.environ.get("MASTER") or "local[*]"


def mlflow_tracking_uri(conn_id: str | None = "mlflow_default") -> str:
    """MLflow's tracking URI: ``[agentic] mlflow_tracking_uri``, the ``conn_id`` connection, ``MLFLOW_TRACKING_URI``,
    then ``sqlite:///$AIRFLOW_HOME/agentic/mlflow.db``."""
    configured = option("mlflow_tracking_uri")
    if configured:
        return configured
    if conn_id:
        from airflow_agentic.hooks.mlflow import MLflowHook

        from_connection = MLflowHook(conn_id).connection_uri()
        if from_connection:
            return from_connection
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{local_dir() / 'mlflow.db'}"


@contextlib.contextmanager
def mlflow_tracking(uri: str) -> Iterator[str]:
    """MLflow's fluent API and ``models:/`` URIs use ``uri`` inside the block; afterwards MLflow's URI and the
    ``MLFLOW_TRACKING_URI`` variable (which ``mlflow.set_tracking_uri`` writes) are what they were before."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    from airflow_agentic.hooks.mlflow import quiet_mlflow

    quiet_mlflow()
    previous, previous_env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


__all__ = ["airflow_home", "connection", "data_root", "journal_path", "local_dir", "mlflow_tracking",
           "mlflow_tracking_uri", "model_name", "option", "optuna_storage", "profile_dir", "spark_master"]
