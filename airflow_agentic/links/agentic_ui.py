"""Operator extra links to the flywheel page of the plugin (``airflow_agentic.plugins``): the task's decision trace
and the drift reports of its DAG run.

Airflow 3 computes extra links in the worker when the task ends and stores them in XCom, so these read
``[api] base_url`` there; without it the links are relative to the UI's own origin, which is where the plugin lives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_agentic.plugins.urls import DRIFT_PAGE, TRACE_PAGE, page_url

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey


def task_page_url(page: str, ti_key: TaskInstanceKey) -> str:
    from airflow.configuration import conf

    return page_url(page, base_url=conf.get("api", "base_url", fallback="") or "", dag_id=ti_key.dag_id,
                    run_id=ti_key.run_id, task_id=ti_key.task_id, map_index=ti_key.map_index)


class DecisionTraceLink(BaseOperatorLink):
    """Every step of the agent in this task: planner, tool, arguments, guard verdict, approval, result."""

    name = "Decision trace"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return task_page_url(TRACE_PAGE, ti_key)


class DriftReportLink(BaseOperatorLink):
    """The drift reports of this task's DAG run, feature by feature."""

    name = "Drift report"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return task_page_url(DRIFT_PAGE, ti_key)
