"""The Data Steward on pandas: a batch state, the tools that act on it, the rule policy and the split into outputs.

Never deletes: every input row ends in exactly one of ``clean`` or ``quarantine`` (with its reason); this is checked
before anything is written. Tools are plain functions ``tool(state, **args) -> dict`` (a JSON summary of what they
did) so the steward agent (:mod:`airflow_agentic.agents.steward`) can call them by name (:data:`TOOLS`). The one
sequence that reads, runs the agent, validates and writes is :mod:`airflow_agentic.data.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from airflow_agentic.data.errors import InvariantViolation, PipelineStopped
from airflow_agentic.data.findings import (
    Findings,
    StewardConfig,
    category_mapping,
    check_renames,
    column_aliases,
    duplicate_masks,
    is_numeric_dtype_name,
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
    original: "pd.DataFrame | None" = None  # the rows as they arrived: the quarantine output is cut from these
    bulk_quarantine_allowed: bool = False  # a step quarantining beyond config.max_quarantine_share was allowed

    @classmethod
    def from_frame(cls, frame: "pd.DataFrame", profile: "ReferenceProfile", config: StewardConfig | None = None,
                   source: str | None = None) -> "BatchState":
        import pandas as pd

        from airflow_agentic.data.io import check_unique_columns

        check_unique_columns(frame.columns, source or "batch")
        n = len(frame)
        index = frame.index
        plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        original = frame if plain else frame.reset_index(drop=True)
        # Shallow copy: tools only ever assign whole columns, so neither the caller's frame nor ``original`` changes.
        work = original.copy(deep=False)
        return cls(frame=work, profile=profile, config=config or StewardConfig(), source=source,
                   reasons=np.full(n, None, dtype=object), sentinel_rows=np.zeros(n, dtype=bool),
                   type_mismatch_rows=np.zeros(n, dtype=bool), n_input=n, original=original)

    def share_after(self, mask: np.ndarray) -> float:
        """The quarantined share of the batch if the rows of ``mask`` were quarantined too."""
        if not self.n_input:
            return 0.0
        return float((self.quarantined | mask).sum()) / self.n_input

    def note_share(self, mask: np.ndarray) -> None:
        # Only reached when the guard let the step run (approved, or the task needs no approval for it).
        if self.share_after(mask) > self.config.max_quarantine_share:
            self.bulk_quarantine_allowed = True

    def over_share(self) -> bool:
        return self.n_input > 0 and float(self.quarantined.sum()) / self.n_input > self.config.max_quarantine_share

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
def default_renames(state: Any) -> dict[str, str]:
    return dict(state.findings.renames if state.findings else {})


def rename_columns(state: BatchState, mapping: dict[str, str] | None = None) -> dict:
    """Rename batch columns to reference names (default: the renames the findings suggest). A rename onto an
    existing column raises :class:`~airflow_agentic.data.findings.RenameError`; whether a rename needs approval is
    the guard's call (:func:`~airflow_agentic.data.findings.rename_risk`)."""
    mapping = check_renames(list(state.frame.columns), default_renames(state) if mapping is None else mapping)
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


def _cached(state: BatchState, key: str, compute: Callable[[], Any]) -> Any:
    """A mask computed for the guard's share check and for the tool right after it (the state is unchanged in
    between: same number of actions): computed once."""
    cache = state.__dict__.setdefault("_mask_cache", {})
    stamp = (key, len(state.actions))
    if stamp not in cache:
        cache.clear()
        cache[stamp] = compute()
    return cache[stamp]


def duplicate_rows_mask(state: BatchState, id_column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    id_column = id_column or state.config.id_column

    def compute() -> tuple[np.ndarray, np.ndarray]:
        return duplicate_masks(state.frame, id_column if id_column in state.frame.columns else None)

    return _cached(state, f"dup:{id_column}", compute)


def deduplicate(state: BatchState, id_column: str | None = None) -> dict:
    """Exact duplicate rows -> quarantine "duplicate" (first occurrence kept); repeated ids -> "duplicate_id"."""
    exact, dup_ids = duplicate_rows_mask(state, id_column)
    state.note_share(exact | dup_ids)
    return state._log("deduplicate", duplicate=state.mark(exact, "duplicate"),
                      duplicate_id=state.mark(dup_ids, "duplicate_id"))


def rows_mask(state: BatchState, rows: Any) -> np.ndarray:
    """Boolean mask (length of the batch) as it is, or row ids (id column values, else positions) -> mask."""
    rows = np.asarray(rows)
    if rows.dtype == bool and len(rows) == len(state.frame):
        return rows
    import pandas as pd

    return pd.Series(state.row_ids).isin(rows.tolist()).to_numpy()


def quarantine_rows(state: BatchState, rows: Any, reason: str) -> dict:
    """Quarantine by boolean mask (length of the batch) or by row ids (id column values, else positions)."""
    mask = rows_mask(state, rows)
    state.note_share(mask)
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
        # A value that did not parse as a number is a mismatch whether or not its column may hold nulls.
        "type_mismatch": state.type_mismatch_rows | still_unparsed,
        "sentinel": (state.sentinel_rows & null_any) | still_sentinel,
        "null": null_rows,
        "out_of_range": oor,
        "unknown_category": unknown,
    }


def invalid_masks_cached(state: BatchState) -> dict[str, np.ndarray]:
    return _cached(state, "invalid", lambda: invalid_masks(state))


