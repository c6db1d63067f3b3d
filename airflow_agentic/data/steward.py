"""The Data Steward on pandas: a batch state, tools that act on it, a rule policy, and the write of the outputs.

Never deletes: every input row ends in exactly one of ``clean`` or ``quarantine`` (with its reason); this is checked
before anything is written. Tools are plain functions ``tool(state, **args) -> dict`` (a JSON summary of what they
did) so an agent loop can call them by name (:data:`TOOLS`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from airflow_agentic.data.errors import InvariantViolation, PipelineStopped
from airflow_agentic.data.findings import (
    Findings,
    StewardConfig,
    category_mapping,
    column_aliases,
    duplicate_masks,
    inspect_batch,
    is_string_category,
    normalise_key,
    numeric_view,
    out_of_range_mask,
    reference_columns,
    required_columns,
    sentinel_masks,
    unknown_category_mask,
)

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.drift.profile import ReferenceProfile

QUARANTINE_REASON_COLUMN = "_quarantine_reason"
# Order in which row-level validity reasons are assigned by quarantine_invalid (first match wins).
INVALID_REASON_ORDER = ("type_mismatch", "sentinel", "null", "out_of_range", "unknown_category")
OUTPUT_FILES = {"clean": "clean.parquet", "quarantine": "quarantine.parquet", "report": "report.json",
                "validation": "validation.json"}


@dataclass
class BatchState:
    """A batch on its way through the steward: the working frame plus a status per input row."""

    frame: "pd.DataFrame"
    profile: "ReferenceProfile"
    config: StewardConfig = field(default_factory=StewardConfig)
    source: str | None = None
    findings: Findings | None = None
    reasons: np.ndarray | None = None  # object array: None (clean) or the quarantine reason, per input row
    sentinel_rows: np.ndarray | None = None
    type_mismatch_rows: np.ndarray | None = None
    actions: list[dict] = field(default_factory=list)
    accepted: bool = False
    n_input: int = 0

    @classmethod
    def from_frame(cls, frame: "pd.DataFrame", profile: "ReferenceProfile", config: StewardConfig | None = None,
                   source: str | None = None) -> "BatchState":
        n = len(frame)
        # Shallow copy: tools only ever assign whole columns, so the caller's frame is never modified.
        work = frame.copy(deep=False).reset_index(drop=True)
        return cls(frame=work, profile=profile, config=config or StewardConfig(), source=source,
                   reasons=np.full(n, None, dtype=object), sentinel_rows=np.zeros(n, dtype=bool),
                   type_mismatch_rows=np.zeros(n, dtype=bool), n_input=n)

    # ------------------------------------------------------------------ views
    @property
    def quarantined(self) -> np.ndarray:
        return self.reasons != None  # noqa: E711 - elementwise on an object array

    @property
    def clean(self) -> np.ndarray:
        return ~self.quarantined

    @property
    def row_ids(self) -> np.ndarray:
        id_col = self.config.id_column
        if id_col and id_col in self.frame.columns:
            return self.frame[id_col].to_numpy()
        return np.arange(len(self.frame))

    def counts(self) -> dict:
        import pandas as pd

        quarantined = self.quarantined
        by_reason = pd.Series(self.reasons[quarantined]).value_counts().to_dict() if quarantined.any() else {}
        return {"input": int(self.n_input), "clean": int((~quarantined).sum()),
                "quarantined": int(quarantined.sum()), "by_reason": {str(k): int(v) for k, v in by_reason.items()}}

    def history(self) -> list[str]:
        return [a["action"] for a in self.actions]

    def mark(self, mask: np.ndarray, reason: str) -> int:
        """Quarantine rows of ``mask`` that are still clean (the first reason wins). Returns how many."""
        new = mask & self.clean
        self.reasons[new] = reason
        return int(new.sum())

    def check_invariant(self) -> None:
        counts = self.counts()
        if len(self.frame) != self.n_input or len(self.reasons) != self.n_input:
            raise InvariantViolation(f"row count changed: {self.n_input} in, {len(self.frame)} now")
        if counts["clean"] + counts["quarantined"] != counts["input"]:
            raise InvariantViolation(f"clean + quarantined != input: {counts}")
        if sum(counts["by_reason"].values()) != counts["quarantined"]:
            raise InvariantViolation(f"reasons do not add up: {counts}")

    def _log(self, action: str, **result: Any) -> dict:
        entry = {"action": action, **result}
        self.actions.append(entry)
        return entry


# ---------------------------------------------------------------------------------------------- tools
def rename_columns(state: BatchState, mapping: dict[str, str] | None = None) -> dict:
    """Rename batch columns to reference names (default: the renames the findings suggest)."""
    mapping = dict(mapping if mapping is not None else (state.findings.renames if state.findings else {}))
    mapping = {k: v for k, v in mapping.items() if k in state.frame.columns}
    state.frame = state.frame.rename(columns=mapping)
    return state._log("rename_columns", renamed=mapping)


def replace_sentinels(state: BatchState, columns: list[str] | None = None) -> dict:
    """Sentinel values (listed, infinities, far outside the reference range) -> null, and note the rows."""
    import pandas as pd

    replaced: dict[str, int] = {}
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.frame.columns or name == state.config.id_column or (columns and name not in columns):
            continue
        if col.kind != "numeric" and is_string_category(col):
            continue
        series = state.frame[name]
        if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            continue
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        masks = sentinel_masks(values, col, state.config)
        mask = masks["listed"] | masks["nonfinite"] | masks["far"]
        if mask.any():
            values = values.copy()
            values[mask] = np.nan
            state.frame[name] = _restore_dtype(values, series)
            state.sentinel_rows |= mask
            replaced[name] = int(mask.sum())
    return state._log("replace_sentinels", replaced=replaced, rows=int(state.sentinel_rows.sum()))


def _restore_dtype(values: np.ndarray, original: "pd.Series") -> Any:
    """Keep integer columns integral when nulls appear (nullable Int64), floats as float64."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(original.dtype):
        return pd.array(values, dtype="Int64") if np.isnan(values).any() else values.astype(original.dtype)
    return values


