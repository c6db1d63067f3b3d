"""``detect_drift``: compare a batch with a ReferenceProfile and return one DriftReport.

Input rules (never silent; everything below shows up in the report):

* a profiled column missing from the batch -> ``DriftInputError`` naming it (and a similarly named new column);
* an empty batch, or one with duplicate column names -> ``DriftInputError`` (naming the duplicates);
* every argument is checked before any work (``alpha`` strictly between 0 and 1, known ``correction``, ``backend``,
  ``ks_method`` and multivariate method, ``threads`` >= 1, ``columns`` a list of distinct names, predictions and
  labels as long as the batch) -> ``ValueError`` saying which and why;
* NaN/None are counted in ``nulls_cur``, +-inf in ``nonfinite_cur``; both are excluded from the statistics;
* a column with no usable value (all null) -> not tested (``test="none"``), ``flagged=True`` and a warning;
* a numeric reference column that arrives as strings -> numeric coercion; values that do not parse are counted
  in ``unparsable_cur`` (and excluded) with a warning; if nothing parses -> ``DriftInputError`` naming the column;
* categorical: categories not in the reference count as their own category (listed in ``unseen_categories``);
  when the profile merged rare categories into ``"__other__"``, unknown batch categories go there too.

Numeric columns use two-sample KS (== scipy.stats.ks_2samp) with Wasserstein-1 / reference IQR as effect;
categorical columns use chi-squared on the 2 x K table (== scipy.stats.chi2_contingency) with PSI as effect.
p-values are corrected across the feature columns ("bh" Benjamini-Hochberg, "bonferroni", "none"); prediction and
label tests are not part of that family and use ``alpha`` directly.
"""

from __future__ import annotations

import difflib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from airflow_agentic.drift import stats
from airflow_agentic.drift.columns import (  # noqa: F401 - DriftInputError, prepare_column: public here too
    CORRECTIONS,
    KS_METHODS,
    DriftInputError,
    PreparedColumn,
    apply_correction,
    check_choice,
    check_column_list,
    check_positive_int,
    check_probability,
    check_unique_columns,
    effect_scale,
    n_ref,
    prepare_column,
    untested,
)
from airflow_agentic.drift.profile import PREDICTION_COLUMN, ColumnProfile, ReferenceProfile
from airflow_agentic.drift.report import ColumnDrift, DriftReport

if TYPE_CHECKING:
    import pandas as pd

BACKENDS = ("builtin", "alibi", "evidently")
MULTIVARIATE = ("mmd", "classifier")


def default_threads(n_jobs: int) -> int:
    """Sorting and searching release the GIL: one thread per core (at most 4), never more than there are jobs."""
    return max(1, min(4, os.cpu_count() or 1, n_jobs))


def _map(fn: Any, items: list[Any], threads: int) -> list[Any]:
    if threads > 1 and len(items) > 1:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(fn, items))
    return [fn(item) for item in items]


# --------------------------------------------------------------------------- the builtin tests
def _numeric_statistics(prepared: PreparedColumn) -> tuple[float, float]:
    """(KS statistic, Wasserstein-1); large batches against large references without sorting the batch."""
    if prepared.n_used >= stats.GRID_MIN_ROWS:
        grid = prepared.profile.reference_grid()
        if grid is not None:
            out = grid.ks_wasserstein(prepared.values)
            if out is not None:
                return out
    return stats.ks_wasserstein_sorted(prepared.profile.sorted_values, prepared.sorted_values)


