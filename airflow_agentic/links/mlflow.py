"""Operator extra links to the MLflow UI. The operators push the URLs to XCom; the links only read them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

RUN_URL_XCOM_KEY = "mlflow_run_url"
MODEL_VERSION_URL_XCOM_KEY = "model_version_url"


def _xcom_url(ti_key: TaskInstanceKey, key: str) -> str:
    from airflow.sdk.execution_time.xcom import XCom

    try:
        value: Any = XCom.get_value(ti_key=ti_key, key=key)
    except Exception:  # noqa: BLE001 - a link must never break the page
        return ""
    return value if isinstance(value, str) else ""


class MLflowRunLink(BaseOperatorLink):
    """The task's MLflow run (the training parent run holding the trials and the model)."""

    name = "MLflow run"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return _xcom_url(ti_key, RUN_URL_XCOM_KEY)


class MLflowModelVersionLink(BaseOperatorLink):
    """The registered model version the task produced or promoted."""

    name = "MLflow model version"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return _xcom_url(ti_key, MODEL_VERSION_URL_XCOM_KEY)