def coerce_types(state: BatchState) -> dict:
    """Strings in numeric columns -> numbers; values that do not parse become null and are noted as type_mismatch."""
    import pandas as pd

    coerced: dict[str, int] = {}
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.frame.columns or (col.kind != "numeric" and is_string_category(col)):
            continue
        series = state.frame[name]
        if pd.api.types.is_numeric_dtype(series.dtype):
            continue
        values, unparsed = numeric_view(series)
        state.frame[name] = values
        state.type_mismatch_rows |= unparsed
        coerced[name] = int(unparsed.sum())
    return state._log("coerce_types", columns=coerced, unparsed_rows=int(state.type_mismatch_rows.sum()))


def normalise_categories(state: BatchState, aliases: dict[str, dict[str, str]] | None = None) -> dict:
    """Case, whitespace and known aliases -> the reference spelling of each category."""
    import pandas as pd

    changed: dict[str, int] = {}
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.frame.columns or not is_string_category(col) or not col.categories:
            continue
        series = state.frame[name]
        if pd.api.types.is_numeric_dtype(series.dtype):
            continue
        col_aliases = {**column_aliases(state.config, name), **((aliases or {}).get(name, {}))}
        mapping = category_mapping(col, col_aliases)
        known = set(col.categories)
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        targets = [u if u in known else mapping.get(normalise_key(u), u) for u in uniques]
        n_changed = sum(int((codes == i).sum()) for i, (u, t) in enumerate(zip(uniques, targets)) if u != t)
        if n_changed:
            lookup = np.asarray(targets + [None], dtype=object)
            state.frame[name] = pd.Series(lookup[codes], index=series.index, dtype=object)
            changed[name] = n_changed
    return state._log("normalise_categories", changed=changed)


def deduplicate(state: BatchState, id_column: str | None = None) -> dict:
    """Exact duplicate rows -> quarantine "duplicate" (first occurrence kept); repeated ids -> "duplicate_id"."""
    id_column = id_column or state.config.id_column
    exact, dup_ids = duplicate_masks(state.frame, id_column if id_column in state.frame.columns else None)
    return state._log("deduplicate", duplicate=state.mark(exact, "duplicate"),
                      duplicate_id=state.mark(dup_ids, "duplicate_id"))


def quarantine_rows(state: BatchState, rows: Any, reason: str) -> dict:
    """Quarantine by boolean mask (length of the batch) or by row ids (id column values, else positions)."""
    rows = np.asarray(rows)
    if rows.dtype == bool and len(rows) == len(state.frame):
        mask = rows
    else:
        import pandas as pd

        mask = pd.Series(state.row_ids).isin(rows.tolist()).to_numpy()
    return state._log("quarantine_rows", reason=reason, rows=state.mark(mask, reason))