def builtin_column_tests(prepared: list[PreparedColumn], *, ks_method: str = "auto",
                         threads: int | None = None) -> list[ColumnDrift]:
    """Run KS / chi-squared for every prepared column; p_adjusted and drifted are filled in later."""
    results: dict[int, ColumnDrift] = {}
    numeric = []
    for i, col in enumerate(prepared):
        if col.n_used == 0:
            results[i] = untested(col, "no usable value in the batch (all null / non-finite)")
        elif n_ref(col.profile) == 0:
            results[i] = untested(col, "no usable value in the reference")
        elif col.profile.kind == "numeric":
            numeric.append(i)
        else:
            ref_counts = col.profile.categories or {}
            test = stats.chi2_counts(ref_counts, col.counts or {})
            psi = stats.psi_counts(ref_counts, col.counts or {})
            results[i] = ColumnDrift(
                column=col.name, kind="categorical", test="chi2", statistic=test.statistic, p_value=test.p_value,
                p_adjusted=None, drifted=False, effect=psi, n_ref=n_ref(col.profile), n_cur=col.n_used,
                nulls_cur=col.nulls, nonfinite_cur=0, psi=psi, unseen_categories=col.unseen, warnings=col.warnings)
    if numeric:
        workers = threads or default_threads(len(numeric))
        dw = _map(lambda i: _numeric_statistics(prepared[i]), numeric, workers)
        n1 = np.array([prepared[i].profile.n_finite for i in numeric])
        n2 = np.array([prepared[i].n_used for i in numeric])
        d = np.array([x[0] for x in dw])
        method = ks_method
        if method == "auto":
            small = np.maximum(n1, n2) <= stats.MAX_AUTO_N
        else:
            small = np.full(len(numeric), method == "exact")
        p = np.empty(len(numeric))
        if (~small).any():
            p[~small] = stats.ks_pvalues_asymp(d[~small], n1[~small], n2[~small])
        for j in np.flatnonzero(small):
            d[j], p[j] = stats.ks_pvalue(float(d[j]), int(n1[j]), int(n2[j]), "exact")
        for j, i in enumerate(numeric):
            col = prepared[i]
            w1 = dw[j][1]
            warnings = list(col.warnings)
            if not col.profile.exact:
                warnings.append(f"{col.name}: reference is a quantile sketch; KS statistic within "
                                f"{col.profile.cdf_error_bound:.2g} of the exact value")
            results[i] = ColumnDrift(
                column=col.name, kind="numeric", test="ks", statistic=float(d[j]), p_value=float(p[j]),
                p_adjusted=None, drifted=False, effect=w1 / effect_scale(col.profile), n_ref=int(n1[j]),
                n_cur=int(n2[j]), nulls_cur=col.nulls, nonfinite_cur=col.nonfinite, unparsable_cur=col.unparsable,
                wasserstein=w1, warnings=warnings)
    return [results[i] for i in range(len(prepared))]


# --------------------------------------------------------------------------- entry point
def _check_columns(profile: ReferenceProfile, batch: pd.DataFrame, columns: Sequence[str]) -> None:
    missing_profile = [c for c in columns if c not in profile.columns]
    if missing_profile:
        raise DriftInputError(f"column(s) {missing_profile} are not in the reference profile "
                              f"(profiled: {sorted(profile.columns)[:20]})", column=missing_profile[0])
    present = {str(c) for c in batch.columns}
    missing = [c for c in columns if c not in present]
    if missing:
        new = sorted(present - set(profile.columns))
        name = missing[0]
        guess = difflib.get_close_matches(name, new, n=1, cutoff=0.6)
        if not guess:
            lowered = {c.lower().replace("-", "_").replace(" ", "_"): c for c in new}
            key = name.lower().replace("-", "_").replace(" ", "_")
            guess = [lowered[key]] if key in lowered else []
        if not guess:
            guess = [c for c in new if c.lower().startswith(name.lower()) or name.lower().startswith(c.lower())][:1]
        hint = f"; did it get renamed to {guess[0]!r}?" if guess else ""
        raise DriftInputError(f"column {name!r} from the reference profile is missing from the batch{hint}"
                              + (f" (also missing: {missing[1:]})" if len(missing) > 1 else ""),
                              column=name, suggestion=guess[0] if guess else None)


def _single_test(name: str, profile: ColumnProfile, values: Any, alpha: float) -> ColumnDrift:
    import pandas as pd

    prepared = prepare_column(name, profile, pd.Series(np.asarray(values) if not isinstance(values, pd.Series)
                                                       else values))
    [result] = builtin_column_tests([prepared], threads=1)
    if result.p_value is not None:
        result.p_adjusted = result.p_value
        result.drifted = bool(result.p_value < alpha)
    return result


