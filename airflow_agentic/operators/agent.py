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

from airflow_agentic.links.agentic_ui import DecisionTraceLink

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Context

    from airflow_agentic.agents import Agent, AgentRun, ApprovalAnswer, ApprovalRequest

TRACE_XCOM_KEY = "agent_run"
# `agentic_event` kinds sent to the approval notifier
APPROVAL_REQUESTED, APPROVAL_REJECTED, APPROVAL_TIMED_OUT = "approval_requested", "approval_rejected", "approval_timed_out"
APPROVAL_RETRY_DELAY = timedelta(seconds=10)


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
    :param journal_path: keep the durable-replay journal in files under this ObjectStoragePath URL (also
        ``[agentic] journal_path``). Default: Airflow's task state store (``context["task_state_store"]``, 3.3+),
        scoped to the task instance, kept across its retries, under ``[state_store]`` retention and visible in
        Airflow's REST API; ``file://$AIRFLOW_HOME/agentic/journal`` where there is none.
    :param keep_journal: replay a finished run even after the task is cleared (default: a clear starts afresh).
    :param approval_notifier: who hears of an approval: a notifier (e.g. ``WebhookNotifier``), a list of them, or the
        id of an ``http`` connection for a ``WebhookNotifier``; None uses ``[agentic] approval_notifier`` (a
        connection id). It is told when a step waits (who asks, what, why, the Required Actions link) and when a
        step is rejected or its approval times out. Airflow itself does not notify on pending actions.

    An operator that may ask for approval retries once after 10 s unless the DAG sets ``retries`` itself (argument
    or ``default_args``): Airflow 3.3 can fail a task resumed by an answer that arrives before the scheduler has
    seen the parked attempt's worker exit (see ``_approval_retry_defaults``). The retry replays the journal and
    reads the answer already given (``ApprovalAnswerTrigger``), so nobody is asked twice and no step runs twice.
    The journal of a finished run is kept (marked finished) for the same reason: a retry of an attempt that
    finished the agent but died before Airflow recorded it replays; a deliberate re-run (clear) starts afresh.
    """

    template_fields: Sequence[str] = ("goal", "allowed_tools", "llm_conn_id", "budget", "approval_for")
    template_fields_renderers = {"budget": "json"}
    operator_extra_links = (DecisionTraceLink(),)  # subclasses add theirs to these
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
        approval_notifier: BaseNotifier | Sequence[BaseNotifier] | str | None = None,
        **kwargs: Any,
    ) -> None:
        if approval_for:
            _approval_retry_defaults(kwargs)
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
        self.approval_notifier = approval_notifier

    # -- what subclasses provide ---------------------------------------------------------------------------------
    def build_agent(self, context: Context) -> Agent:
        raise NotImplementedError

    def on_finish(self, context: Context, run: AgentRun) -> Any:
        """Return value of the task (goes to XCom as `return_value`)."""
        return run.result

    # -- Airflow entry points ------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self._start_afresh_if_cleared(context)
        return self._run(context, answers={})

    def resume_after_approval(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        from airflow_agentic.triggers.approval import ASK_AGAIN

        event = event or {}
        step = int(kwargs.get("step") or (event.get("params_input") or {}).get("step") or self._pending_step(context))
        if event.get("error_type") == ASK_AGAIN:
            self.log.info("Step %s: no earlier answer to read (%s): asking again", step, event.get("error"))
            return self._run(context, answers={}, ask_afresh=step)
        try:
            answer = self._answer_from_event(step, event)
        except Exception as exc:  # the task fails here: whoever waits for the step must hear it
            timed_out = event.get("error_type") == "timeout" or bool(event.get("timedout"))
            self._notify_approval(context, APPROVAL_TIMED_OUT if timed_out else APPROVAL_REJECTED, step,
                                  outcome=f"the task fails: {exc}")
            raise
        # Written before anything else: should Airflow drop this attempt, the retry replays the answer.
        self._journal(context).record(step, approval=answer.to_dict())
        self.log.info("Step %s %s by %s", step, "approved" if answer.approved else "rejected", answer.by)
        if not answer.approved:
            self._notify_approval(context, APPROVAL_TIMED_OUT if answer.timed_out else APPROVAL_REJECTED, step,
                                  answer=answer, outcome="the step is skipped and the agent goes on without it")
        return self._run(context, answers={step: answer})

    # -- internals -----------------------------------------------------------------------------------------------
    def _answer_from_event(self, step: int, event: dict[str, Any]) -> ApprovalAnswer:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_agentic.agents import ApprovalAnswer
        from airflow_agentic.agents.approval import APPROVE

        if "error" in event:
            if self.on_approval_timeout == "fail" or event.get("error_type") != "timeout":
                raise AirflowFailException(f"approval of step {step} failed: {event.get('error')}")
            return ApprovalAnswer(approved=False, timed_out=True, comment=str(event.get("error")))
        user = event.get("responded_by_user") or {}
        chosen = list(event.get("chosen_options") or [])
        answer = ApprovalAnswer(
            approved=chosen == [APPROVE],
            by=(user.get("name") or user.get("id")) if isinstance(user, dict) else str(user),
            at=str(event.get("responded_at") or ""),
            timed_out=bool(event.get("timedout")),
            comment=((event.get("params_input") or {}).get("comment") or None),
        )
        if answer.timed_out and self.on_approval_timeout == "fail":
            raise AirflowFailException(f"approval of step {step} timed out")
        return answer

    def _start_afresh_if_cleared(self, context: Context) -> None:
        """A finished journal means an earlier attempt ran this agent to its end. Same `max_tries`: that attempt
        died before Airflow recorded it (a retry), so replay it. Changed: somebody cleared the task to run it again."""
        journal = self._journal(context)
        if journal.finished is None or self.keep_journal:
            return
        max_tries = _max_tries(context)
        if max_tries is not None and journal.finished.get("max_tries") == max_tries:
            self.log.info("This agent run finished in try %s, which Airflow did not record: replaying it (no step "
                          "with side effects runs again)", journal.finished.get("try_number"))
            return
        journal.clear()

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
        """Airflow's task state store (scoped to this task instance, kept across its retries, under Airflow's
        retention) unless a journal path is given here or in ``[agentic] journal_path``; a file journal under
        ``$AIRFLOW_HOME/agentic/journal`` where there is no state store (Airflow < 3.3)."""
        from airflow_agentic.agents import Journal
        from airflow_agentic.config import local_dir, option

        base = self.journal_path or option("journal_path")
        if not base:
            store = context.get("task_state_store")
            if store is not None:
                return Journal(store=store)
            base = f"file://{local_dir() / 'journal'}"
        from airflow.sdk import ObjectStoragePath

        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        suffix = f"_{map_index}" if map_index is not None and map_index >= 0 else ""
        path = ObjectStoragePath(base) / _safe(ti.dag_id) / _safe(ti.run_id) / f"{_safe(ti.task_id)}{suffix}.json"
        return Journal(path)

    def _ask_for_approval(self, context: Context, request: ApprovalRequest, journal: Any,
                          ask_afresh: int | None = None) -> None:
        from airflow.sdk.exceptions import TaskAwaitingInput
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        from airflow_agentic.agents.approval import APPROVE, REJECT
        from airflow_agentic.agents.trace import now_iso

        asked = journal.get(request.step).get("approval_requested")
        max_tries = _max_tries(context)
        # Same `max_tries`: a retry of the attempt that asked (a clear raises it, and then we ask afresh).
        if asked and ask_afresh != request.step and max_tries is not None and asked.get("max_tries") == max_tries:
            self._read_earlier_answer(context, request, asked)  # defers
        upsert_hitl_detail(
            ti_id=context["task_instance"].id,
            options=[APPROVE, REJECT],
            subject=request.subject[:250],
            body=request.body,
            defaults=[REJECT] if self.approval_timeout else None,
            multiple=False,
            params={},
        )
        journal.record(request.step, approval_requested={
            "at": now_iso(), "try_number": getattr(context["ti"], "try_number", None),
            "max_tries": max_tries})
        self.log.info("Waiting for approval of step %s (%s) under Browse -> Required Actions", request.step, request.tool)
        self._notify_approval(context, APPROVAL_REQUESTED, request.step, request=request)
        # The task parks in `awaiting_input`: it holds no worker, no triggerer and no pool slot meanwhile.
        raise TaskAwaitingInput(method_name="resume_after_approval", kwargs={"step": request.step},
                                timeout=self.approval_timeout)

    # -- telling a person --------------------------------------------------------------------------------------------
    def _approval_notifiers(self) -> list[Any]:
        notifier = self.approval_notifier
        if notifier is None:
            from airflow_agentic.config import option

            notifier = option("approval_notifier")
        if not notifier:
            return []
        if isinstance(notifier, str):
            from airflow_agentic.notifications.webhook import WebhookNotifier

            return [WebhookNotifier(conn_id=notifier)]
        return list(notifier) if isinstance(notifier, (list, tuple)) else [notifier]

    def _notify_approval(self, context: Context, kind: str, step: int, *, request: ApprovalRequest | None = None,
                         answer: ApprovalAnswer | None = None, outcome: str = "") -> None:
        """Send ``context["agentic_event"] = {"kind", "payload"}`` to each approval notifier. A notifier that fails
        is logged and the approval goes on: the request is in Airflow's Required Actions either way."""
        notifiers = self._approval_notifiers()
        if not notifiers:
            return
        event = approval_event(context, kind, step, request=request or self._request_from_journal(context, step),
                               answer=answer, outcome=outcome, timeout=self.approval_timeout,
                               on_timeout=self.on_approval_timeout)
        for notifier in notifiers:
            try:
                # A copy: a notifier merges its template fields into the context it gets.
                notifier(dict(context, agentic_event=event))
            except Exception as exc:  # noqa: BLE001
                self.log.warning("Approval notifier %s failed: %s", type(notifier).__name__, exc)

    def _request_from_journal(self, context: Context, step: int) -> dict[str, Any]:
        decision = self._journal(context).get(step).get("decision") or {}
        return {"step": step, "tool": decision.get("tool"), "arguments": decision.get("arguments"),
                "rationale": decision.get("rationale")}

    def _read_earlier_answer(self, context: Context, request: ApprovalRequest, asked: dict[str, Any]) -> None:
        """An earlier attempt of this task asked exactly this and its answer never reached the journal (Airflow
        dropped the resumed attempt). Asking again would erase that answer from the task's HITL detail, and the task
        cannot read it: the triggerer can."""
        from datetime import datetime

        from airflow_agentic.agents.approval import APPROVE, REJECT
        from airflow_agentic.triggers.approval import ApprovalAnswerTrigger

        timeout_at = None
        if self.approval_timeout and asked.get("at"):
            timeout_at = datetime.fromisoformat(asked["at"]) + self.approval_timeout
        self.log.info("Step %s (%s) asked for approval in try %s: reading that answer, or waiting for it, instead "
                      "of asking again", request.step, request.tool, asked.get("try_number"))
        self.defer(trigger=ApprovalAnswerTrigger(ti_id=context["task_instance"].id, options=[APPROVE, REJECT],
                                                 defaults=[REJECT] if self.approval_timeout else None,
                                                 timeout_datetime=timeout_at),
                   method_name="resume_after_approval", kwargs={"step": request.step})

    def _run(self, context: Context, answers: dict, ask_afresh: int | None = None) -> Any:
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
            self._ask_for_approval(context, pending.request, journal, ask_afresh)
            raise  # unreachable: the line above parks the task
        context["ti"].xcom_push(key=TRACE_XCOM_KEY, value=run.to_dict())
        self.log.info(
            "%s agent %s after %d steps (planner %s, LLM calls %s, tokens %s)%s",
            run.agent, run.status, len(run.steps), run.planner.get("final", {}).get("kind"), run.usage.get("llm_calls"),
            run.usage.get("tokens"), f"; rule planner took over: {run.fallback_reason}" if run.fallback_reason else "",
        )
        journal.mark_finished(try_number=getattr(context["ti"], "try_number", None), max_tries=_max_tries(context),
                              status=run.status)
        if run.status == "failed":
            raise AirflowFailException(f"{run.agent} agent stopped the pipeline: {run.result.get('stop_reason')}")
        return self.on_finish(context, run)


