"""Tools: what an agent can do. A tool is a typed function with a risk class; the planner only ever names one."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model


class Risk(str, Enum):
    """How much harm a wrong call can do. Guardrails decide per risk class whether a human must approve."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


class ToolArgumentsError(ValueError):
    """Arguments that do not fit the tool's schema."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[..., Any]
    risk: Risk = Risk.READ
    # A tool with side effects outside the process (registry, alert, files) is never repeated on replay:
    # its recorded result is reused. Pure in-memory tools are re-run so that the agent's state is rebuilt.
    side_effects: bool = False

    @property
    def json_schema(self) -> dict[str, Any]:
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        return schema

    def validate(self, arguments: Any) -> BaseModel:
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolArgumentsError(f"arguments of {self.name!r} must be a JSON object, got {type(arguments).__name__}")
        try:
            return self.args_model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
            raise ToolArgumentsError(f"invalid arguments for {self.name!r}: {problems}") from None

    def __call__(self, arguments: dict[str, Any] | None = None) -> Any:
        args = self.validate(arguments or {})
        return self.fn(**args.model_dump())

    def spec(self) -> dict[str, Any]:
        """OpenAI-style function description."""
        return {"name": self.name, "description": self.description, "parameters": self.json_schema}


def _args_model_from_signature(name: str, fn: Callable[..., Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    hints = inspect.get_annotations(fn, eval_str=True)
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or pname == "self":
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Args"
    # extra="forbid": an LLM that invents an argument is told so instead of having it silently dropped.
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    risk: Risk | str = Risk.READ,
    side_effects: bool = False,
    description: str | None = None,
) -> Any:
    """Turn a typed function into a Tool; the argument schema comes from its signature."""

    def wrap(f: Callable[..., Any]) -> Tool:
        tool_name = name or f.__name__
        doc = description or inspect.cleandoc(f.__doc__ or tool_name).split("\n\n")[0]
        return Tool(
            name=tool_name,
            description=doc,
            args_model=_args_model_from_signature(tool_name, f),
            fn=f,
            risk=Risk(risk),
            side_effects=side_effects,
        )

    return wrap(fn) if fn is not None else wrap


@dataclass
class Toolset:
    """The tools an agent owns. A task narrows it with an allow-list; the planner never sees the rest."""

    tools: dict[str, Tool] = field(default_factory=dict)

    @classmethod
    def of(cls, tools: Iterable[Tool]) -> Toolset:
        ts = cls()
        for t in tools:
            if t.name in ts.tools:
                raise ValueError(f"duplicate tool name {t.name!r}")
            ts.tools[t.name] = t
        return ts

    def narrow(self, allowed: Iterable[str] | None) -> Toolset:
        if allowed is None:
            return Toolset(dict(self.tools))
        allowed = list(allowed)
        unknown = sorted(set(allowed) - set(self.tools))
        if unknown:
            raise ValueError(f"allowed_tools names unknown tools {unknown}; this agent has {sorted(self.tools)}")
        return Toolset({n: self.tools[n] for n in self.tools if n in allowed})

    def get(self, name: str) -> Tool | None:
        return self.tools.get(name)

    def names(self) -> list[str]:
        return list(self.tools)

    def specs(self) -> list[dict[str, Any]]:
        return [t.spec() for t in self.tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools.values())

    def __len__(self) -> int:
        return len(self.tools)
