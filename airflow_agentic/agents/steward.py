"""The Data Steward agent: the data package's steward tools driven by the agent loop (rule or LLM planner).

No Airflow here. The agent wraps a batch state (pandas :class:`~airflow_agentic.data.steward.BatchState`, or the
Spark twin with ``engine="spark"``) whose findings are already computed. Every tool works on that in-memory state
only, so a retried task simply rebuilds it (``side_effects=False``); nothing is written by the agent.

Invariants, whatever the planner does:

- never delete: no tool removes a row; every input row ends clean or quarantined with a reason;
- ``finalize`` quarantines any row that is still invalid when the loop ends, with reason ``"unresolved"``
  (an LLM that finishes early cannot let a bad row through);
- ``stop_pipeline`` raises :class:`~airflow_agentic.agents.AgentStop`: the task fails and nothing is written;
- a call is rated by its arguments (the guard asks ``risk_for``): a rename that exchanges columns or goes by mere
  name similarity, and a quarantine step that would leave more than ``max_quarantine_share`` of the batch
  quarantined, are ``destructive`` and wait for approval; a rejected one that the batch cannot do without makes the
  rule policy stop the pipeline.

The sequence around the agent (read, inspect, validate, split, write) is :mod:`airflow_agentic.data.pipeline`.

Column names and values reach the planner only inside the bounded observation (data, never instructions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.agents.decision import Decision, PlanningContext, bound, finish
from airflow_agentic.agents.loop import Agent, AgentStop
from airflow_agentic.agents.tools import Risk, Tool, Toolset, tool

if TYPE_CHECKING:
    from airflow_agentic.data.steward import BatchState, StewardReport

UNRESOLVED = "unresolved"
MAX_REASON_CHARS = 200
MAX_QUARANTINE_IDS = 100_000
MAX_OBSERVED_FINDINGS = 30

STEWARD_GOAL = ("Make the batch fit for training against the reference profile: repair what can be repaired "
                "(column renames, sentinels, types, category spellings), quarantine with a reason what cannot "
                "(duplicates, invalid rows), then accept. Stop the pipeline only when the schema is broken beyond "
                "repair. Never delete a row.")


# Tool templates: built once per process (pydantic models are costly to create), bound to an agent per batch.
@tool(risk=Risk.WRITE)
def rename_columns(mapping: dict[str, str] | None = None) -> dict:
    """Rename batch columns to their reference names (default: the renames the findings suggest). Renames that
    exchange columns or go by mere name similarity need approval; renaming onto an existing column is an error."""


@tool(risk=Risk.WRITE)
def replace_sentinels(columns: list[str] | None = None) -> dict:
    """Turn sentinel values (-999, infinities, values far outside the reference range) into nulls; the rows are
    noted and later quarantined with reason "sentinel"."""


@tool(risk=Risk.WRITE)
def coerce_types() -> dict:
    """Parse numbers stored as text in numeric columns; values that do not parse are quarantined as
    type_mismatch."""


@tool(risk=Risk.WRITE)
def normalise_categories(aliases: dict[str, dict[str, str]] | None = None) -> dict:
    """Map case, whitespace and known aliases of categories to the reference spelling (per column)."""


@tool(risk=Risk.WRITE)
def deduplicate() -> dict:
    """Quarantine exact duplicate rows ("duplicate", first occurrence kept) and repeated ids ("duplicate_id")."""


@tool(risk=Risk.WRITE)
def quarantine_invalid() -> dict:
    """Quarantine every row still invalid (nulls in required columns, sentinels, type mismatches, out of range,
    unknown categories), each with its reason."""


@tool(risk=Risk.WRITE)
def quarantine_rows(row_ids: list[int | str], reason: str) -> dict:
    """Quarantine the rows with these ids (id column values, else row positions) with a short reason. The rows
    are kept in the quarantine output, never deleted."""


@tool(risk=Risk.WRITE)
def stop_pipeline(reason: str) -> dict:
    """Stop the pipeline: the schema is broken beyond repair. The task fails and nothing is written."""


@tool(risk=Risk.WRITE)
def accept() -> dict:
    """Accept the batch as it is now (checks that clean + quarantined rows add up to the input)."""


TOOL_TEMPLATES: dict[str, Tool] = {t.name: t for t in (
    rename_columns, replace_sentinels, coerce_types, normalise_categories, deduplicate, quarantine_invalid,
    quarantine_rows, stop_pipeline, accept)}


class StewardAgent(Agent):
    """Steward one batch. ``state`` must carry its findings (``state.findings``); ``outputs`` and
    ``validation_location`` (where the caller will write) only go into the result, so that the trace names them."""

    name = "data_steward"
    default_goal = STEWARD_GOAL

    def __init__(self, state: Any, *, engine: str = "pandas", outputs: dict[str, str] | None = None,
                 validation_location: str | None = None):
        if state.findings is None:
            raise ValueError("the batch state has no findings: run inspect_batch first")
        if engine not in ("pandas", "spark"):
            raise ValueError(f"engine must be 'pandas' or 'spark', not {engine!r}")
        self.state = state
        self.engine = engine
        self.outputs = dict(outputs or {})
        self.validation_location = validation_location
        self.stop_reason: str | None = None
        self.unresolved = 0
        self._bulk_pending = False
        self._observed: tuple | None = None
        if engine == "spark":
            from airflow_agentic.data.spark import SPARK_TOOLS

            self._impl = SPARK_TOOLS
        else:
            from airflow_agentic.data.steward import TOOLS

            self._impl = TOOLS

    # ------------------------------------------------------------------ tools
    def _call(self, name: str, **kwargs: Any) -> dict:
        from airflow_agentic.data.errors import PipelineStopped

        try:
            return self._impl[name](self.state, **kwargs)
        except PipelineStopped as stop:
            self.stop_reason = stop.reason
            raise AgentStop(stop.reason) from None

    def toolset(self) -> Toolset:
        def _rename(mapping: dict[str, str] | None = None) -> dict:
            return self._call("rename_columns", mapping=mapping)

        def _sentinels(columns: list[str] | None = None) -> dict:
            return self._call("replace_sentinels", columns=columns)

        def _quarantine_rows(row_ids: list[int | str], reason: str) -> dict:
            reason = " ".join(str(reason).split())[:MAX_REASON_CHARS]
            if not reason:
                raise ValueError("a quarantine reason is required")
            if len(row_ids) > MAX_QUARANTINE_IDS:
                raise ValueError(f"at most {MAX_QUARANTINE_IDS} row ids per call")
            if self._bulk_pending:  # Spark: the guard allowed a quarantine beyond the share (see _assess)
                self.state.bulk_quarantine_allowed = True
            return self._call("quarantine_rows", rows=list(row_ids), reason=reason)

        def _stop(reason: str) -> dict:
            return self._call("stop_pipeline", reason=" ".join(str(reason).split())[:MAX_REASON_CHARS * 5])

        fns = {
            "rename_columns": _rename,
            "replace_sentinels": _sentinels,
            "coerce_types": lambda: self._call("coerce_types"),
            "normalise_categories": lambda aliases=None: self._call("normalise_categories", aliases=aliases),
            "deduplicate": lambda: self._call("deduplicate"),
            "quarantine_invalid": lambda: self._call("quarantine_invalid"),
            "quarantine_rows": _quarantine_rows,
            "stop_pipeline": _stop,
            "accept": lambda: self._call("accept"),
        }
        return Toolset({name: _bind(template, fns[name], self._assess if name in _ASSESSED else None)
                        for name, template in TOOL_TEMPLATES.items()})

    def _assess(self, tool: str, args: dict) -> tuple[Risk, str]:
        """The risk of one call, from its arguments and the batch: renames that exchange columns or go by mere
        name similarity, and quarantining beyond ``max_quarantine_share`` of the batch, are destructive."""
        from airflow_agentic.data.findings import rename_risk

        if tool == "rename_columns":
            from airflow_agentic.data.steward import default_renames

            mapping = args.get("mapping")
            mapping = default_renames(self.state) if mapping is None else mapping
            if self.engine == "spark":
                from airflow_agentic.data.spark import _data_columns

                columns = _data_columns(self.state.sdf)
            else:
                columns = list(self.state.frame.columns)
            risk, why = rename_risk(columns, mapping, self.state.findings.safe_renames)
            return Risk(risk), why
        share = None
        if self.engine == "pandas":
            from airflow_agentic.data.steward import projected_share

            share = projected_share(self.state, tool, {"rows": args.get("row_ids", [])} if tool == "quarantine_rows"
                                    else args)
        elif tool == "quarantine_rows":
            # One job: the planner's own choice of rows is what needs watching. The rule steps (deduplicate,
            # quarantine_invalid) are checked on Spark once the agent is done (settle).
            from airflow_agentic.data.spark import projected_share_rows

            share = projected_share_rows(self.state, list(args.get("row_ids") or []))
            # Read by the tool, which runs only if the guard let this very call through (approved, or not asked).
            self._bulk_pending = share > self.state.config.max_quarantine_share
        limit = self.state.config.max_quarantine_share
        if share is not None and share > limit:
            return Risk.DESTRUCTIVE, f"{tool} would leave {share:.0%} of the batch quarantined (above {limit:.0%})"
        return TOOL_TEMPLATES[tool].risk, ""

    # ------------------------------------------------------------------ observation
    def observe(self) -> dict[str, Any]:
        # The observation changes only when a tool acted: reuse it between steps (it is built every step).
        key = (len(self.state.actions), bool(self.state.accepted))
        if self._observed is None or self._observed[0] != key:
            self._observed = (key, self._observe())
        return self._observed[1]

    def _observe(self) -> dict[str, Any]:
        findings = self.state.findings
        items = sorted(findings.items, key=lambda f: -_SEVERITY_RANK.get(f.severity, 0))
        observed = [{"kind": f.kind, "column": f.column, "rows": int(f.rows), "severity": f.severity,
                     "sample_row_ids": list(f.sample_row_ids)[:5],
                     **({"detail": f.detail} if f.detail else {})} for f in items[:MAX_OBSERVED_FINDINGS]]
        out: dict[str, Any] = {
            "engine": self.engine,
            "rows": int(self.state.n_input),
            "id_column": self.state.config.id_column,
            "findings_summary": findings.summary(),
            "findings": observed,
            "actions_done": self.state.history(),
            "accepted": bool(self.state.accepted),
        }
        if len(items) > MAX_OBSERVED_FINDINGS:
            out["findings_left_out"] = len(items) - MAX_OBSERVED_FINDINGS
        if self.engine == "pandas":  # Spark counts need a job per step: only the pandas state shows them live
            out["counts"] = _fast_counts(self.state)
        return out

    def summarise(self, tool: str, value: Any) -> Any:
        return bound(value, max_chars=1500)

    # ------------------------------------------------------------------ policy
    def rule_policy(self, ctx: PlanningContext) -> Decision:
        """The data package's deterministic rule policy, step by step, within the allowed tools."""
        from airflow_agentic.data.steward import rule_policy

        if self.state.accepted:
            return finish("batch accepted")
        rejected = {h["tool"] for h in ctx.history if h.get("status") == "rejected"}
        name, args = rule_policy(self.state.findings, self.state, self.state.history(), rejected)
        if name not in ctx.tool_names:
            # A narrowed toolset: skip what is not allowed; finalize still quarantines what stays invalid.
            return finish(f"next rule step {name!r} is not allowed for this task")
        why = {"stop_pipeline": args.get("reason") or "schema broken beyond repair",
               "accept": "nothing left to repair"}.get(name, "the findings call for it")
        return Decision(name, dict(args), why)

    # ------------------------------------------------------------------ end
    def finalize(self, status: str) -> None:
        if status == "failed" or self.stop_reason:
            return  # stopped: nothing is written, so there is nothing to keep consistent
        history = [h for h in self.state.history() if h not in ("accept", "finalize")]
        if history and history[-1] == "quarantine_invalid":
            unresolved = 0  # nothing can have become invalid since every invalid row was quarantined
        elif self.engine == "spark":
            # Spark marks lazily: re-run the invalid-row pass (its reasons name the problem; counted on write).
            self._impl["quarantine_invalid"](self.state)
            self.state._log("finalize", recheck="quarantine_invalid")
            return
        else:
            unresolved = _quarantine_unresolved(self.state)
        self.unresolved = unresolved
        if unresolved:
            self.state._log("finalize", unresolved=unresolved)
        if not self.state.accepted and self.engine == "pandas":
            self.state.check_invariant()

    def report(self) -> StewardReport:
        from airflow_agentic.data.steward import StewardReport

        findings = self.state.findings
        counts = self.state.counts() if self.engine == "pandas" else {}
        counts.pop("_total", None)
        return StewardReport(
            source=self.state.source, engine=self.engine, counts=counts,
            findings={**findings.summary(), "items": [f.to_dict() for f in findings.items], "drift": findings.drift},
            actions=list(self.state.actions), outputs=dict(self.outputs), validation={},
            validation_location=self.validation_location, accepted=bool(self.state.accepted))

    def result(self) -> dict[str, Any]:
        out = self.report().to_dict()
        if self.stop_reason:
            out["stop_reason"] = self.stop_reason
        return out


_SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


@dataclass(frozen=True)
class _BoundTool(Tool):
    """A template's schema, computed once: the loop asks for every tool's spec at every step, and pydantic's
    schema generation would otherwise cost more than the cleaning itself. ``assess`` rates one call's risk from its
    arguments (the guard asks :meth:`risk_for`)."""

    schema: dict = field(default_factory=dict, compare=False)
    assess: Any = field(default=None, compare=False)

    @property
    def json_schema(self) -> dict[str, Any]:
        return self.schema

    def risk_for(self, args: dict[str, Any]) -> tuple[Risk, str]:
        if self.assess is None:
            return self.risk, ""
        return self.assess(self.name, args)


_ASSESSED = ("rename_columns", "deduplicate", "quarantine_invalid", "quarantine_rows")


_SCHEMAS: dict[str, dict] = {}


def _bind(template: Tool, fn: Any, assess: Any = None) -> Tool:
    schema = _SCHEMAS.get(template.name)
    if schema is None:
        schema = _SCHEMAS[template.name] = template.json_schema
    return _BoundTool(name=template.name, description=template.description, args_model=template.args_model, fn=fn,
                      risk=template.risk, side_effects=template.side_effects, schema=schema, assess=assess)


def _fast_counts(state: BatchState) -> dict:
    from collections import Counter

    reasons = state.reasons[state.quarantined]
    by_reason = {str(k): int(v) for k, v in Counter(reasons.tolist()).items()}
    return {"input": int(state.n_input), "clean": int(state.n_input - len(reasons)), "quarantined": int(len(reasons)),
            "by_reason": by_reason}


