"""Guardrails: nothing runs unless the tool exists, is allowed for this task and gets valid arguments."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_agentic.agents.decision import Decision
from airflow_agentic.agents.tools import Risk, ToolArgumentsError, Toolset

ALLOWED, REFUSED, NEEDS_APPROVAL = "allowed", "refused", "needs_approval"


@dataclass
class GuardVerdict:
    verdict: str
    reason: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)  # validated, defaults filled in
    risk: str | None = None  # the risk class that needs approval (NEEDS_APPROVAL only)

    @property
    def allowed(self) -> bool:
        return self.verdict != REFUSED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Guard:
    """`toolset` is the agent's whole toolset; `allowed` the task's allow-list (None: all)."""

    toolset: Toolset
    allowed: Iterable[str] | None = None
    approval_for: Iterable[Risk | str] = (Risk.DESTRUCTIVE,)

    def __post_init__(self) -> None:
        self.allowed = None if self.allowed is None else set(self.allowed)
        self.approval_for = {Risk(r) for r in self.approval_for}

    def check(self, decision: Decision) -> GuardVerdict:
        tool = self.toolset.get(decision.tool)
        if tool is None:
            return GuardVerdict(REFUSED, f"unknown tool {decision.tool!r}; tools: {sorted(self.allowed or self.toolset.names())}")
        if self.allowed is not None and tool.name not in self.allowed:
            return GuardVerdict(REFUSED, f"tool {tool.name!r} is not allowed for this task; allowed: {sorted(self.allowed)}")
        try:
            args = tool.validate(decision.arguments).model_dump(mode="json")
        except ToolArgumentsError as exc:
            return GuardVerdict(REFUSED, str(exc))
        # A tool may rate a call above its usual class from the arguments and state (e.g. a rename exchanging
        # columns): `risk_for(args) -> (Risk, why)`.
        risk, why = tool.risk_for(args) if hasattr(tool, "risk_for") else (tool.risk, "")
        if risk in self.approval_for:
            reason = f"risk class {risk.value!r} needs human approval" + (f": {why}" if why else "")
            return GuardVerdict(NEEDS_APPROVAL, reason, args, risk=risk.value)
        return GuardVerdict(ALLOWED, "", args)
