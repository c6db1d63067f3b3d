"""What a planner answers, what it is asked, and what the loop remembers: the types every agent shares."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FINISH = "finish"


@dataclass
class Decision:
    """A planner's choice: call `tool` with `arguments`, or `finish` (tool == FINISH)."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""
    planner: str = "rule"
    model: str | None = None
    prompt_hash: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    latency_ms: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def is_finish(self) -> bool:
        return self.tool == FINISH

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def finish(rationale: str = "", **kw: Any) -> Decision:
    return Decision(tool=FINISH, arguments={}, rationale=rationale, **kw)


@dataclass
class PlanningContext:
    """Everything a planner may look at: goal, a bounded observation, the allowed tools and the steps so far."""

    agent: str
    goal: str
    observation: dict[str, Any]
    tools: list[dict[str, Any]]  # OpenAI-style specs of the allowed tools only
    history: list[dict[str, Any]]  # compact records of earlier steps (tool, arguments, verdict, result)

    @property
    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.tools]

    def last(self, tool: str | None = None) -> dict[str, Any] | None:
        for h in reversed(self.history):
            if tool is None or h.get("tool") == tool:
                return h
        return None

    def done(self, tool: str) -> bool:
        """True when `tool` already ran successfully in this loop."""
        return any(h.get("tool") == tool and h.get("status") == "ok" for h in self.history)


def bound(value: Any, *, max_chars: int = 6000, max_items: int = 50, max_str: int = 300, depth: int = 6) -> Any:
    """Shrink an observation so that a prompt stays small whatever the data: long lists, strings and depth are cut."""

    def cut(v: Any, d: int) -> Any:
        if d <= 0:
            return "…"
        if isinstance(v, dict):
            items = list(v.items())
            out = {str(k)[:max_str]: cut(x, d - 1) for k, x in items[:max_items]}
            if len(items) > max_items:
                out["…"] = f"{len(items) - max_items} more keys"
            return out
        if isinstance(v, (list, tuple)):
            out = [cut(x, d - 1) for x in v[:max_items]]
            if len(v) > max_items:
                out.append(f"… {len(v) - max_items} more items")
            return out
        if isinstance(v, str):
            return v if len(v) <= max_str else v[:max_str] + f"… ({len(v)} chars)"
        if isinstance(v, float):
            return round(v, 6)
        if v is None or isinstance(v, (bool, int)):
            return v
        return cut(str(v), d)

    result = cut(value, depth)
    # A second, harder cut when many medium-sized fields still add up to too much.
    while len(json.dumps(result, default=str)) > max_chars and max_items > 2:
        max_items //= 2
        max_str = max(40, max_str // 2)
        result = cut(value, depth)
    return result
