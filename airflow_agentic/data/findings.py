"""What is wrong with a batch, compared with the reference profile. Vectorised pandas/numpy, one pass per column.

Finding kinds: ``missing_column``, ``extra_column``, ``renamed_column``, ``retyped_column`` (schema);
``nulls``, ``sentinel`` (listed sentinel values, infinities and values far outside the reference range),
``out_of_range``, ``type_mismatch`` (strings in numeric columns), ``unknown_category``, ``duplicate_rows``,
``duplicate_ids``, ``distribution_shift``. Severity: ``info`` < ``warning`` < ``error`` < ``critical``
(critical = schema broken beyond repair).
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.drift.profile import ColumnProfile, ReferenceProfile

log = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "error", "critical")
DEFAULT_SENTINELS = (-999.0, -9999.0, 999999.0)
SAMPLE_SIZE = 5


@dataclass
class StewardConfig:
    """Knobs of the steward, shared by the pandas and Spark paths. JSON-serialisable."""

    id_column: str | None = None
    sentinels: tuple[float, ...] = DEFAULT_SENTINELS
    extra_sentinels: tuple[float, ...] = ()
    range_tolerance: float = 0.25  # values beyond min/max +- tolerance x span are out of range
    far_factor: float = 10.0  # values beyond min/max +- far_factor x span are treated as sentinels
    required: tuple[str, ...] | None = None  # default: reference columns without nulls, target excluded
    optional: tuple[str, ...] = ()  # reference columns that may be missing without stopping
    exclude: tuple[str, ...] = ()  # columns the steward ignores entirely (passed through)
    category_aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # column or "*" -> alias -> value
    rename_similarity: float = 0.75
    min_parse_fraction: float = 0.5  # below this a numeric column holding strings is "retyped" (unrepairable)
    drift: bool = True
    # Quarantining more than this share of the batch is a destructive step: it needs approval (see the operator).
    max_quarantine_share: float = 0.5

    def __post_init__(self) -> None:
        share = float(self.max_quarantine_share)
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"max_quarantine_share must be between 0 and 1, not {self.max_quarantine_share!r}")
        self.max_quarantine_share = share

    @property
    def all_sentinels(self) -> tuple[float, ...]:
        return tuple(float(v) for v in (*self.sentinels, *self.extra_sentinels))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["sentinels"] = list(self.sentinels)
        out["extra_sentinels"] = list(self.extra_sentinels)
        out["required"] = list(self.required) if self.required is not None else None
        out["optional"] = list(self.optional)
        out["exclude"] = list(self.exclude)
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> "StewardConfig":
        data = dict(data or {})
        for key in ("sentinels", "extra_sentinels", "optional", "exclude"):
            if key in data and data[key] is not None:
                data[key] = tuple(data[key])
        if data.get("required") is not None:
            data["required"] = tuple(data["required"])
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown steward config field(s) {unknown}; fields: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)


@dataclass
class Finding:
    kind: str
    column: str | None
    rows: int
    severity: str
    sample_row_ids: list = field(default_factory=list)
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "column": self.column, "rows": int(self.rows), "severity": self.severity,
                "sample_row_ids": [_py(v) for v in self.sample_row_ids], "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict) -> "Finding":
        return cls(kind=data["kind"], column=data.get("column"), rows=int(data.get("rows", 0)),
                   severity=data.get("severity", "info"), sample_row_ids=list(data.get("sample_row_ids") or []),
                   detail=dict(data.get("detail") or {}))


@dataclass
class Findings:
    items: list[Finding]
    n_rows: int
    id_column: str | None = None
    drift: dict | None = None
    elapsed_seconds: float = 0.0

    # ------------------------------------------------------------------ views
    def of_kind(self, *kinds: str) -> list[Finding]:
        return [f for f in self.items if f.kind in kinds]

    def has(self, *kinds: str) -> bool:
        return any(f.kind in kinds and (f.rows > 0 or f.column is not None) for f in self.items)

    @property
    def critical(self) -> list[Finding]:
        return [f for f in self.items if f.severity == "critical"]

    @property
    def schema_broken(self) -> bool:
        return bool(self.critical)

    @property
    def stop_reason(self) -> str | None:
        if not self.critical:
            return None
        parts = [f"{f.kind}({f.column})" if f.column else f.kind for f in self.critical]
        return "schema broken beyond repair: " + ", ".join(parts)

    @property
    def renames(self) -> dict[str, str]:
        """Suggested renames, batch name -> reference name (both the same-name-but-for-case/spacing ones and the
        merely similar ones, which need approval: see :func:`rename_risk`)."""
        return {f.detail["from"]: f.column for f in self.of_kind("renamed_column")}

    @property
    def safe_renames(self) -> dict[str, str]:
        """Renames where the names differ only in case, spaces, ``_``, ``-`` or ``.``."""
        return {f.detail["from"]: f.column for f in self.of_kind("renamed_column")
                if f.detail.get("match") == "normalised"}

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for f in self.items:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        worst = max((SEVERITIES.index(f.severity) for f in self.items), default=0)
        return {"n_findings": len(self.items), "by_kind": counts,
                "worst_severity": SEVERITIES[worst] if self.items else None,
                "schema_broken": self.schema_broken,
                "drift_detected": bool((self.drift or {}).get("detected")) if self.drift else None}

    def to_dict(self) -> dict:
        return {"n_rows": self.n_rows, "id_column": self.id_column, "summary": self.summary(),
                "items": [f.to_dict() for f in self.items], "drift": self.drift,
                "elapsed_seconds": round(self.elapsed_seconds, 4)}

    @classmethod
    def from_dict(cls, data: dict) -> "Findings":
        return cls(items=[Finding.from_dict(d) for d in data.get("items", [])], n_rows=int(data.get("n_rows", 0)),
                   id_column=data.get("id_column"), drift=data.get("drift"),
                   elapsed_seconds=float(data.get("elapsed_seconds") or 0.0))

    def key(self) -> list[tuple]:
        """Order-independent comparable view (kind, column, rows) for pandas/Spark equivalence."""
        return sorted((f.kind, f.column or "", f.rows) for f in self.items)


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------- column helpers
def is_numeric_dtype_name(dtype: str) -> bool:
    d = dtype.lower()
    return d.startswith(("int", "uint", "float")) and "interval" not in d


def is_text_or_category(dtype: Any) -> bool:
    """Strings (``object`` or pandas 3's ``str``), categoricals and booleans: columns SMOTENC and the profiles treat
    as categories. Dtype-agnostic across pandas 2 and 3."""
    import pandas as pd

    return (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype))


def is_string_category(col: "ColumnProfile") -> bool:
    return col.kind == "categorical" and not is_numeric_dtype_name(str(col.dtype)) \
        and not str(col.dtype).startswith("bool")


def reference_columns(profile: "ReferenceProfile", config: StewardConfig) -> dict[str, "ColumnProfile"]:
    from airflow_agentic.drift.profile import PREDICTION_COLUMN

    skip = set(config.exclude) | {PREDICTION_COLUMN}
    return {n: c for n, c in profile.columns.items() if n not in skip}


def required_columns(profile: "ReferenceProfile", config: StewardConfig) -> list[str]:
    cols = reference_columns(profile, config)
    if config.required is not None:
        return [c for c in config.required if c in cols or c == config.id_column]
    out = [n for n, c in cols.items() if c.nulls == 0 and n != profile.target]
    if config.id_column and config.id_column not in out:
        out.append(config.id_column)
    return out


def bounds(col: "ColumnProfile", factor: float) -> tuple[float, float]:
    if col.min is None or col.max is None:
        return -math.inf, math.inf
    span = col.max - col.min
    if span <= 0:
        span = max(abs(col.max), 1.0)
    return col.min - factor * span, col.max + factor * span


def sentinel_values_for(col: "ColumnProfile", config: StewardConfig) -> list[float]:
    """Listed sentinels that are not legitimate values of this column in the reference."""
    out = []
    for v in config.all_sentinels:
        if col.kind == "numeric":
            if col.min is not None and col.min <= v <= col.max:
                continue
        elif col.categories and _category_key(v) in col.categories:
            continue
        out.append(v)
    return out


def _category_key(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def numeric_view(series: "pd.Series") -> tuple[np.ndarray, np.ndarray]:
    """(float64 values with NaN for nulls/unparseable, mask of non-null values that did not parse as numbers)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(values), dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(series), dtype=bool)
    parsed = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(parsed) & series.notna().to_numpy()
    return parsed, bad


