"""Univariate two-sample statistics computed from sorted arrays (the reference side is sorted once, in the profile).

Every function here reproduces a scipy reference to within 1e-9 (tests/drift/test_stats.py):

* ``ks_2samp_sorted``      == ``scipy.stats.ks_2samp`` (two-sided; ``method`` auto/exact/asymp, same selection rule)
* ``wasserstein_sorted``   == ``scipy.stats.wasserstein_distance``
* ``chi2_counts``          == ``scipy.stats.chi2_contingency`` on the 2 x K table (Yates correction when K == 2)

``ks_wasserstein_sorted`` computes both KS and Wasserstein-1 from one merge of the two sorted samples, which is what the
detector uses. PSI uses ``PSI_EPSILON`` in place of an empty bin's proportion (both sides), so it is always finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

MAX_AUTO_N = 10_000  # scipy.stats._stats_py.MAX_AUTO_N: 'auto' uses the exact distribution up to this size
PSI_EPSILON = 1e-4
PSI_BINS = 10


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    dof: int | None = None


# --------------------------------------------------------------------------- KS and Wasserstein
def merge_counts(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge two sorted samples: (merged values, #ref <= merged[i] so far, #cur <= merged[i] so far).

    At the last element of each run of equal values the running counts are the right-continuous ECDF counts.
    """
    n1, n2 = len(ref_sorted), len(cur_sorted)
    # position of each current value in the merged array: ties go after the reference values
    slots = np.searchsorted(ref_sorted, cur_sorted, side="right") + np.arange(n2)
    is_cur = np.zeros(n1 + n2, dtype=bool)
    is_cur[slots] = True
    merged = np.empty(n1 + n2, dtype=np.float64)
    merged[slots] = cur_sorted
    merged[~is_cur] = ref_sorted
    cum_cur = np.cumsum(is_cur, dtype=np.int64)
    cum_ref = np.arange(1, n1 + n2 + 1, dtype=np.int64) - cum_cur
    return merged, cum_ref, cum_cur


def ks_wasserstein_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[float, float]:
    """(KS statistic D, Wasserstein-1) of two sorted, finite, non-empty samples, from one merge."""
    n1, n2 = len(ref_sorted), len(cur_sorted)
    merged, cum_ref, cum_cur = merge_counts(ref_sorted, cur_sorted)
    diff = cum_ref / n1 - cum_cur / n2
    deltas = np.diff(merged)
    w1 = float(np.dot(np.abs(diff[:-1]), deltas))
    # evaluate D only at the last element of each run of ties (the true ECDF values)
    ends = np.empty(len(merged), dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=ends[:-1])
    ends[-1] = True
    d_ends = diff[ends]
    d = max(float(d_ends.max()), float(np.clip(-d_ends.min(), 0, 1)))
    return d, w1


def ks_statistic_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> float:
    return ks_wasserstein_sorted(ref_sorted, cur_sorted)[0]


def wasserstein_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> float:
    return ks_wasserstein_sorted(ref_sorted, cur_sorted)[1]


def ks_pvalue(d: float, n1: int, n2: int, method: str = "auto") -> tuple[float, float]:
    """Two-sided p-value for D with scipy's rules. Returns (d, p): in exact mode scipy rounds d to h / lcm(n1, n2)."""
    import warnings

    from scipy.stats import distributions

    g = math.gcd(n1, n2)
    n1g, n2g = n1 // g, n2 // g
    if method == "auto":
        method = "exact" if max(n1, n2) <= MAX_AUTO_N else "asymp"
    elif method == "exact" and n1g >= np.iinfo(np.int32).max / n2g:
        method = "asymp"
    if method == "exact":
        from scipy.stats._stats_py import _attempt_exact_2kssamp  # the exact routine ks_2samp uses

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            success, d_exact, prob = _attempt_exact_2kssamp(n1, n2, g, d, "two-sided")
        if success:
            return float(d_exact), float(np.clip(prob, 0, 1))
        method = "asymp"
    if method != "asymp":
        raise ValueError(f"unknown KS method {method!r}")
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(d), float(np.clip(distributions.kstwo.sf(d, np.round(en)), 0, 1))


