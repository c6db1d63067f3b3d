"""Budgets per task. The LLM budgets (calls, tokens, wall time) hand over to the rule planner when spent."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Budget:
    max_steps: int = 20
    max_llm_calls: int = 20
    max_tokens: int = 100_000
    max_seconds: float = 600.0

    @classmethod
    def from_value(cls, value: Budget | dict[str, Any] | None) -> Budget:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        unknown = set(value) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown budget keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in value.items()})

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