def sentinel_masks(values: np.ndarray, col: "ColumnProfile", config: StewardConfig) -> dict[str, np.ndarray]:
    """Masks of listed sentinels, infinities (when the reference had none) and far-out values."""
    listed = np.zeros(len(values), dtype=bool)
    for v in sentinel_values_for(col, config):
        listed |= values == v
    nonfinite = np.isinf(values) if col.nonfinite == 0 else np.zeros(len(values), dtype=bool)
    far = np.zeros(len(values), dtype=bool)
    if col.kind == "numeric":
        lo, hi = bounds(col, config.far_factor)
        with np.errstate(invalid="ignore"):
            far = ((values < lo) | (values > hi)) & ~listed & ~nonfinite
    return {"listed": listed, "nonfinite": nonfinite, "far": far}


def out_of_range_mask(values: np.ndarray, col: "ColumnProfile", config: StewardConfig) -> np.ndarray:
    lo, hi = bounds(col, config.range_tolerance)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & ((values < lo) | (values > hi))


def normalise_key(value: str) -> str:
    return re.sub(r"\s+", " ", str(value).strip()).casefold()


def category_mapping(col: "ColumnProfile", aliases: dict[str, str] | None = None) -> dict[str, str]:
    """normalised form -> canonical reference category (aliases normalised too)."""
    mapping = {normalise_key(k): k for k in (col.categories or {})}
    for alias, target in (aliases or {}).items():
        mapping[normalise_key(alias)] = target
    return mapping