def _quarantine_unresolved(state: BatchState) -> int:
    """Rows still invalid (or still duplicated) after the agent stopped acting -> quarantine "unresolved"."""
    from airflow_agentic.data.findings import duplicate_masks
    from airflow_agentic.data.steward import invalid_masks

    masks = invalid_masks(state)
    still = np.zeros(state.n_input, dtype=bool)
    for mask in masks.values():
        still |= mask
    id_column = state.config.id_column
    exact, dup_ids = duplicate_masks(state.frame, id_column if id_column in state.frame.columns else None)
    still |= exact | dup_ids
    return state.mark(still, UNRESOLVED)


def steward_with_agent(state: BatchState, *, planner: Any = None, allowed_tools: list[str] | None = None,
                       budget: dict | None = None, engine: str = "pandas", **agent_kwargs: Any):
    """Run the steward agent on ``state`` (findings already set). Returns ``(agent, run)``."""
    from airflow_agentic.agents.loop import AgentLoop

    agent = StewardAgent(state, engine=engine, **agent_kwargs)
    run = AgentLoop(agent, planner=planner, allowed_tools=allowed_tools, budget=budget or {"max_steps": 20}).run()
    return agent, run


__all__ = ["STEWARD_GOAL", "TOOL_TEMPLATES", "UNRESOLVED", "StewardAgent", "steward_with_agent"]
