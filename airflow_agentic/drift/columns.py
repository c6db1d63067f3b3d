"""What every drift backend shares: the batch side of a column (cleaned) and the shared result pieces.

``detectors`` (builtin), ``backends`` (alibi, evidently) and ``spark`` all import from here, never from each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from airflow_agentic.drift import stats
from airflow_agentic.drift.checks import (  # noqa: F401 - re-exported: one import for the backends
    CORRECTIONS,
    KS_METHODS,
    DriftInputError,
    check_choice,
    check_column_list,
    check_positive_int,
    check_probability,
    check_unique_columns,
)
from airflow_agentic.drift.profile import OTHER_CATEGORY, ColumnProfile, category_counts
from airflow_agentic.drift.report import ColumnDrift


# --------------------------------------------------------------------------- preparing one column
class PreparedColumn:
    """The batch side of one column, cleaned: finite values in batch order (numeric) or category counts."""

    __slots__ = ("name", "profile", "values", "_sorted", "counts", "nulls", "nonfinite", "unparsable", "unseen",
                 "warnings")

    def __init__(self, name: str, profile: ColumnProfile):
        self.name = name
        self.profile = profile
        self.values: np.ndarray | None = None
        self._sorted: np.ndarray | None = None
        self.counts: dict[str, int] | None = None
        self.nulls = 0
        self.nonfinite = 0
        self.unparsable = 0
        self.unseen: list[str] = []
        self.warnings: list[str] = []

    @property
    def sorted_values(self) -> np.ndarray | None:
        """The finite values sorted (once, on first use)."""
        if self._sorted is None and self.values is not None:
            self._sorted = stats.sort_finite(self.values)
        return self._sorted

    @property
    def n_used(self) -> int:
        if self.values is not None:
            return int(len(self.values))
        return int(sum((self.counts or {}).values()))


def _numeric_array(name: str, series: Any, prepared: PreparedColumn) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        from airflow_agentic.drift.profile import numeric_values

        return numeric_values(series)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    present = series.notna().to_numpy()
    coerced = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    unparsable = int((present & np.isnan(coerced)).sum())
    # "nan"/"inf" strings parse to NaN/inf: they count as null/non-finite, not as unparsable
    if unparsable:
        text = series[present & np.isnan(coerced)].astype(str).str.strip().str.lower()
        literal_nan = int(text.isin(["nan", "none", "null", ""]).sum())
        unparsable -= literal_nan
    if int(present.sum()) > 0 and unparsable == int(present.sum()):
        raise DriftInputError(
            f"column {name!r} is numeric in the reference profile but none of its {unparsable} values in the batch "
            f"parse as numbers (batch dtype {series.dtype})", column=name)
    if unparsable:
        prepared.unparsable = unparsable
        prepared.warnings.append(f"{name}: {unparsable} value(s) not parsable as numbers, excluded "
                                 f"(batch dtype {series.dtype}, reference dtype {prepared.profile.dtype})")
    return coerced


def prepare_column(name: str, profile: ColumnProfile, series: Any) -> PreparedColumn:
    prepared = PreparedColumn(name, profile)
    if profile.kind == "numeric":
        values = _numeric_array(name, series, prepared)
        finite_mask = np.isfinite(values)
        if finite_mask.all():  # the common case: one pass, no masks kept, no copy
            prepared.values = values
            return prepared
        nan_count = int(np.isnan(values).sum())
        prepared.nulls = nan_count - prepared.unparsable
        prepared.nonfinite = int(len(values) - nan_count - finite_mask.sum())
        prepared.values = values[finite_mask]
        if prepared.nonfinite:
            prepared.warnings.append(f"{name}: {prepared.nonfinite} infinite value(s) excluded from the statistics")
    else:
        counts, n_keys = category_counts(series)
        prepared.nulls = int(len(series) - n_keys)
        known = profile.categories or {}
        unseen = [k for k in counts if k not in known]
        if unseen and profile.lumped:
            counts[OTHER_CATEGORY] = counts.get(OTHER_CATEGORY, 0) + sum(counts.pop(k) for k in unseen)
            prepared.warnings.append(f"{name}: {len(unseen)} unknown categor(ies) counted as {OTHER_CATEGORY!r}")
        elif unseen:
            prepared.unseen = sorted(unseen)[:20]
            prepared.warnings.append(f"{name}: {len(unseen)} categor(ies) not in the reference: "
                                     f"{', '.join(sorted(unseen)[:5])}{'...' if len(unseen) > 5 else ''}")
        prepared.counts = counts
    return prepared


def n_ref(profile: ColumnProfile) -> int:
    """How many reference values the test of this column rests on."""
    return profile.n_finite if profile.kind == "numeric" else int(sum((profile.categories or {}).values()))


def effect_scale(profile: ColumnProfile) -> float:
    return profile.effect_scale  # computed once per profile (stored with it), not per batch


def untested(prepared: PreparedColumn, reason: str) -> ColumnDrift:
    """The result of a column that could not be tested: flagged, with the reason among its warnings."""
    profile = prepared.profile
    return ColumnDrift(
        column=prepared.name, kind=profile.kind, test="none", statistic=None, p_value=None, p_adjusted=None,
        drifted=False, effect=None, n_ref=n_ref(profile), n_cur=prepared.n_used, nulls_cur=prepared.nulls,
        nonfinite_cur=prepared.nonfinite, unparsable_cur=prepared.unparsable, flagged=True,
        warnings=prepared.warnings + [f"{prepared.name}: {reason}; not tested"],
    )


def apply_correction(columns: list[ColumnDrift], alpha: float, correction: str) -> None:
    """Fill ``p_adjusted`` and ``drifted`` of the tested columns (one family: the feature columns)."""
    tested = [c for c in columns if c.p_value is not None]
    adjusted = stats.adjust_pvalues([c.p_value for c in tested], correction)
    for col, p in zip(tested, adjusted):
        col.p_adjusted = float(p)
        col.drifted = bool(p < alpha)