def column_aliases(config: StewardConfig, column: str) -> dict[str, str]:
    return {**config.category_aliases.get("*", {}), **config.category_aliases.get(column, {})}


def unknown_category_mask(series: "pd.Series", col: "ColumnProfile") -> np.ndarray:
    """Non-null values whose category key is not in the reference (numeric-coded columns compare as numbers)."""
    import pandas as pd

    known = list((col.categories or {}).keys())
    notna = series.notna().to_numpy()
    if is_string_category(col) or not pd.api.types.is_numeric_dtype(series.dtype):
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            from airflow_agentic.drift.profile import category_keys

            keys = category_keys(series).reindex(series.index)
            return notna & ~keys.isin(known).to_numpy()
        # Compare on the unique values only: fast for low-cardinality columns.
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        known_set = set(known)
        unique_known = np.fromiter((str(u) in known_set for u in uniques), dtype=bool, count=len(uniques))
        ok = np.zeros(len(series), dtype=bool)
        valid = codes >= 0
        ok[valid] = unique_known[codes[valid]]
        return notna & ~ok
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    numeric_known = []
    for k in known:
        try:
            numeric_known.append(float(k))
        except ValueError:
            pass
    return notna & ~np.isin(values, np.asarray(numeric_known, dtype=np.float64))


