"""``ModelWatchOperator``: after a promotion, compare ``champion`` with ``previous`` on a newly labelled batch
(accuracy, prediction errors, latency) and roll back by itself when the champion is worse by the margin. The reason
goes into the registry (rollback history tag, a tag on the rolled-back version); ``notifiers`` are told.

``rollback`` is a destructive tool: with ``production=True`` a person approves it; by default it is automatic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_agentic.links.mlflow import MODEL_VERSION_URL_XCOM_KEY, MLflowModelVersionLink
from airflow_agentic.operators._mlops import MlflowTrackingMixin
from airflow_agentic.operators.agent import AgentOperator

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Context

    from airflow_agentic.agents import Agent, AgentRun


class ModelWatchOperator(MlflowTrackingMixin, AgentOperator):
    """Watch a fresh champion and roll it back when it is worse than the previous one.

    :param model_name: registered model (templated).
    :param batch: URL of newly labelled Parquet data (file, folder or glob; templated).
    :param target: label column (templated).
    :param margin: accuracy drop (absolute) beyond which the champion counts as worse.
    :param max_latency_ratio: champion latency over this multiple of the previous model's counts as worse.
    :param min_rows: fewer labelled rows decide nothing.
    :param production: a rollback needs a person's approval (otherwise automatic).
    :param notifiers: called after a rollback with ``context["agentic_event"]``.
    :param conn_id: Airflow connection for the object store holding the batch (e.g. ``aws_default`` for ``s3://``).

    Returns ``{"rolled_back", "comparison", "rollback", "alerted", "champion_version", "previous_version"}``.
    """

    template_fields: Sequence[str] = (*AgentOperator.template_fields, "model_name", "batch", "target", "margin")
    operator_extra_links = (*AgentOperator.operator_extra_links, MLflowModelVersionLink())
    ui_color = "#fde8e8"

    def __init__(self, *, model_name: str, batch: str, target: str = "label", margin: float | str = 0.02,
                 max_latency_ratio: float | None = 5.0, min_rows: int = 50, production: bool = False,
                 notifiers: Sequence[BaseNotifier] = (), conn_id: str | None = None,
                 mlflow_conn_id: str | None = "mlflow_default", **kwargs: Any) -> None:
        if "approval_for" not in kwargs:
            kwargs["approval_for"] = ("destructive",) if production else ()
        super().__init__(**kwargs)
        self.model_name = model_name
        self.batch = batch
        self.target = target
        self.margin = margin
        self.max_latency_ratio = max_latency_ratio
        self.min_rows = min_rows
        self.production = production
        self.notifiers = list(notifiers)
        self.conn_id = conn_id
        self.mlflow_conn_id = mlflow_conn_id

    def build_agent(self, context: Context) -> Agent:
        from airflow_agentic.agents.deployment import WatchAgent
        from airflow_agentic.hooks.mlflow import MLflowHook
        from airflow_agentic.models.registry import ModelRegistry
        from airflow_agentic.operators._mlops import load_labelled

        hook = MLflowHook(self.mlflow_conn_id)
        self._ui = hook.ui_url()

        def notify(payload: dict[str, Any]) -> bool:
            event = {"kind": "rollback", "action": "rollback", "payload": payload}
            sent = False
            for notifier in self.notifiers:
                try:
                    notifier({**context, "agentic_event": event})
                    sent = True
                except Exception as exc:  # noqa: BLE001 - a dead webhook must not undo the rollback
                    self.log.warning("notifier %s failed: %s", type(notifier).__name__, exc)
            return sent

        return WatchAgent(self.model_name, load_labelled(self.batch, self.target, conn_id=self.conn_id),
                          registry=ModelRegistry(hook.tracking_uri(), client=hook.client()),
                          margin=float(self.margin), max_latency_ratio=self.max_latency_ratio,
                          min_rows=int(self.min_rows), notify=notify, batch_location=str(self.batch))

    def on_finish(self, context: Context, run: AgentRun) -> Any:
        from airflow_agentic.hooks.mlflow import model_version_url
        from airflow_agentic.operators._mlops import push_url, step_result

        result = dict(run.result or {})
        for key, tool_name in (("comparison", "compare_models"), ("rollback", "rollback"), ("alerted", "alert")):
            if result.get(key) is None:
                result[key] = step_result(run, tool_name)
        result["rolled_back"] = result.get("rollback") is not None
        champion = (result.get("rollback") or {}).get("to_version") or result.get("champion_version")
        if champion:
            push_url(context, MODEL_VERSION_URL_XCOM_KEY,
                     model_version_url(getattr(self, "_ui", None), self.model_name, str(champion)))
        self.log.info("%s: %s", self.model_name, "rolled back" if result["rolled_back"] else "champion holds")
        return result