def invalid_masks(state: BatchState) -> dict[str, np.ndarray]:
    """Row masks of what is still invalid in the working frame, by reason (see INVALID_REASON_ORDER)."""

    n = len(state.frame)
    required = set(required_columns(state.profile, state.config))
    null_any = np.zeros(n, dtype=bool)
    oor = np.zeros(n, dtype=bool)
    unknown = np.zeros(n, dtype=bool)
    still_sentinel = np.zeros(n, dtype=bool)
    still_unparsed = np.zeros(n, dtype=bool)
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.frame.columns:
            continue
        series = state.frame[name]
        if name in required:
            null_any |= series.isna().to_numpy()
        if name == state.config.id_column or name == state.profile.target:
            continue
        if col.kind == "numeric" or not is_string_category(col):
            values, unparsed = numeric_view(series)
            still_unparsed |= unparsed
            masks = sentinel_masks(values, col, state.config)
            sentinel = masks["listed"] | masks["nonfinite"] | masks["far"]
            still_sentinel |= sentinel
            if col.kind == "numeric":
                oor |= out_of_range_mask(values, col, state.config) & ~sentinel
            else:
                unknown |= unknown_category_mask(series, col) & ~sentinel & ~unparsed
        else:
            unknown |= unknown_category_mask(series, col)
    null_rows = null_any & ~state.sentinel_rows & ~state.type_mismatch_rows
    return {
        "type_mismatch": (state.type_mismatch_rows & null_any) | still_unparsed,
        "sentinel": (state.sentinel_rows & null_any) | still_sentinel,
        "null": null_rows,
        "out_of_range": oor,
        "unknown_category": unknown,
    }


def quarantine_invalid(state: BatchState) -> dict:
    """Quarantine rows still invalid: nulls in required columns (reason sentinel / type_mismatch / null by
    origin), out of range, unknown categories. First reason in INVALID_REASON_ORDER wins."""
    masks = invalid_masks(state)
    marked = {reason: state.mark(masks[reason], reason) for reason in INVALID_REASON_ORDER}
    return state._log("quarantine_invalid", quarantined={k: v for k, v in marked.items() if v})


def stop_pipeline(state: BatchState, reason: str) -> dict:
    """Schema broken beyond repair: stop, write nothing."""
    state._log("stop_pipeline", reason=reason)
    raise PipelineStopped(reason, state.findings.to_dict() if state.findings else None)


def accept(state: BatchState) -> dict:
    state.check_invariant()
    state.accepted = True
    return state._log("accept", **state.counts())


TOOLS: dict[str, Callable[..., dict]] = {
    "rename_columns": rename_columns,
    "replace_sentinels": replace_sentinels,
    "coerce_types": coerce_types,
    "normalise_categories": normalise_categories,
    "deduplicate": deduplicate,
    "quarantine_rows": quarantine_rows,
    "quarantine_invalid": quarantine_invalid,
    "stop_pipeline": stop_pipeline,
    "accept": accept,
}


# ---------------------------------------------------------------------------------------------- policy
def rule_policy(findings: Findings, state: Any = None, history: list[str] | None = None) -> tuple[str, dict]:
    """The next action of a sensible steward, deterministically: ``(tool name, args)``.

    stop if the schema is broken beyond repair; else rename_columns (if suggested), replace_sentinels,
    coerce_types, normalise_categories, deduplicate, quarantine_invalid, accept -- each only when the findings
    call for it and it has not run yet. Works on the pandas and the Spark state alike.
    """
    done = set(history if history is not None else (state.history() if state is not None else []))
    if findings.schema_broken:
        return "stop_pipeline", {"reason": findings.stop_reason}
    steps = [
        ("rename_columns", findings.has("renamed_column")),
        ("replace_sentinels", findings.has("sentinel")),
        ("coerce_types", findings.has("type_mismatch")),
        ("normalise_categories", findings.has("unnormalised_category")),
        ("deduplicate", findings.has("duplicate_rows", "duplicate_ids")),
        ("quarantine_invalid", findings.has("nulls", "sentinel", "type_mismatch", "out_of_range",
                                            "unknown_category")),
    ]
    for name, needed in steps:
        if needed and name not in done:
            return name, {}
    return "accept", {}


# ---------------------------------------------------------------------------------------------- report
@dataclass
class StewardReport:
    source: str | None
    engine: str
    counts: dict
    findings: dict  # Findings.summary() plus the items
    actions: list[dict]
    outputs: dict[str, str]
    validation: dict  # summary of the GX result (success, failed expectations)
    validation_location: str | None
    accepted: bool = True
    timings: dict = field(default_factory=dict)

    @property
    def quarantine_by_reason(self) -> dict[str, int]:
        return dict(self.counts.get("by_reason", {}))

    def to_dict(self) -> dict:
        return {"source": self.source, "engine": self.engine, "counts": self.counts, "findings": self.findings,
                "actions": self.actions, "outputs": self.outputs, "validation": self.validation,
                "validation_location": self.validation_location, "accepted": self.accepted,
                "timings": self.timings}

    @classmethod
    def from_dict(cls, data: dict) -> "StewardReport":
        return cls(source=data.get("source"), engine=data.get("engine", "pandas"), counts=dict(data["counts"]),
                   findings=dict(data.get("findings") or {}), actions=list(data.get("actions") or []),
                   outputs=dict(data.get("outputs") or {}), validation=dict(data.get("validation") or {}),
                   validation_location=data.get("validation_location"), accepted=bool(data.get("accepted", True)),
                   timings=dict(data.get("timings") or {}))


