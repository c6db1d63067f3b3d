"""``MonitoringAgentOperator``: the Monitoring & Adaptation agent in a task.

It builds the :class:`~airflow_agentic.agents.monitoring.MonitoringAgent` from a drift report (e.g. a
``DriftSensor``'s XCom) and the champion's delayed-label performance, runs it through ``AgentOperator`` (planner,
approvals, replay, trace) and wires its callbacks to Airflow:

- ``request_retraining`` -> an Asset event on ``retraining_asset`` with the request in ``extra``; a DAG scheduled on
  that asset runs the retraining. The asset is a declared outlet (lineage in the UI), but Airflow 3.3 emits an event
  for every static outlet of a successful task, so on any other decision it is withheld for this try.
- every action (alert, retraining, rollback, data steward) -> the ``notifiers`` with ``context["agentic_event"]``.

The task returns the ``MonitoringDecision`` dict. With ``state_variable`` the agent's memory (cool-down, in-flight
retraining, last alert) lives in that Airflow Variable between runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_agentic.links.agentic_ui import DriftReportLink
from airflow_agentic.operators.agent import AgentOperator

if TYPE_CHECKING:
    from airflow.sdk import Asset, BaseNotifier, Context

    from airflow_agentic.agents import Agent, AgentRun

NOTIFY_ON = ("alert", "request_retraining", "request_rollback", "send_to_data_steward")


def _native(value: Any) -> Any:
    from airflow_agentic.operators._mlops import native

    return native(value, strict=True)


class MonitoringAgentOperator(AgentOperator):
    """Decide what a batch's drift and performance evidence call for.

    :param drift_report: ``DriftReport`` dict (templated; ``sensor.output`` or a Jinja XCom pull).
    :param performance: the champion's evidence, either ``performance_evidence(...)`` output or
        ``{"records": [BatchPerformance dicts], "champion": "v3", "previous": "v2", "expected": {...}}`` (templated).
    :param quality: the batch's data-quality summary (``rows``, ``quarantined``, ``quarantined_share``, ...).
    :param monitor_report: ``PerformanceMonitor.report()`` (ADWIN change flag) (templated).
    :param retraining: what the champion was trained on (``kind``, ``change_point``, ``trained_until``).
    :param batch: batch number (templated; default the latest labelled batch).
    :param policy: ``MonitoringPolicy`` fields to override.
    :param state_variable: Airflow Variable holding ``MonitoringState`` between runs (None: start fresh).
    :param retraining_asset: Asset (or its name) that gets an event when the agent requests retraining.
    :param notifiers: notifiers called for each action in ``notify_on``.
    """

    template_fields: Sequence[str] = (*AgentOperator.template_fields, "drift_report", "performance", "quality",
                                      "monitor_report", "retraining", "batch")
    template_fields_renderers = {**AgentOperator.template_fields_renderers, "drift_report": "json",
                                 "performance": "json", "quality": "json"}
    operator_extra_links = (*AgentOperator.operator_extra_links, DriftReportLink())
    ui_color = "#e8fdf0"

    def __init__(self, *, drift_report: Any = None, performance: Any = None, quality: Any = None,
                 monitor_report: Any = None, retraining: Any = None, batch: int | str | None = None,
                 policy: dict[str, Any] | None = None, state_variable: str | None = None,
                 retraining_asset: Asset | str | None = None, notifiers: Sequence[BaseNotifier] = (),
                 notify_on: Sequence[str] = NOTIFY_ON, **kwargs: Any) -> None:
        if isinstance(retraining_asset, str):
            from airflow.sdk import Asset

            retraining_asset = Asset(retraining_asset)
        if retraining_asset is not None:
            outlets = list(kwargs.pop("outlets", None) or [])
            if retraining_asset not in outlets:
                outlets.append(retraining_asset)
            kwargs["outlets"] = outlets
        super().__init__(**kwargs)
        self.drift_report = drift_report
        self.performance = performance
        self.quality = quality
        self.monitor_report = monitor_report
        self.retraining = retraining
        self.batch = batch
        self.policy = policy
        self.state_variable = state_variable
        self.retraining_asset = retraining_asset
        self.notifiers = list(notifiers)
        self.notify_on = list(notify_on)

    # ------------------------------------------------------------------ evidence
    def signals(self) -> dict[str, Any]:
        from airflow_agentic.agents.monitoring import (
            BatchPerformance,
            MonitoringPolicy,
            build_signals,
            performance_evidence,
        )

        drift = _native(self.drift_report) or {}
        performance = _native(self.performance) or {}
        if "records" in performance:
            records = [BatchPerformance.from_dict(r) for r in performance["records"]]
            champion = performance.get("champion") or (records[-1].version if records else "champion")
            performance = performance_evidence(records, champion, previous=performance.get("previous"),
                                               expected=performance.get("expected"),
                                               policy=MonitoringPolicy.from_dict(self.policy))
        batch = _native(self.batch) if isinstance(self.batch, str) else self.batch
        if batch is None:
            batch = performance.get("latest_batch") or 0
        return build_signals(batch=int(batch), drift=drift, quality=_native(self.quality) or {},
                             performance=performance, monitor_report=_native(self.monitor_report) or {},
                             retraining=_native(self.retraining) or {})

    def _load_state(self) -> Any:
        from airflow_agentic.agents.monitoring import MonitoringState

        if not self.state_variable:
            return MonitoringState()
        from airflow.sdk import Variable

        return MonitoringState.from_dict(Variable.get(self.state_variable, default=None, deserialize_json=True))

    # ------------------------------------------------------------------ the agent
    def build_agent(self, context: Context) -> Agent:
        from airflow_agentic.agents.monitoring import MonitoringAgent, MonitoringPolicy

        self._drift = _native(self.drift_report) or {}

        def callback(kind: str):
            def call(payload: dict[str, Any]) -> dict[str, Any]:
                self._notify(context, kind, payload)
                return {"notified": kind in self.notify_on and bool(self.notifiers)}
            return call

        return MonitoringAgent(self.signals(), policy=MonitoringPolicy.from_dict(self.policy),
                               state=self._load_state(), on_alert=callback("alert"),
                               on_retrain=callback("request_retraining"), on_rollback=callback("request_rollback"),
                               on_steward=callback("send_to_data_steward"))

    def _notify(self, context: Context, kind: str, payload: dict[str, Any]) -> None:
        if kind not in self.notify_on:
            return
        event = {"kind": kind, "payload": payload, "drift": self._drift or None}
        for notifier in self.notifiers:
            try:
                notifier({**context, "agentic_event": event})
            except Exception as exc:  # noqa: BLE001 - a dead webhook must not undo the decision
                self.log.warning("notifier %s failed for %s: %s", type(notifier).__name__, kind, exc)

    def on_finish(self, context: Context, run: AgentRun) -> Any:
        result = run.result or {}
        decision = dict(result.get("decision") or {})
        if self.state_variable and result.get("state") is not None:
            from airflow.sdk import Variable

            Variable.set(self.state_variable, result["state"], serialize_json=True)
        self.log.info("Monitoring decision: %s (%s)", decision.get("action"), "; ".join(decision.get("reasons") or []))
        if self.retraining_asset is not None:
            if decision.get("action") == "request_retraining" or decision.get("retrain"):
                drift = self._drift or {}
                context["outlet_events"][self.retraining_asset].extra = {
                    "action": "request_retraining", "retrain": decision.get("retrain"),
                    "batch": decision.get("batch"), "reasons": list(decision.get("reasons") or [])[:5],
                    "drift": {"detected": bool(drift.get("detected")), "score": drift.get("score"),
                              "drifted_columns": list(drift.get("drifted_columns") or [])[:20]},
                }
            else:
                # Static outlets always get an event on success: withhold this one, the agent asked for nothing.
                self.outlets = [o for o in self.outlets if o != self.retraining_asset]
        return decision