def duplicate_masks(frame: "pd.DataFrame", id_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(exact duplicate rows after the first, rows whose id repeats an earlier id with different content)."""
    import pandas as pd

    n = len(frame)
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    exact = np.zeros(n, dtype=bool)
    if candidates.any():
        # Confirm hash collisions with an exact comparison on the (small) candidate subset.
        sub = frame.iloc[np.flatnonzero(candidates)]
        exact[np.flatnonzero(candidates)] = sub.duplicated(keep="first").to_numpy()
    dup_ids = np.zeros(n, dtype=bool)
    if id_column and id_column in frame.columns:
        ids = frame[id_column]
        keep = ~exact
        dup_ids[keep] = ids[keep].duplicated(keep="first").to_numpy()
    return exact, dup_ids


def squash_name(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", str(name)).casefold()


def stored_as_text(dtype: Any) -> bool:
    """A column of a numeric reference column whose batch dtype is not numeric (strings, objects)."""
    import pandas as pd

    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def rename_detail(source: str, target: str) -> dict:
    match = "normalised" if squash_name(source) == squash_name(target) else "similar"
    detail = {"from": source, "to": target, "match": match}
    if match == "similar":
        detail["needs_approval"] = True
    return detail


class RenameError(ValueError):
    """A rename that cannot be done without losing or mixing up a column."""


def check_renames(columns: list, mapping: dict[str, str]) -> dict[str, str]:
    """The renames of ``mapping`` that apply to ``columns`` (sources absent from the batch are dropped). Raises
    :class:`RenameError` for a target that is an existing column not renamed away in the same call (it would be
    overwritten) and for two sources renamed to one target."""
    present = set(columns)
    mapping = {str(k): str(v) for k, v in (mapping or {}).items() if k in present and k != v}
    targets: dict[str, str] = {}
    for source, target in mapping.items():
        if not target.strip():
            raise RenameError(f"cannot rename {source!r} to an empty name")
        if target in targets:
            raise RenameError(f"cannot rename both {targets[target]!r} and {source!r} to {target!r}")
        targets[target] = source
        if target in present and target not in mapping:
            raise RenameError(f"cannot rename {source!r} onto the existing column {target!r}: that column would be "
                              f"overwritten; rename or drop {target!r} first")
    return mapping


def rename_risk(columns: list, mapping: dict[str, str], safe: dict[str, str]) -> tuple[str, str]:
    """``("write", "")`` for renames the findings found safe (names equal but for case and spacing), else
    ``("destructive", why)``: exchanging columns, or renaming by mere similarity or by the planner's own idea,
    can silently mix up features, so a person has to approve it."""
    try:
        mapping = check_renames(columns, mapping)
    except RenameError:
        return "write", ""  # the tool itself refuses it with a clear error; nothing to approve
    exchanged = sorted(t for t in mapping.values() if t in mapping)
    if exchanged:
        return "destructive", f"the rename exchanges or chains columns {exchanged}"
    unsafe = sorted(f"{k}->{v}" for k, v in mapping.items() if safe.get(k) != v)
    if unsafe:
        return "destructive", f"renames not matching a reference name but for case/spacing: {unsafe}"
    return "write", ""


def suggest_renames(missing: list[str], extra: list[str], frame: "pd.DataFrame",
                    ref: dict[str, "ColumnProfile"], threshold: float) -> dict[str, str]:
    """missing reference name -> batch column, by similar name and matching dtype family. Only a suggestion: a
    rename that is not a mere case/spacing difference needs approval (:func:`rename_risk`)."""
    import pandas as pd

    def family_batch(name: str) -> str:
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            return "bool"
        return "numeric" if pd.api.types.is_numeric_dtype(dtype) else "string"

    def family_ref(col: "ColumnProfile") -> str:
        d = str(col.dtype)
        if d.startswith("bool"):
            return "bool"
        return "numeric" if is_numeric_dtype_name(d) else "string"

    squash = squash_name

    scored = []
    for m in missing:
        for e in extra:
            if family_batch(e) != family_ref(ref[m]):
                continue
            score = 1.0 if squash(m) == squash(e) else difflib.SequenceMatcher(None, m.casefold(), e.casefold()).ratio()
            if score >= threshold:
                scored.append((score, m, e))
    out: dict[str, str] = {}
    used: set[str] = set()
    for score, m, e in sorted(scored, key=lambda t: -t[0]):
        if m not in out and e not in used:
            out[m] = e
            used.add(e)
    return out


# ---------------------------------------------------------------------------------------------- inspection
class _Collector:
    def __init__(self, row_ids: np.ndarray):
        self.row_ids = row_ids
        self.items: list[Finding] = []

    def add(self, kind: str, column: str | None, mask: np.ndarray | None, severity: str, **detail: Any) -> None:
        if mask is None:
            self.items.append(Finding(kind, column, 0, severity, [], detail))
            return
        rows = int(mask.sum())
        if rows == 0:
            return
        sample = self.row_ids[np.flatnonzero(mask)[:SAMPLE_SIZE]].tolist()
        self.items.append(Finding(kind, column, rows, severity, sample, detail))


def inspect_batch(frame: "pd.DataFrame", profile: "ReferenceProfile", config: StewardConfig | None = None,
                  *, with_drift: bool | None = None) -> Findings:
    """All findings of ``frame`` against ``profile``. The frame is not modified."""
    import time

    started = time.perf_counter()
    config = config or StewardConfig()
    ref = reference_columns(profile, config)
    n = len(frame)
    id_col = config.id_column
    row_ids = frame[id_col].to_numpy() if id_col and id_col in frame.columns else np.arange(n)
    out = _Collector(row_ids)
    batch_cols = [c for c in frame.columns if c not in config.exclude]

    # --- schema
    missing = [c for c in ref if c not in frame.columns]
    extra = [c for c in batch_cols if c not in ref and c != id_col]
    renames = suggest_renames(missing, extra, frame, ref, config.rename_similarity)
    for m in missing:
        if m in renames:
            out.add("renamed_column", m, None, "warning", **rename_detail(renames[m], m),
                    optional=m == profile.target or m in config.optional)
        elif m == profile.target or m in config.optional:
            out.add("missing_column", m, None, "warning", optional=True)
        else:
            out.add("missing_column", m, None, "critical", optional=False)
    for e in extra:
        if e not in renames.values():
            out.add("extra_column", e, None, "info", dtype=str(frame[e].dtype))
    if id_col and id_col not in frame.columns:
        out.add("missing_column", id_col, None, "critical", optional=False, id_column=True)

    required = set(required_columns(profile, config))
    bad_rows = np.zeros(n, dtype=bool)
    view = {m: renames[m] for m in renames}  # reference name -> batch column to read
    for name, col in ref.items():
        source = view.get(name, name)
        if source not in frame.columns:
            continue
        series = frame[source]
        null_mask = series.isna().to_numpy()
        is_target = name == profile.target
        if null_mask.any():
            in_required = name in required
            out.add("nulls", name, null_mask, "error" if in_required else "info", required=in_required,
                    reference_null_fraction=round(col.nulls / max(col.n + col.nulls, 1), 6))
            if in_required:
                bad_rows |= null_mask
        if name == id_col:
            continue
        if col.kind == "numeric" or not is_string_category(col):
            values, unparsed = numeric_view(series)
            if stored_as_text(series.dtype):
                # The schema contract: numbers stored as text are converted (coerce_types), even when all parse.
                out.add("stored_as_text", name, None, "warning", batch_dtype=str(series.dtype),
                        reference_dtype=str(col.dtype))
            if unparsed.any():
                nonnull = max(int((~null_mask).sum()), 1)
                parsed_fraction = 1.0 - unparsed.sum() / nonnull
                if parsed_fraction < config.min_parse_fraction:
                    out.add("retyped_column", name, None, "critical", batch_dtype=str(series.dtype),
                            reference_dtype=str(col.dtype), parsed_fraction=round(float(parsed_fraction), 4))
                    continue
                out.add("type_mismatch", name, unparsed, "error", batch_dtype=str(series.dtype),
                        reference_dtype=str(col.dtype))
                bad_rows |= unparsed
            masks = sentinel_masks(values, col, config)
            sentinel = masks["listed"] | masks["nonfinite"] | masks["far"]
            if sentinel.any():
                out.add("sentinel", name, sentinel, "error", listed=int(masks["listed"].sum()),
                        nonfinite=int(masks["nonfinite"].sum()), far_outside_range=int(masks["far"].sum()),
                        values=sorted({_py(v) for v in np.unique(values[sentinel])[:10]}, key=str))
                bad_rows |= sentinel
            if col.kind == "numeric":
                oor = out_of_range_mask(values, col, config) & ~sentinel
                if oor.any():
                    lo, hi = bounds(col, config.range_tolerance)
                    out.add("out_of_range", name, oor, "warning" if is_target else "error",
                            allowed_min=lo, allowed_max=hi, reference_min=col.min, reference_max=col.max)
                    bad_rows |= oor
                continue
            # numeric-coded categorical: unknown codes other than sentinels
            unknown = unknown_category_mask(series, col) & ~sentinel & ~unparsed
        else:
            unknown = unknown_category_mask(series, col)
            if unknown.any():
                mapping = category_mapping(col, column_aliases(config, name))
                import pandas as pd

                codes, uniques = pd.factorize(series[unknown])
                fixable_u = np.fromiter((normalise_key(u) in mapping for u in uniques), dtype=bool,
                                        count=len(uniques))
                fixable = np.zeros(n, dtype=bool)
                fixable[np.flatnonzero(unknown)] = fixable_u[codes]
                if fixable.any():
                    out.add("unnormalised_category", name, fixable, "warning",
                            examples=[str(u) for u in uniques[fixable_u][:5]])
                unknown = unknown & ~fixable
        if unknown.any():
            out.add("unknown_category", name, unknown, "warning" if is_target else "error",
                    examples=sorted({str(v) for v in series[unknown].unique()[:5]}))
            if not is_target:
                bad_rows |= unknown

    exact, dup_ids = duplicate_masks(frame, id_col if id_col in frame.columns else None)
    if exact.any():
        out.add("duplicate_rows", None, exact, "warning")
        bad_rows |= exact
    if dup_ids.any():
        out.add("duplicate_ids", id_col, dup_ids, "error")
        bad_rows |= dup_ids

    drift = None
    if (config.drift if with_drift is None else with_drift) and not any(f.severity == "critical" for f in out.items):
        drift = run_drift(profile, frame.rename(columns={v: k for k, v in renames.items()}).loc[~bad_rows]
                          if bad_rows.any() else frame.rename(columns={v: k for k, v in renames.items()}))
        if drift and drift.get("detected"):
            cols = list(drift.get("drifted_columns") or [])
            out.add("distribution_shift", None, None, "warning", drifted_columns=cols,
                    score=drift.get("score"))
    return Findings(items=out.items, n_rows=n, id_column=id_col, drift=drift,
                    elapsed_seconds=time.perf_counter() - started)


def run_drift(profile: "ReferenceProfile", frame: Any) -> dict | None:
    """``airflow_agentic.drift.detect_drift`` on the rows without row-level issues, when that function exists."""
    try:
        from airflow_agentic import drift as drift_module

        detect = getattr(drift_module, "detect_drift")
    except (ImportError, AttributeError):
        return None
    try:
        report = detect(profile, frame)
    except Exception as exc:  # noqa: BLE001 - drift is advisory; the steward must still finish
        log.warning("drift detection failed: %s", exc)
        return {"error": str(exc)}
    return report.to_dict() if hasattr(report, "to_dict") else dict(report)