def any_mask(masks: dict[str, np.ndarray], n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    for mask in masks.values():
        out |= mask
    return out


def projected_share(state: BatchState, tool: str, args: dict) -> float | None:
    """The quarantined share after ``tool`` would run with ``args`` (None for tools that quarantine nothing)."""
    if tool == "quarantine_invalid":
        return state.share_after(any_mask(invalid_masks_cached(state), state.n_input))
    if tool == "deduplicate":
        exact, dup_ids = duplicate_rows_mask(state)
        return state.share_after(exact | dup_ids)
    if tool == "quarantine_rows":
        return state.share_after(rows_mask(state, args.get("rows", args.get("row_ids", []))))
    return None


def quarantine_invalid(state: BatchState) -> dict:
    """Quarantine rows still invalid: nulls in required columns (reason sentinel / type_mismatch / null by
    origin), out of range, unknown categories. First reason in INVALID_REASON_ORDER wins."""
    masks = invalid_masks_cached(state)
    state.note_share(any_mask(masks, state.n_input))
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
def rule_policy(findings: Findings, state: Any = None, history: list[str] | None = None,
                rejected: set[str] | frozenset[str] = frozenset()) -> tuple[str, dict]:
    """The next action of a sensible steward, deterministically: ``(tool name, args)``.

    stop if the schema is broken beyond repair; else rename_columns (if suggested), replace_sentinels,
    coerce_types, normalise_categories, deduplicate, quarantine_invalid, accept -- each only when the findings
    call for it and it has not run yet. Works on the pandas and the Spark state alike.

    ``rejected``: tools whose step a person (or the guard's default) rejected. A rejected rename of a required
    column, or a rejected quarantine beyond the allowed share, stops the pipeline (nothing is written): the batch
    cannot be made fit without the step that was refused.
    """
    done = set(history if history is not None else (state.history() if state is not None else []))
    if findings.schema_broken:
        return "stop_pipeline", {"reason": findings.stop_reason}
    if "rename_columns" in rejected and "rename_columns" not in done:
        needed = [f"{f.detail.get('from')}->{f.column}" for f in findings.of_kind("renamed_column")
                  if not f.detail.get("optional")]
        if needed:
            return "stop_pipeline", {"reason": f"required column(s) missing; renaming {needed} was not approved"}
    for name in ("quarantine_invalid", "deduplicate", "quarantine_rows"):
        if name in rejected and name not in done:
            return "stop_pipeline", {"reason": f"{name} would quarantine more of the batch than allowed "
                                               "(max_quarantine_share) and was not approved"}
    steps = [
        ("rename_columns", findings.has("renamed_column")),
        ("replace_sentinels", findings.has("sentinel")),
        ("coerce_types", findings.has("type_mismatch", "stored_as_text")),
        ("normalise_categories", findings.has("unnormalised_category")),
        ("deduplicate", findings.has("duplicate_rows", "duplicate_ids")),
        ("quarantine_invalid", findings.has("nulls", "sentinel", "type_mismatch", "out_of_range",
                                            "unknown_category")),
    ]
    for name, needed in steps:
        if needed and name not in done and name not in rejected:
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


def conform_schema(state: BatchState) -> dict:
    """The schema contract, whatever the planner did: every numeric reference column of the clean rows holds
    numbers. Text that parses is converted; clean rows whose value does not parse are quarantined
    ``type_mismatch``. Runs after the agent, before the split."""
    converted: dict[str, int] = {}
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.frame.columns or name == state.config.id_column:
            continue
        if not is_numeric_dtype_name(str(col.dtype)) or is_numeric_or_bool(state.frame[name].dtype):
            continue
        values, unparsed = numeric_view(state.frame[name])
        state.frame[name] = values
        state.type_mismatch_rows |= unparsed
        converted[name] = state.mark(unparsed, "type_mismatch")
    if converted:
        state._log("conform_schema", converted=converted)
    return converted


def is_numeric_or_bool(dtype: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def split_outputs(state: BatchState) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(clean rows of the working frame, in the reference dtypes; quarantined rows exactly as they arrived, with
    their reason in ``_quarantine_reason``)."""
    import pandas as pd

    quarantined = state.quarantined
    clean = state.frame.loc[~quarantined].reset_index(drop=True)
    ref = reference_columns(state.profile, state.config)
    for name in clean.columns:
        dtype = clean[name].dtype
        if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iu" and not clean[name].isna().any():
            # nullable ints introduced by sentinel replacement go back to int64 when null-free
            clean[name] = clean[name].astype(dtype.numpy_dtype)
        elif name in ref and dtype == np.float64 and str(ref[name].dtype).startswith(("int", "uint")):
            # integers that came as text: back to the reference's integer type when every value is integral
            values = clean[name].to_numpy()
            finite = values[~np.isnan(values)]
            if len(finite) == len(values) and np.array_equal(finite, np.round(finite)):
                clean[name] = values.astype(str(ref[name].dtype))
    original = state.original if state.original is not None else state.frame
    rows = np.flatnonzero(quarantined)
    quarantine = original.iloc[rows].reset_index(drop=True)
    quarantine[QUARANTINE_REASON_COLUMN] = pd.Series(state.reasons[rows], dtype=object).astype(str).to_numpy()
    # Mixed object columns (e.g. strings in a numeric column) cannot go to Parquet as they are: as text, which
    # keeps what each value was ("garbage", "-999", "inf").
    for name in quarantine.columns:
        if name != QUARANTINE_REASON_COLUMN and pd.api.types.is_object_dtype(quarantine[name].dtype):
            kinds = {type(v) for v in quarantine[name].dropna().head(1000)}
            if len(kinds) > 1:
                quarantine[name] = quarantine[name].map(lambda v: None if v is None or v != v else str(v))
    return clean, quarantine