def required_actions_url(ti: Any) -> str:
    """The task's Required Actions page in Airflow's UI (the path the standard provider's HITLOperator links to),
    under ``[api] base_url``, else the API server's host and port."""
    from urllib.parse import quote, urlencode

    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback=None)
    if not base:
        host = conf.get("api", "host", fallback="localhost")
        base = f"http://{'localhost' if host in ('', '0.0.0.0', '::') else host}:{conf.get('api', 'port', fallback='8080')}"
    path = "/".join(("dags", quote(ti.dag_id, safe=""), "runs", quote(ti.run_id, safe=""), "tasks",
                     quote(ti.task_id, safe=""), "required_actions"))
    map_index = getattr(ti, "map_index", -1)
    return f"{base.rstrip('/')}/{path}?{urlencode({'map_index': -1 if map_index is None else map_index})}"


def approval_event(context: Context, kind: str, step: int, *, request: ApprovalRequest | dict[str, Any],
                   answer: ApprovalAnswer | None = None, outcome: str = "", timeout: timedelta | None = None,
                   on_timeout: str = "reject") -> dict[str, Any]:
    """What a person needs to act: who asks (agent, DAG, task, run), what (step, tool, risk, arguments), why (the
    planner's rationale and the goal), where to answer (the Required Actions link), or how it ended."""
    import json

    req = request.to_dict() if hasattr(request, "to_dict") else dict(request)
    ti = context["ti"]
    url = required_actions_url(ti)
    agent = req.get("agent") or ti.task_id
    what = f"step {step}: {req.get('tool')}" + (f" (risk: {req['risk']})" if req.get("risk") else "")
    args = json.dumps(req.get("arguments") or {}, default=str, sort_keys=True)
    args = args if len(args) <= 400 else args[:400] + "…"
    if kind == APPROVAL_REQUESTED:
        deadline = (f" Unanswered after {timeout}, the step is "
                    f"{'rejected' if on_timeout == 'reject' else 'failed'}." if timeout else "")
        message = (f"{agent} asks for approval of {what} {args}. Why: {req.get('rationale') or '(no rationale given)'}."
                   f" Goal: {req.get('goal') or '-'}.{deadline} Approve or reject: {url}")
    elif kind == APPROVAL_REJECTED:
        by = f" by {answer.by}" if answer and answer.by else ""
        comment = f" ({answer.comment})" if answer and answer.comment else ""
        message = f"{agent}: {what} was rejected{by}{comment}; {outcome}. {url}"
    else:
        message = f"{agent}: nobody approved {what} in time; {outcome}. {url}"
    payload: dict[str, Any] = {
        "message": message, "agent": agent, "step": step, "tool": req.get("tool"), "risk": req.get("risk"),
        "arguments": args, "rationale": req.get("rationale"), "goal": req.get("goal"), "url": url,
        "dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": getattr(ti, "map_index", -1),
        "try_number": getattr(ti, "try_number", None)}
    if answer is not None:
        payload["answer"] = answer.to_dict()
    return {"kind": kind, "payload": {k: v for k, v in payload.items() if v is not None}}


def _max_tries(context: Context) -> int | None:
    return getattr(context["ti"], "max_tries", None)


def _approval_retry_defaults(kwargs: dict[str, Any]) -> None:
    """One retry after 10 s for operators that may park for an approval, unless the DAG chose retries itself.

    Airflow 3.3's scheduler keys executor events by try number. When an answer resumes the parked task before the
    scheduler has read the parked worker's exit, that stale "success" arrives while the resumed attempt is queued
    or running, the executor no longer lists the key, and the scheduler fails the task as killed externally
    ("finished with state success, but the task instance's state attribute is running"). Humans rarely answer
    within those one or two seconds; scripts and tests do. Only a retry gets the task past that failure.
    """
    default_args = kwargs.get("default_args") or {}
    if "retries" in kwargs or "retries" in default_args:
        return
    kwargs["retries"] = 1
    if "retry_delay" not in kwargs and "retry_delay" not in default_args:
        kwargs["retry_delay"] = APPROVAL_RETRY_DELAY
