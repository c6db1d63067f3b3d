"""The decision trace: one record per step, readable in the task log and structured in XCom and the UI."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class TraceStep:
    step: int
    agent: str
    planner: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""
    model: str | None = None
    prompt_hash: str | None = None
    verdict: str = ""  # allowed | refused | needs_approval
    verdict_reason: str = ""
    approval: dict[str, Any] | None = None  # {approved, by, at, timed_out}
    status: str = ""  # ok | error | refused | rejected | finished
    result: Any = None  # summary only, bounded
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    latency_ms: float = 0.0
    replayed: bool = False
    notes: list[str] = field(default_factory=list)
    observation: Any = None  # a short summary of what the agent saw before this decision (for people, not replay)
    at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceStep:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def compact(self) -> dict[str, Any]:
        """What the planner sees of past steps."""
        out = {"step": self.step, "tool": self.tool, "arguments": self.arguments, "status": self.status}
        if self.verdict_reason:
            out["guard"] = self.verdict_reason
        if self.error:
            out["error"] = self.error
        if self.result is not None:
            out["result"] = self.result
        if self.approval:
            out["approval"] = {k: self.approval.get(k) for k in ("approved", "timed_out", "by")}
        return out

    def line(self) -> str:
        """One readable line for the task log."""
        args = json.dumps(self.arguments, default=str, sort_keys=True)
        if len(args) > 160:
            args = args[:157] + "..."
        parts = [f"[{self.agent} step {self.step}] {self.planner}"]
        if self.model:
            parts[0] += f"({self.model})"
        parts.append(f"-> {self.tool}{args if self.arguments else ''}")
        parts.append(f"guard={self.verdict}")
        if self.approval:
            parts.append("approved" if self.approval.get("approved") else "rejected")
        parts.append(f"status={self.status}")
        if self.replayed:
            parts.append("(replayed)")
        if self.llm_calls:
            parts.append(f"llm_calls={self.llm_calls} tokens={self.prompt_tokens + self.completion_tokens}")
        text = " ".join(parts)
        if self.rationale:
            text += f" | why: {self.rationale}"
        if self.verdict_reason and self.verdict != "allowed":
            text += f" | guard: {self.verdict_reason}"
        if self.error:
            text += f" | error: {self.error}"
        return text


@dataclass
class AgentRun:
    """The outcome of one agent loop: status, steps, usage and the agent's own result."""

    agent: str
    goal: str
    status: str  # finished | step_limit | stopped | awaiting_approval
    steps: list[TraceStep]
    result: dict[str, Any] = field(default_factory=dict)
    planner: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    fallback_reason: str | None = None
    started_at: str = field(default_factory=now_iso)
    ended_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["steps"] = [s.to_dict() for s in self.steps]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AgentRun:
        d = dict(d)
        d["steps"] = [TraceStep.from_dict(s) for s in d.get("steps", [])]
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def actions(self) -> list[str]:
        """Tools that actually ran, in order."""
        return [s.tool for s in self.steps if s.status == "ok"]
