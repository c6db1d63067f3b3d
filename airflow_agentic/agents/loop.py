"""The agent loop: observe -> plan -> guard -> (approve) -> act -> record, until `finish` or the budget ends."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

from airflow_agentic.agents.approval import ApprovalAnswer, ApprovalRequest, Approver, auto_reject
from airflow_agentic.agents.budget import Budget, Usage
from airflow_agentic.agents.decision import Decision, PlanningContext, bound
from airflow_agentic.agents.guard import NEEDS_APPROVAL, REFUSED, Guard
from airflow_agentic.agents.journal import Journal
from airflow_agentic.agents.planner import Planner, PlannerError, RulePlanner
from airflow_agentic.agents.tools import Risk, Toolset
from airflow_agentic.agents.trace import AgentRun, TraceStep, bounded, now_iso, redact

log = logging.getLogger(__name__)


class AgentStop(Exception):
    """Raised by a tool to end the loop on purpose (e.g. a schema broken beyond repair). `fail` fails the task."""

    def __init__(self, reason: str, *, fail: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.fail = fail


class Agent(ABC):
    """An agent owns its state, its toolset, what it observes and its deterministic rule policy."""

    name: ClassVar[str] = "agent"
    default_goal: ClassVar[str] = ""

    @abstractmethod
    def toolset(self) -> Toolset: ...

    @abstractmethod
    def observe(self) -> dict[str, Any]: ...

    @abstractmethod
    def rule_policy(self, ctx: PlanningContext) -> Decision: ...

    def result(self) -> dict[str, Any]:
        """The agent's output once the loop ends (JSON-serialisable: it goes to XCom)."""
        return {}

    def finalize(self, status: str) -> None:
        """Called once when the loop ends, whatever the reason; keep invariants here (e.g. no undecided row)."""

    def summarise(self, tool: str, value: Any) -> Any:
        """What of a tool's return value goes into the trace and back to the planner."""
        return bound(value, max_chars=2000)


