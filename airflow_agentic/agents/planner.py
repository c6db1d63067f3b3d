"""Planners choose the next tool action. The rule planner is deterministic and works offline."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from airflow_agentic.agents.decision import Decision, PlanningContext


class PlannerError(RuntimeError):
    """The planner could not produce a usable decision (garbage output, budget spent, endpoint down)."""


class Planner(ABC):
    kind: str = "planner"

    @abstractmethod
    def plan(self, ctx: PlanningContext) -> Decision: ...

    def describe(self) -> dict:
        return {"kind": self.kind}


RulePolicy = Callable[[PlanningContext], Decision]


class RulePlanner(Planner):
    """Wraps an agent's deterministic policy. It is the default without an LLM connection, and the fallback."""

    kind = "rule"

    def __init__(self, policy: RulePolicy, name: str = "rule"):
        self.policy = policy
        self.name = name

    def plan(self, ctx: PlanningContext) -> Decision:
        decision = self.policy(ctx)
        decision.planner = self.kind
        return decision
