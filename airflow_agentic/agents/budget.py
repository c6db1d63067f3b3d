"""Budgets per task. The LLM budgets (calls, tokens, wall time) hand over to the rule planner when spent."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any


def _number(key: str, raw: Any, kind: type) -> int | float:
    """A budget value as int or float; templated values arrive as strings. 2.5 steps is an error, not 2."""
    try:
        number = float(raw.strip()) if isinstance(raw, str) else raw
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise TypeError
        if kind is int:
            if not float(number).is_integer():
                raise ValueError
            return int(number)
        return float(number)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"budget {key} must be {'a whole number' if kind is int else 'a number'}, got {raw!r}") \
            from None


@dataclass
class Budget:
    max_steps: int = 20
    max_llm_calls: int = 20
    max_tokens: int = 100_000
    max_seconds: float = 600.0

    def __post_init__(self) -> None:
        minimum = {"max_steps": 1, "max_llm_calls": 0, "max_tokens": 0}
        for name, low in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"budget {name} must be an integer >= {low}, got {value!r}")
        if isinstance(self.max_seconds, bool) or not isinstance(self.max_seconds, (int, float)) or not (
                0 < self.max_seconds < math.inf):
            raise ValueError(f"budget max_seconds must be a positive number of seconds, got {self.max_seconds!r}")

    @classmethod
    def from_value(cls, value: Budget | dict[str, Any] | None) -> Budget:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"a budget is a dict like {{'max_steps': 20, 'max_seconds': 600}}, got {value!r}")
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown budget keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**{key: _number(key, raw, type(getattr(cls(), key))) for key, raw in value.items()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Usage:
    steps: int = 0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    replayed_steps: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def llm_budget_spent(self, budget: Budget) -> str | None:
        if self.llm_calls >= budget.max_llm_calls:
            return f"LLM call budget spent ({self.llm_calls}/{budget.max_llm_calls})"
        if self.tokens >= budget.max_tokens:
            return f"token budget spent ({self.tokens}/{budget.max_tokens})"
        if time.monotonic() - self.started >= budget.max_seconds:
            return f"wall-time budget spent ({budget.max_seconds:.0f} s)"
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("started")
        d["tokens"] = self.tokens
        d["seconds"] = round(time.monotonic() - self.started, 3)
        return d