def ks_pvalues_asymp(d: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Vectorised asymptotic p-values (one scipy call for all columns)."""
    from scipy.stats import distributions

    n1 = np.asarray(n1, dtype=np.float64)
    n2 = np.asarray(n2, dtype=np.float64)
    en = n1 * n2 / (n1 + n2)
    return np.clip(distributions.kstwo.sf(np.asarray(d, dtype=np.float64), np.round(en)), 0, 1)


def ks_2samp_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray, *, n_ref: int | None = None,
                    method: str = "auto") -> TestResult:
    """KS test from sorted samples. ``n_ref`` is the true reference size when ``ref_sorted`` is a sketch."""
    d, _ = ks_wasserstein_sorted(ref_sorted, cur_sorted)
    d, p = ks_pvalue(d, int(n_ref or len(ref_sorted)), len(cur_sorted), method)
    return TestResult(d, p)


def ks_2samp(ref: Any, cur: Any, method: str = "auto") -> TestResult:
    """Drop-in for scipy.stats.ks_2samp(ref, cur, method=...) (two-sided)."""
    return ks_2samp_sorted(np.sort(np.asarray(ref, dtype=np.float64)), np.sort(np.asarray(cur, dtype=np.float64)),
                           method=method)


def wasserstein(ref: Any, cur: Any) -> float:
    return wasserstein_sorted(np.sort(np.asarray(ref, dtype=np.float64)), np.sort(np.asarray(cur, dtype=np.float64)))


# --------------------------------------------------------------------------- categorical
def count_table(ref_counts: Mapping[str, int], cur_counts: Mapping[str, int]) -> tuple[list[str], np.ndarray]:
    """2 x K table over the union of categories (reference order first, then categories new in the batch)."""
    keys = [k for k, v in ref_counts.items() if v > 0]
    seen = set(keys)
    keys += [k for k, v in cur_counts.items() if v > 0 and k not in seen]
    table = np.array([[ref_counts.get(k, 0) for k in keys], [cur_counts.get(k, 0) for k in keys]], dtype=np.float64)
    return keys, table


def chi2_table(table: np.ndarray, correction: bool = True) -> TestResult:
    """Pearson chi-squared of independence for a 2 x K table, as scipy.stats.chi2_contingency computes it."""
    from scipy.special import chdtrc

    observed = np.asarray(table, dtype=np.float64)
    row = observed.sum(axis=1, keepdims=True)
    col = observed.sum(axis=0, keepdims=True)
    total = observed.sum()
    expected = row * col / total
    dof = int(expected.size - sum(expected.shape) + expected.ndim - 1)
    if dof <= 0 or observed.shape[1] < 2:
        return TestResult(0.0, 1.0, 0)
    if dof == 1 and correction:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(np.sum((observed - expected) ** 2 / expected))
    return TestResult(stat, float(chdtrc(dof, stat)), dof)


def chi2_counts(ref_counts: Mapping[str, int], cur_counts: Mapping[str, int], correction: bool = True) -> TestResult:
    _, table = count_table(ref_counts, cur_counts)
    if table.shape[1] == 0 or table[0].sum() == 0 or table[1].sum() == 0:
        return TestResult(0.0, 1.0, 0)
    return chi2_table(table, correction)


# --------------------------------------------------------------------------- PSI
def psi_from_proportions(ref_p: np.ndarray, cur_p: np.ndarray, eps: float = PSI_EPSILON) -> float:
    r = np.where(ref_p > 0, ref_p, eps)
    c = np.where(cur_p > 0, cur_p, eps)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_counts(ref_counts: Mapping[str, int], cur_counts: Mapping[str, int], eps: float = PSI_EPSILON) -> float:
    _, table = count_table(ref_counts, cur_counts)
    return psi_from_proportions(table[0] / max(table[0].sum(), 1), table[1] / max(table[1].sum(), 1), eps)


def psi_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray, bins: int = PSI_BINS,
               eps: float = PSI_EPSILON) -> float:
    """PSI over reference-quantile bins (ties collapse bins); empty bins count as ``eps``."""
    edges = np.unique(np.quantile(ref_sorted, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_c = np.diff(np.r_[0, np.searchsorted(ref_sorted, edges, "right"), len(ref_sorted)])
    cur_c = np.diff(np.r_[0, np.searchsorted(cur_sorted, edges, "right"), len(cur_sorted)])
    return psi_from_proportions(ref_c / len(ref_sorted), cur_c / len(cur_sorted), eps)


# --------------------------------------------------------------------------- multiple testing
def adjust_pvalues(p_values: Sequence[float] | np.ndarray, method: str = "bh") -> np.ndarray:
    """Adjust p-values across columns: "bonferroni", "bh" (Benjamini-Hochberg, == statsmodels fdr_bh) or "none".

    NaN p-values (columns not tested) stay NaN and do not count towards the number of tests.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    q = p[ok]
    if method in ("none", None):
        adj = q
    elif method == "bonferroni":
        adj = np.minimum(q * m, 1.0)
    elif method in ("bh", "fdr_bh", "benjamini-hochberg"):
        order = np.argsort(q)
        ranked = q[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = np.minimum(ranked, 1.0)
    else:
        raise ValueError(f"unknown correction {method!r} (bonferroni, bh, none)")
    out[ok] = adj
    return out