def context_hash(ctx: PlanningContext) -> str:
    """Identifies the task's set-up (agent, goal, tools). Replay is by step and ignores the observation on purpose:
    the outside world may have moved on because of the very side effects being replayed."""
    blob = json.dumps({"agent": ctx.agent, "goal": ctx.goal, "tools": ctx.tools}, default=str, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class AgentLoop:
    def __init__(
        self,
        agent: Agent,
        *,
        goal: str | None = None,
        planner: Planner | None = None,
        allowed_tools: Iterable[str] | None = None,
        approval_for: Iterable[Risk | str] = (Risk.DESTRUCTIVE,),
        approver: Approver = auto_reject,
        budget: Budget | dict | None = None,
        journal: Journal | None = None,
        max_refusals: int = 2,
        logger: logging.Logger | None = None,
    ):
        self.agent = agent
        self.goal = goal or agent.default_goal
        self.toolset = agent.toolset()
        self.allowed = self.toolset.narrow(allowed_tools)
        self.guard = Guard(self.toolset, None if allowed_tools is None else list(allowed_tools), approval_for)
        self.fallback = RulePlanner(agent.rule_policy)
        self.planner = planner or self.fallback
        self.approver = approver
        self.budget = Budget.from_value(budget)
        self.journal = journal or Journal()
        self.max_refusals = max_refusals
        self.log = logger or log

    def _switch_to_rules(self, run: AgentRun, reason: str) -> None:
        if self.planner is not self.fallback:
            self.log.warning("[%s] rule planner takes over: %s", self.agent.name, reason)
            run.fallback_reason = reason
            self.planner = self.fallback

    def run(self) -> AgentRun:
        """Run to the end. Raises ApprovalPending when a step waits for a person (everything so far is journaled)."""
        usage = Usage()
        run = AgentRun(agent=self.agent.name, goal=self.goal, status="step_limit", steps=[], planner=self.planner.describe())
        refusals = 0
        replaying = True
        try:
            for step in range(1, self.budget.max_steps + 1):
                usage.steps = step
                ctx = PlanningContext(
                    agent=self.agent.name,
                    goal=self.goal,
                    observation=bound(self.agent.observe()),
                    tools=self.allowed.specs(),
                    history=[s.compact() for s in run.steps],
                )
                chash = context_hash(ctx)
                entry = self.journal.get(step) if replaying else {}
                if entry and entry.get("context_hash") != chash:
                    # The task was changed (goal, tools) since the recorded attempt: plan afresh from here on.
                    replaying, entry = False, {}
                    self.log.warning("[%s] step %d: goal or tools differ from the journal, re-planning", self.agent.name, step)
                replayed = bool(entry.get("decision"))
                if replayed:
                    decision = Decision.from_dict(entry["decision"])
                    usage.replayed_steps += 1
                else:
                    replaying = False
                    decision = self._plan(run, ctx, usage)
                    self.journal.record(step, context_hash=chash, decision=decision.to_dict())
                trace = TraceStep(
                    step=step, agent=self.agent.name, planner=decision.planner, tool=decision.tool,
                    arguments=decision.arguments, rationale=decision.rationale, model=decision.model,
                    prompt_hash=decision.prompt_hash, prompt_tokens=decision.prompt_tokens,
                    completion_tokens=decision.completion_tokens, llm_calls=0 if replayed else decision.llm_calls,
                    latency_ms=decision.latency_ms, replayed=replayed, notes=list(decision.notes),
                    observation=bound(ctx.observation, max_chars=600, max_items=12, max_str=80, depth=3),
                )
                if decision.is_finish:
                    trace.verdict, trace.status = "allowed", "finished"
                    self._record(run, trace)
                    run.status = "finished"
                    break
                verdict = self.guard.check(decision)
                trace.verdict, trace.verdict_reason = verdict.verdict, verdict.reason
                if verdict.verdict == REFUSED:
                    trace.status = "refused"
                    self._record(run, trace)
                    refusals += 1
                    if self.planner is self.fallback:
                        raise AgentStop(f"rule policy chose a refused action: {verdict.reason}")
                    if refusals >= self.max_refusals:
                        self._switch_to_rules(run, f"{refusals} refused decisions in a row: {verdict.reason}")
                    continue
                refusals = 0
                tool = self.toolset.get(decision.tool)
                assert tool is not None
                if verdict.verdict == NEEDS_APPROVAL:
                    answer = self._approval(step, entry, verdict.risk or tool.risk.value, decision, verdict.arguments)
                    trace.approval = answer.to_dict()
                    if not answer.approved:
                        trace.status = "rejected"
                        self._record(run, trace)
                        continue
                try:
                    self._act(step, entry, tool, verdict.arguments, trace)
                finally:
                    self._record(run, trace)  # a stopping step is traced too
        except AgentStop as stop:
            run.status = "failed" if stop.fail else "stopped"
            run.result = {"stop_reason": redact(stop.reason)}
        finally:
            run.usage = usage.to_dict()
            run.planner = {**run.planner, "final": self.planner.describe()}
        self.agent.finalize(run.status)
        run.result = {**self.agent.result(), **run.result}
        run.ended_at = now_iso()
        return run

    def _plan(self, run: AgentRun, ctx: PlanningContext, usage: Usage) -> Decision:
        if self.planner is not self.fallback:
            spent = usage.llm_budget_spent(self.budget)
            if spent:
                self._switch_to_rules(run, spent)
        if hasattr(self.planner, "deadline"):
            # the wall-time budget bounds the LLM call itself, not only the gap between steps
            self.planner.deadline = usage.started + self.budget.max_seconds
        try:
            decision = self.planner.plan(ctx)
        except PlannerError as exc:
            if self.planner is self.fallback:
                raise
            self._switch_to_rules(run, str(exc))
            decision = self.fallback.plan(ctx)
            decision.notes.append(f"fallback: {exc}")
        usage.llm_calls += decision.llm_calls
        usage.prompt_tokens += decision.prompt_tokens
        usage.completion_tokens += decision.completion_tokens
        return decision

    def _approval(self, step: int, entry: dict, risk: str, decision: Decision, args: dict) -> ApprovalAnswer:
        if entry.get("approval"):
            return ApprovalAnswer.from_dict(entry["approval"])
        request = ApprovalRequest(step=step, agent=self.agent.name, tool=decision.tool, arguments=args, risk=risk,
                                  rationale=decision.rationale, goal=self.goal)
        answer = self.approver(request)  # may raise ApprovalPending: the step is journaled, the resume replays it
        self.journal.record(step, approval=answer.to_dict())
        return answer

    def _act(self, step: int, entry: dict, tool, args: dict, trace: TraceStep) -> None:
        if tool.side_effects and "result" in entry:
            # Done before a retry or a deferral: never repeat a side effect.
            trace.result, trace.error = entry["result"], entry.get("error")
            trace.status = "error" if trace.error else "ok"
            trace.replayed = True
            return
        started = time.monotonic()
        try:
            value = tool.fn(**args)
        except AgentStop as stop:
            trace.status, trace.error = "stopped", redact(stop.reason)
            self.journal.record(step, result=None, error=trace.error)
            trace.latency_ms += round((time.monotonic() - started) * 1000, 1)
            raise
        except Exception as exc:  # noqa: BLE001 - a failing tool is reported to the planner, not fatal
            trace.status, trace.error = "error", redact(f"{type(exc).__name__}: {exc}")[:1000]
            self.journal.record(step, result=None, error=trace.error)
        else:
            trace.status, trace.result = "ok", bounded(self.agent.summarise(tool.name, value))
            self.journal.record(step, result=trace.result)
        trace.latency_ms += round((time.monotonic() - started) * 1000, 1)

    def _record(self, run: AgentRun, trace: TraceStep) -> None:
        run.steps.append(trace)
        self.log.info("%s", trace.line())
