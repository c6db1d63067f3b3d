"""The base operator every agent runs in: observe -> plan -> guard -> (approve) -> act -> record.

Subclasses build their agent in `build_agent`; everything else (planner choice, approvals through Airflow's
human-in-the-loop, durable replay across retries, the trace in logs and XCom) is here, once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_agentic.agents import Agent, AgentRun, ApprovalRequest

TRACE_XCOM_KEY = "agent_run"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(part))


class AgentOperator(BaseOperator):
    """Run an agent inside a task.

    :param goal: what the agent should achieve (templated); defaults to the agent's own goal.
    :param allowed_tools: allow-list narrowing the agent's toolset (templated); None allows all.
    :param llm_conn_id: an ``agentic_llm`` connection; None uses ``[agentic] llm_conn_id`` and, if that is unset
        too, the deterministic rule planner.
    :param budget: ``{"max_steps", "max_llm_calls", "max_tokens", "max_seconds"}`` (templated).
    :param approval_for: risk classes that need a person's approval (``read``, ``write``, ``destructive``).
    :param approval_timeout: how long an approval may wait; then ``on_approval_timeout`` applies.
    :param on_approval_timeout: ``reject`` (the step is skipped, the agent goes on) or ``fail`` (the task fails).
    :param journal_path: where durable-replay journals live (an ObjectStoragePath URL); default
        ``[agentic] journal_path`` or ``file://$AIRFLOW_HOME/agentic/journal``.
    """

    template_fields: Sequence[str] = ("goal", "allowed_tools", "llm_conn_id", "budget", "approval_for")
    template_fields_renderers = {"budget": "json"}
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        goal: str | None = None,
        allowed_tools: list[str] | None = None,
        llm_conn_id: str | None = None,
        budget: dict[str, Any] | None = None,
        approval_for: Sequence[str] = ("destructive",),
        approval_timeout: timedelta | None = None,
        on_approval_timeout: str = "reject",
        journal_path: str | None = None,
        keep_journal: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_approval_timeout not in ("reject", "fail"):
            raise ValueError("on_approval_timeout must be 'reject' or 'fail'")
        self.goal = goal
        self.allowed_tools = allowed_tools
        self.llm_conn_id = llm_conn_id
        self.budget = budget
        self.approval_for = list(approval_for)
        self.approval_timeout = approval_timeout
        self.on_approval_timeout = on_approval_timeout
        self.journal_path = journal_path
        self.keep_journal = keep_journal

    # -- what subclasses provide ---------------------------------------------------------------------------------
    def build_agent(self, context: Context) -> Agent:
        raise NotImplementedError

    def on_finish(self, context: Context, run: AgentRun) -> Any:
        """Return value of the task (goes to XCom as `return_value`)."""
        return run.result

    # -- Airflow entry points ------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        return self._run(context, answers={})

    def resume_after_approval(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_agentic.agents import ApprovalAnswer

        event = event or {}
        step = int(kwargs.get("step") or (event.get("params_input") or {}).get("step") or self._pending_step(context))
        if "error" in event:
            if self.on_approval_timeout == "fail" or event.get("error_type") != "timeout":
                raise AirflowFailException(f"approval of step {step} failed: {event.get('error')}")
            answer = ApprovalAnswer(approved=False, timed_out=True, comment=str(event.get("error")))
        else:
            user = event.get("responded_by_user") or {}
            chosen = list(event.get("chosen_options") or [])
            answer = ApprovalAnswer(
                approved=chosen == ["Approve"],
                by=(user.get("name") or user.get("id")) if isinstance(user, dict) else str(user),
                at=str(event.get("responded_at") or ""),
                timed_out=bool(event.get("timedout")),
                comment=((event.get("params_input") or {}).get("comment") or None),
            )
            if answer.timed_out and self.on_approval_timeout == "fail":
                raise AirflowFailException(f"approval of step {step} timed out")
        self.log.info("Step %s %s by %s", step, "approved" if answer.approved else "rejected", answer.by)
        return self._run(context, answers={step: answer})

    # -- internals -----------------------------------------------------------------------------------------------
    def _pending_step(self, context: Context) -> int:
        journal = self._journal(context)
        waiting = [int(k) for k, v in journal.entries.items() if v.get("decision") and "approval" not in v]
        if not waiting:
            raise RuntimeError("resumed after an approval, but the journal holds no step waiting for one")
        return max(waiting)

    def _planner(self):
        conn_id = self.llm_conn_id
        if conn_id is None:
            from airflow.configuration import conf

            conn_id = conf.get("agentic", "llm_conn_id", fallback=None) or None
        if not conn_id:
            return None  # the loop uses the agent's rule planner
        from airflow_agentic.hooks.llm import AgenticLLMHook

        return AgenticLLMHook(conn_id).planner()

    def _journal(self, context: Context):
        from airflow_agentic.agents import Journal

        base = self.journal_path
        if not base:
            from airflow.configuration import AIRFLOW_HOME, conf

            base = conf.get("agentic", "journal_path", fallback=None) or f"file://{AIRFLOW_HOME}/agentic/journal"
        from airflow.sdk import ObjectStoragePath

        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        suffix = f"_{map_index}" if map_index is not None and map_index >= 0 else ""
        path = ObjectStoragePath(base) / _safe(ti.dag_id) / _safe(ti.run_id) / f"{_safe(ti.task_id)}{suffix}.json"
        return Journal(path)

    def _ask_for_approval(self, context: Context, request: ApprovalRequest) -> None:
        from airflow.sdk.exceptions import TaskAwaitingInput
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        from airflow_agentic.agents.approval import APPROVE, REJECT

        upsert_hitl_detail(
            ti_id=context["task_instance"].id,
            options=[APPROVE, REJECT],
            subject=request.subject[:250],
            body=request.body,
            defaults=[REJECT] if self.approval_timeout else None,
            multiple=False,
            params={},
        )
        self.log.info("Waiting for approval of step %s (%s) under Browse -> Required Actions", request.step, request.tool)
        # The task parks in `awaiting_input`: it holds no worker, no triggerer and no pool slot meanwhile.
        raise TaskAwaitingInput(method_name="resume_after_approval", kwargs={"step": request.step},
                                timeout=self.approval_timeout)

    def _run(self, context: Context, answers: dict) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_agentic.agents import AgentLoop, ApprovalPending, DeferredApprover

        agent = self.build_agent(context)
        journal = self._journal(context)
        loop = AgentLoop(
            agent,
            goal=self.goal,
            planner=self._planner(),
            allowed_tools=self.allowed_tools,
            approval_for=self.approval_for,
            approver=DeferredApprover(answers),
            budget=self.budget,
            journal=journal,
            logger=self.log,
        )
        try:
            run = loop.run()
        except ApprovalPending as pending:
            self._ask_for_approval(context, pending.request)
            raise  # unreachable: the line above parks the task
        context["ti"].xcom_push(key=TRACE_XCOM_KEY, value=run.to_dict())
        self.log.info(
            "%s agent %s after %d steps (planner %s, LLM calls %s, tokens %s)%s",
            run.agent, run.status, len(run.steps), run.planner.get("final", {}).get("kind"), run.usage.get("llm_calls"),
            run.usage.get("tokens"), f"; rule planner took over: {run.fallback_reason}" if run.fallback_reason else "",
        )
        if not self.keep_journal:
            journal.clear()  # a deliberate re-run (clear) starts afresh; retries before this point replay
        if run.status == "failed":
            raise AirflowFailException(f"{run.agent} agent stopped the pipeline: {run.result.get('stop_reason')}")
        return self.on_finish(context, run)