def run_policy(state: BatchState, policy: Callable = rule_policy, max_steps: int = 20) -> BatchState:
    """Drive the tools with ``policy`` until accept (or stop, which raises)."""
    for _ in range(max_steps):
        action, args = policy(state.findings, state, state.history())
        if action not in TOOLS:
            raise ValueError(f"policy chose an unknown tool {action!r}")
        TOOLS[action](state, **args)
        if action == "accept":
            return state
    raise RuntimeError(f"policy did not accept within {max_steps} steps: {state.history()}")


def split_outputs(state: BatchState) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    import pandas as pd

    quarantined = state.quarantined
    clean = state.frame.loc[~quarantined].reset_index(drop=True)
    for name in clean.columns:  # nullable ints introduced by sentinel replacement go back to int64 when null-free
        dtype = clean[name].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iu" and not clean[name].isna().any():
            clean[name] = clean[name].astype(dtype.numpy_dtype)
    quarantine = state.frame.loc[quarantined].reset_index(drop=True)
    quarantine[QUARANTINE_REASON_COLUMN] = pd.Series(state.reasons[quarantined], dtype=object).astype(str)
    # Mixed object columns (e.g. strings in a numeric column) cannot go to Parquet as they are.
    for name in quarantine.columns:
        if quarantine[name].dtype == object and name != QUARANTINE_REASON_COLUMN:
            kinds = {type(v) for v in quarantine[name].dropna().head(1000)}
            if len(kinds) > 1:
                quarantine[name] = quarantine[name].map(lambda v: None if v is None or v != v else str(v))
    return clean, quarantine


def steward_batch(batch: Any, profile: "ReferenceProfile", out_dir: Any, *, config: StewardConfig | None = None,
                  suite: Any = None, policy: Callable = rule_policy, fmt: str | None = None,
                  validate: str = "clean") -> StewardReport:
    """Read (path or DataFrame), inspect, clean, quarantine, validate with GX once, write atomically, report.

    ``validate``: "clean" validates the clean output (certifies what goes downstream), "input" the raw batch,
    "none" skips GX. Raises ``StewardInputError`` for unreadable input and ``PipelineStopped`` when the schema is
    broken beyond repair; in both cases nothing is written.
    """
    from airflow_agentic.data import io as dio
    from airflow_agentic.data.validation import suite_from_profile, summarise_validation, validate_frame

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    config = config or StewardConfig()
    if hasattr(batch, "columns") and hasattr(batch, "iloc"):
        frame, source = batch, None
    else:
        frame, source = dio.read_batch(batch, fmt), dio.location(batch)
    timings["read"] = time.perf_counter() - t0

    t = time.perf_counter()
    state = BatchState.from_frame(frame, profile, config, source=source)
    state.findings = inspect_batch(state.frame, profile, config)
    timings["inspect"] = time.perf_counter() - t
    t = time.perf_counter()
    run_policy(state, policy)
    state.check_invariant()
    clean, quarantine = split_outputs(state)
    assert len(clean) + len(quarantine) == state.n_input, "never delete: clean + quarantine must equal input"
    timings["clean"] = time.perf_counter() - t

    t = time.perf_counter()
    suite_json = suite if suite is not None else suite_from_profile(
        profile, id_column=config.id_column, range_tolerance=config.range_tolerance, required=config.required,
        exclude=config.exclude)
    validation: dict = {}
    if validate != "none":
        validation = validate_frame(clean if validate == "clean" else frame, suite_json)
        validation["validated"] = validate
    timings["validate"] = time.perf_counter() - t

    t = time.perf_counter()
    outputs = {key: dio.location(dio.join(out_dir, name)) for key, name in OUTPUT_FILES.items()}
    report = StewardReport(
        source=source, engine="pandas", counts=state.counts(),
        findings={**state.findings.summary(), "items": [f.to_dict() for f in state.findings.items],
                  "drift": state.findings.drift},
        actions=state.actions, outputs=outputs,
        validation=summarise_validation(validation) if validation else {},
        validation_location=outputs["validation"] if validation else None, accepted=state.accepted,
        timings=timings)
    files = {OUTPUT_FILES["clean"]: dio.frame_to_bytes(clean), OUTPUT_FILES["quarantine"]: dio.frame_to_bytes(quarantine)}
    if validation:
        files[OUTPUT_FILES["validation"]] = dio.json_bytes(validation)
    timings["serialise"] = time.perf_counter() - t
    files[OUTPUT_FILES["report"]] = dio.json_bytes(report.to_dict())
    t = time.perf_counter()
    dio.write_outputs(out_dir, files, extra={"counts": report.counts})
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return report
