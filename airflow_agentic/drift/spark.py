"""The builtin statistics on a Spark DataFrame, without collecting the batch to the driver.

Only aggregates come back: per column, counts per interval of the reference grid and category counts.

* KS is exact: the distinct reference values ``u_0 < ... < u_m`` (from the profile) split the line into intervals
  (``Bucketizer``). Between two reference values the reference ECDF is flat and the batch ECDF only rises, so the
  supremum of ``|F_ref - F_cur|`` is reached at a reference value or just before one. Both need only
  ``#cur < u_j`` and ``#cur == u_j``, i.e. a count per bucket and a count of values equal to the bucket's left
  edge. The statistic is therefore identical to the pandas path (and to scipy), so are the p-values.
* Wasserstein-1 uses per-bucket counts and sums: exact on intervals where the batch ECDF stays on one side of the
  reference ECDF; elsewhere a bound on the error is accumulated and reported (``wasserstein_error_bound`` in the
  column warnings when non-zero).
* Chi-squared / PSI: ``groupBy(column).count()`` (the categories, not the rows, reach the driver).

Null, NaN and +-inf values are counted in one aggregation job and excluded, as in ``detect_drift``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from airflow_agentic.drift import stats
from airflow_agentic.drift.columns import (
    CORRECTIONS,
    DriftInputError,
    apply_correction,
    check_choice,
    check_column_list,
    check_probability,
    effect_scale,
)
from airflow_agentic.drift.profile import OTHER_CATEGORY, ColumnProfile, ReferenceProfile, category_keys
from airflow_agentic.drift.report import ColumnDrift, DriftReport

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def ks_w1_from_grid(ref: ColumnProfile, lt_counts: np.ndarray, eq_counts: np.ndarray, sums: np.ndarray,
                    n2: int) -> tuple[float, float, float]:
    """(D, W1, W1 error bound) from per-bucket aggregates.

    ``lt_counts[j]`` = #cur in bucket j, where bucket 0 = (-inf, u_0), bucket j = [u_{j-1}, u_j), bucket m+1 =
    [u_m, inf); ``eq_counts[j]`` = #cur equal to the bucket's left edge; ``sums[j]`` = sum of cur values in the bucket.
    """
    values = ref.sorted_values
    u, first = np.unique(values, return_index=True)
    m = len(u)
    n_sketch = len(values)
    # reference ECDF at each distinct value (right-continuous): #ref <= u_j / n
    ref_le = np.r_[first[1:], n_sketch] / n_sketch
    cum = np.cumsum(lt_counts)  # cum[j] = #cur < u_j for j < m+1 (buckets 0..j)
    cur_lt = cum[:m]  # #cur < u_j
    cur_le = cur_lt + eq_counts[1 : m + 1]  # + #cur == u_j (left edge of bucket j+1)
    f2_le = cur_le / n2
    f2_lt = cur_lt / n2
    f1_prev = np.r_[0.0, ref_le[:-1]]
    d_at = np.abs(ref_le - f2_le)
    d_before = np.abs(f1_prev - f2_lt)
    d = float(max(d_at.max(), d_before.max()))

    # W1 = sum over intervals between consecutive distinct values of the integral of |F1 - F2|
    w1 = 0.0
    bound = 0.0
    # outer tails: below u_0 F1 = 0, above u_m F1 = 1
    below_n, below_sum = lt_counts[0], sums[0]
    w1 += (below_n * u[0] - below_sum) / n2  # integral of F2 over (-inf, u_0)
    above_n, above_sum = lt_counts[m], sums[m]
    w1 += (above_sum - above_n * u[-1]) / n2  # integral of (1 - F2) over [u_m, inf)
    if m > 1:
        left, right = u[:-1], u[1:]
        width = right - left
        a = ref_le[:-1]  # F1 on [u_{j-1}, u_j)
        f2_left = f2_le[:-1]  # F2 at u_{j-1}
        f2_right = f2_lt[1:]  # F2 just before u_j
        inner_n = lt_counts[1:m] - eq_counts[1:m]  # values strictly inside (u_{j-1}, u_j)
        inner_sum = sums[1:m] - eq_counts[1:m] * left
        integral_f2 = f2_left * width + (inner_n * right - inner_sum) / n2
        signed = a * width - integral_f2
        above = f2_right <= a
        below = f2_left >= a
        w1 += float(np.sum(np.abs(signed[above | below])))
        crossing = ~(above | below)
        w1 += float(np.sum(np.abs(signed[crossing])))
        bound += float(np.sum((width * (f2_right - f2_left))[crossing]))
    return d, float(w1), bound


def _categorical_counts(sdf: DataFrame, name: str) -> dict[str, int]:
    rows = sdf.where(sdf[name].isNotNull()).groupBy(name).count().collect()
    if not rows:
        return {}
    import pandas as pd

    values = pd.Series([r[0] for r in rows])
    keys = category_keys(values)
    counts: dict[str, int] = {}
    for key, row in zip(keys, [r for r, v in zip(rows, values) if pd.notna(v)]):
        counts[key] = counts.get(key, 0) + int(row[1])
    return counts


def detect_drift_spark(profile: ReferenceProfile, sdf: DataFrame, *, columns: Sequence[str] | None = None,
                       alpha: float = 0.05, correction: str = "bh") -> DriftReport:
    alpha = check_probability("alpha", alpha)
    check_choice("correction", correction, CORRECTIONS)
    if not hasattr(sdf, "columns") or not hasattr(sdf, "dtypes"):
        raise ValueError(f"detect_drift_spark needs a Spark DataFrame, got {type(sdf).__name__}")
    names = check_column_list("columns", columns)
    if names is None:
        names = profile.feature_columns
    unknown = [n for n in names if n not in profile.columns]
    if unknown:
        raise DriftInputError(f"column(s) {unknown} are not in the reference profile", column=unknown[0])
    dup = sorted({c for c in sdf.columns if sdf.columns.count(c) > 1})
    if dup:
        raise DriftInputError(f"the batch has duplicate column names: {dup}; rename or drop them first",
                              column=dup[0])
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import functions as F

    present = set(sdf.columns)
    for name in names:
        if name not in present:
            raise DriftInputError(f"column {name!r} from the reference profile is missing from the batch",
                                  column=name)
    numeric = [n for n in names if profile.columns[n].kind == "numeric"]
    dtypes = dict(sdf.dtypes)
    casts = {n: F.col(n).cast("double") for n in numeric}
    df = sdf.select(*[casts.get(n, F.col(n)).alias(n) for n in names],
                    *[F.col(n).alias(f"__raw_{i}") for i, n in enumerate(numeric) if dtypes[n] == "string"])
    aggs = [F.count(F.lit(1)).alias("__n")]
    for i, n in enumerate(numeric):
        c = F.col(n)
        aggs += [F.sum(F.when(c.isNull() | F.isnan(c), 1).otherwise(0)).alias(f"null_{i}"),
                 F.sum(F.when(c.isin(float("inf"), float("-inf")), 1).otherwise(0)).alias(f"inf_{i}")]
        if dtypes[n] == "string":
            raw = F.col(f"__raw_{i}")
            aggs.append(F.sum(F.when(raw.isNotNull() & c.isNull(), 1).otherwise(0)).alias(f"bad_{i}"))
    totals = df.agg(*aggs).collect()[0].asDict()
    n_rows = int(totals["__n"])
    if n_rows == 0:
        raise DriftInputError("the batch is empty: nothing to compare with the reference")

    results: list[ColumnDrift] = []
    for name in names:
        prof = profile.columns[name]
        warnings: list[str] = []
        if prof.kind == "numeric":
            i = numeric.index(name)
            bad = int(totals.get(f"bad_{i}") or 0)
            nulls = int(totals[f"null_{i}"] or 0) - bad
            nonfinite = int(totals[f"inf_{i}"] or 0)
            if bad and bad == n_rows - nulls:
                raise DriftInputError(f"column {name!r} is numeric in the reference profile but none of its values "
                                      f"in the batch parse as numbers", column=name)
            if bad:
                warnings.append(f"{name}: {bad} value(s) not parsable as numbers, excluded")
            if nonfinite:
                warnings.append(f"{name}: {nonfinite} infinite value(s) excluded from the statistics")
            n2 = n_rows - nulls - nonfinite - bad
            if n2 == 0 or not prof.n_finite:
                results.append(ColumnDrift(name, "numeric", "none", None, None, None, False, None, prof.n_finite, 0,
                                           nulls, nonfinite, bad, flagged=True,
                                           warnings=warnings + [f"{name}: no usable value; not tested"]))
                continue
            u = np.unique(prof.sorted_values)
            splits = [-float("inf"), *u.tolist(), float("inf")]
            c = F.col(name)
            finite = df.where(c.isNotNull() & ~F.isnan(c) & ~c.isin(float("inf"), float("-inf"))).select(name)
            bucketed = Bucketizer(splits=splits, inputCol=name, outputCol="__bucket").transform(finite)
            edges = finite.sparkSession.createDataFrame([(float(j + 1), float(v)) for j, v in enumerate(u)],
                                                        "__bucket double, __edge double")
            agg = (bucketed.join(F.broadcast(edges), on="__bucket", how="left")
                   .groupBy("__bucket")
                   .agg(F.count(F.lit(1)).alias("n"), F.sum(F.when(c == F.col("__edge"), 1).otherwise(0)).alias("eq"),
                        F.sum(c).alias("s"))
                   .collect())
            m = len(u)
            lt = np.zeros(m + 1, dtype=np.int64)
            eq = np.zeros(m + 1, dtype=np.int64)
            sums = np.zeros(m + 1, dtype=np.float64)
            for row in agg:
                j = int(row["__bucket"])
                lt[j], eq[j], sums[j] = int(row["n"]), int(row["eq"] or 0), float(row["s"] or 0.0)
            d, w1, bound = ks_w1_from_grid(prof, lt, eq, sums, n2)
            d, p = stats.ks_pvalue(d, prof.n_finite, n2, "auto")
            if bound > 1e-12:
                warnings.append(f"{name}: wasserstein_error_bound={bound:.3g}")
            results.append(ColumnDrift(name, "numeric", "ks", d, p, None, False, w1 / effect_scale(prof),
                                       prof.n_finite, n2, nulls, nonfinite, bad, wasserstein=w1, warnings=warnings))
        else:
            counts = _categorical_counts(df, name)
            n2 = int(sum(counts.values()))
            known = prof.categories or {}
            unseen = [k for k in counts if k not in known]
            if unseen and prof.lumped:
                counts[OTHER_CATEGORY] = counts.get(OTHER_CATEGORY, 0) + sum(counts.pop(k) for k in unseen)
                unseen = []
            if unseen:
                warnings.append(f"{name}: {len(unseen)} categor(ies) not in the reference")
            if n2 == 0:
                results.append(ColumnDrift(name, "categorical", "none", None, None, None, False, None,
                                           int(sum(known.values())), 0, n_rows, flagged=True,
                                           warnings=warnings + [f"{name}: no usable value; not tested"]))
                continue
            test = stats.chi2_counts(known, counts)
            psi = stats.psi_counts(known, counts)
            results.append(ColumnDrift(name, "categorical", "chi2", test.statistic, test.p_value, None, False, psi,
                                       int(sum(known.values())), n2, n_rows - n2, psi=psi,
                                       unseen_categories=sorted(unseen)[:20], warnings=warnings))
    apply_correction(results, alpha, correction)
    tested = [c for c in results if c.p_value is not None]
    drifted = [c for c in tested if c.drifted]
    return DriftReport(
        detected=bool(drifted), score=len(drifted) / len(tested) if tested else 0.0, alpha=alpha,
        correction=correction, backend="spark", columns=results, n_ref=profile.n_rows, n_cur=n_rows,
        max_effect=max((c.effect for c in drifted if c.effect is not None), default=None),
        warnings=[w for c in results for w in c.warnings],
    )
