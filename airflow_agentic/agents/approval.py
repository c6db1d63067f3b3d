"""Human approval of risky steps. The loop asks an Approver; in Airflow the answer comes from the HITL UI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from airflow_agentic.agents.trace import now_iso

APPROVE, REJECT = "Approve", "Reject"


@dataclass
class ApprovalRequest:
    step: int
    agent: str
    tool: str
    arguments: dict[str, Any]
    risk: str
    rationale: str
    goal: str

    @property
    def subject(self) -> str:
        return f"{self.agent}: approve {self.tool} (risk: {self.risk})?"

    @property
    def body(self) -> str:
        import json

        return (
            f"**Goal:** {self.goal}\n\n**Step {self.step}:** `{self.tool}`\n\n"
            f"**Arguments:**\n```json\n{json.dumps(self.arguments, indent=2, default=str)}\n```\n\n"
            f"**Why:** {self.rationale or '(no rationale given)'}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ApprovalAnswer:
    approved: bool
    by: str | None = None
    at: str = field(default_factory=now_iso)
    timed_out: bool = False
    comment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ApprovalAnswer:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class ApprovalPending(Exception):
    """Raised by an approver that must wait for a person: the loop stops here and resumes later (durably)."""

    def __init__(self, request: ApprovalRequest):
        super().__init__(request.subject)
        self.request = request


class Approver(Protocol):
    def __call__(self, request: ApprovalRequest) -> ApprovalAnswer: ...


def auto_approve(request: ApprovalRequest) -> ApprovalAnswer:
    """For in-process runs (backtest, demo) where the owner chose automatic approval."""
    return ApprovalAnswer(approved=True, by="auto")


def auto_reject(request: ApprovalRequest) -> ApprovalAnswer:
    return ApprovalAnswer(approved=False, by="auto", comment="approvals are not available in this context")


class DeferredApprover:
    """Answers from recorded decisions; raises ApprovalPending for a step nobody has answered yet."""

    def __init__(self, answers: dict[int, ApprovalAnswer] | None = None):
        self.answers = dict(answers or {})

    def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        if request.step in self.answers:
            return self.answers[request.step]
        raise ApprovalPending(request)
