"""Shared glue of the training, HPO, deployment and watch operators: labelled data from ObjectStoragePath URLs,
rendered templates back to objects, results read from an agent's trace."""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.agents import AgentRun
    from airflow_agentic.models.dataset import Dataset

_TABLE_SUFFIXES = (".parquet", ".pq", ".parq")


def native(value: Any, *, strict: bool = False) -> Any:
    """A rendered template of a dict or list arrives as its JSON or Python repr: turn it back into the object.
    Text that is neither comes back unchanged, or raises with `strict`."""
    if isinstance(value, str):
        text = value.strip()
        if not text or text == "None":
            return None
        try:
            return json.loads(text)
        except ValueError:
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError):
                if strict:
                    raise
                return value
    return value


def mlflow_hook(operator: Any):
    """The operator's MLflowHook, made once per task (its `mlflow_conn_id` attribute names the connection)."""
    from airflow_agentic.hooks.mlflow import MLflowHook

    if not hasattr(operator, "_mlflow_hook"):
        operator._mlflow_hook = MLflowHook(operator.mlflow_conn_id)
    return operator._mlflow_hook


def resolve_files(url: str, conn_id: str | None = None) -> list[Any]:
    """A Parquet file, a folder of Parquet files, or a glob (``.../batch_*.parquet``) -> sorted paths.

    Paths come from the one resolver (``data.io.resolve_path``) and the one listing (``triggers.drift.list_batches``),
    so an ``s3://`` URL reads through the Airflow connection ``conn_id`` like everywhere else."""
    import glob

    from airflow_agentic.data.io import resolve_path
    from airflow_agentic.triggers.drift import file_path, list_batches

    url = str(url)
    path = resolve_path(url, conn_id)
    if not glob.has_magic(url) and not path.is_dir():
        return [path]
    files = [file_path(name, url, conn_id) for name in sorted(list_batches(url, conn_id, _TABLE_SUFFIXES))]
    if not files:
        raise FileNotFoundError(f"no Parquet files at {url}")
    return files


def read_table(url: str, conn_id: str | None = None) -> pd.DataFrame:
    import pandas as pd

    from airflow_agentic.data.io import read_batch

    frames = [read_batch(path, "parquet") for path in resolve_files(url, conn_id)]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def load_labelled(url: str, target: str, *, drop: list[str] | None = None,
                  conn_id: str | None = None) -> tuple[pd.DataFrame, pd.Series]:
    frame = read_table(url, conn_id)
    if target not in frame.columns:
        raise ValueError(f"target column {target!r} not in {url} (columns: {list(frame.columns)[:30]})")
    frame = frame.dropna(subset=[target])
    X = frame.drop(columns=[target, *[c for c in (drop or []) if c in frame.columns]])
    return X.reset_index(drop=True), frame[target].reset_index(drop=True)


def load_dataset(url: str, target: str, *, categorical: list[str] | None = None,
                 drop: list[str] | None = None, conn_id: str | None = None) -> Dataset:
    from airflow_agentic.models.dataset import Dataset

    X, y = load_labelled(url, target, drop=drop, conn_id=conn_id)
    return Dataset(X, y, categorical=categorical, location=str(url))


class MlflowTrackingMixin:
    """For agent operators that use MLflow's fluent API: the agent runs with the operator's tracking URI (its
    ``mlflow_conn_id``, see ``airflow_agentic.config``), and the worker's own URI comes back afterwards, so a
    long-lived (Celery) worker never carries one task's registry into the next task."""

    def _run(self, context: Any, *args: Any, **kwargs: Any) -> Any:
        from airflow_agentic.config import mlflow_tracking

        with mlflow_tracking(mlflow_hook(self).tracking_uri()):
            return super()._run(context, *args, **kwargs)  # type: ignore[misc]


def step_result(run: AgentRun, tool: str) -> dict[str, Any] | None:
    """The result of the last successful call of `tool` in the trace (also when it was replayed from the journal)."""
    for step in reversed(run.steps):
        if step.tool == tool and step.status == "ok" and isinstance(step.result, dict):
            return step.result
    return None


def push_url(context: Any, key: str, url: str | None) -> None:
    if url:
        context["ti"].xcom_push(key=key, value=url)