def detect_drift(
    profile: ReferenceProfile,
    batch: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    alpha: float = 0.05,
    correction: str = "bh",
    backend: str = "builtin",
    prediction: Any = None,
    labels: Any = None,
    multivariate: str | None = None,
    multivariate_options: dict[str, Any] | None = None,
    performance: dict[str, Any] | None = None,
    ks_method: str = "auto",
    threads: int | None = None,
) -> DriftReport:
    """Compare ``batch`` with ``profile``. Reads only the two.

    ``prediction``: model outputs on the batch (compared with the profile's ``"__prediction__"`` column);
    ``labels``: true labels (compared with the profile's ``target`` column); ``multivariate``: "mmd" or
    "classifier" (uses the profile's row sample); ``performance``: a PerformanceMonitor.report() dict to attach.
    ``threads``: worker threads for the per-column work (default: one per core, at most 4; 1 = no threads).
    """
    # every argument is checked before any work: a bad one is a clear ValueError, never a silent wrong report
    if not isinstance(profile, ReferenceProfile):
        raise ValueError(f"profile must be a ReferenceProfile, got {type(profile).__name__}")
    alpha = check_probability("alpha", alpha)
    check_choice("backend", backend, BACKENDS)
    check_choice("correction", correction, CORRECTIONS)
    check_choice("ks_method", ks_method, KS_METHODS)
    check_positive_int("threads", threads, allow_none=True)
    if multivariate:  # None or "" = no multivariate test
        check_choice("multivariate method", multivariate, MULTIVARIATE)
    if multivariate_options is not None and not isinstance(multivariate_options, dict):
        raise ValueError(f"multivariate_options must be a dict, got {type(multivariate_options).__name__}")
    if performance is not None and not isinstance(performance, dict):
        raise ValueError(f"performance must be a PerformanceMonitor.report() dict, got {type(performance).__name__}")
    if batch is None or not hasattr(batch, "columns"):
        raise ValueError(f"batch must be a pandas DataFrame, got {type(batch).__name__}")
    if len(batch) == 0 or len(batch.columns) == 0:
        raise DriftInputError("the batch is empty: nothing to compare with the reference")
    check_unique_columns(batch)
    names = check_column_list("columns", columns)
    if names is None:
        names = profile.feature_columns
    for what, values in (("prediction", prediction), ("labels", labels)):
        if values is not None and len(values) != len(batch):
            raise ValueError(f"{what} has {len(values)} values but the batch has {len(batch)} rows")
    _check_columns(profile, batch, names)
    if not all(isinstance(c, str) for c in batch.columns):
        batch = batch.rename(columns=lambda c: str(c))  # copies the frame: only when some label is not a str

    # Preparing is cheap for numeric columns (to numpy, count NaN/inf) and holds the GIL for categorical ones
    # (hashing values): one thread. The numeric statistics run in threads: numpy releases the GIL there.
    workers = threads or default_threads(len(names))
    prepared = [prepare_column(name, profile.columns[name], batch[name]) for name in names]
    warnings: list[str] = []
    if backend == "builtin":
        results = builtin_column_tests(prepared, ks_method=ks_method, threads=workers)
        apply_correction(results, alpha, correction)
    else:
        from airflow_agentic.drift import backends

        results = backends.run_backend(backend, profile, prepared, alpha=alpha, correction=correction)
        warnings.append(backends.BACKEND_NOTES[backend])
    for col in results:
        warnings.extend(col.warnings)

    prediction_result = None
    if prediction is not None:
        if profile.prediction is None:
            raise DriftInputError("predictions given but the profile has no reference predictions "
                                  f"({PREDICTION_COLUMN!r}); build it with from_frame(..., predictions=...)",
                                  column=PREDICTION_COLUMN)
        pred = np.asarray(prediction)
        if pred.ndim == 2:
            pred = pred[:, -1]
        prediction_result = _single_test(PREDICTION_COLUMN, profile.prediction, pred, alpha)
        warnings.extend(prediction_result.warnings)

    label_result = None
    if labels is not None:
        if not profile.target or profile.target not in profile.columns:
            raise DriftInputError("labels given but the profile has no target column; build it with "
                                  "from_frame(..., target=...)")
        label_result = _single_test(profile.target, profile.columns[profile.target], labels, alpha)
        warnings.extend(label_result.warnings)

    multi = None
    if multivariate:
        from airflow_agentic.drift.multivariate import multivariate_test

        multi = multivariate_test(profile, batch, method=multivariate, alpha=alpha, **(multivariate_options or {}))
        warnings.extend(multi.get("warnings", []))

    tested = [c for c in results if c.p_value is not None]
    drifted = [c for c in tested if c.drifted]
    score = len(drifted) / len(tested) if tested else 0.0
    max_effect = max((c.effect for c in drifted if c.effect is not None), default=None)
    detected = bool(drifted) or bool(multi and multi.get("drifted")) or bool(
        prediction_result and prediction_result.drifted) or bool(performance and performance.get("change_detected"))
    return DriftReport(
        detected=detected, score=float(score), alpha=alpha, correction=correction, backend=backend,
        columns=results, n_ref=profile.n_rows, n_cur=int(len(batch)), max_effect=max_effect, multivariate=multi,
        prediction=prediction_result, label=label_result, performance=performance, warnings=warnings,
    )
