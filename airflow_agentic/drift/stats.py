"""Univariate two-sample statistics computed from sorted arrays (the reference side is sorted once, in the profile).

Every function here reproduces a scipy reference to within 1e-9 (tests/drift/test_stats.py):

* ``ks_2samp_sorted``      == ``scipy.stats.ks_2samp`` (two-sided; ``method`` auto/exact/asymp, same selection rule)
* ``wasserstein_sorted``   == ``scipy.stats.wasserstein_distance``
* ``chi2_counts``          == ``scipy.stats.chi2_contingency`` on the 2 x K table (Yates correction when K == 2)

* ``kstwo_sf``             == ``scipy.stats.kstwo.sf`` (the asymptotic ks_2samp p-value), vectorised over columns

Speed: KS needs one ``searchsorted`` of the sorted batch into the sorted reference; Wasserstein-1 is computed from the
quantile functions (no merged array); scipy's slow O(n) Smirnov sum for clearly drifted large samples is replaced by
``smirnov_sf`` (same sum, evaluated in log space on a coarse grid, checked against a grid twice as coarse).
PSI uses ``PSI_EPSILON`` in place of an empty bin's proportion (both sides), so it is always finite.
"""

from __future__ import annotations

import functools
import math
import threading
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


_CACHE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _ecdf_steps(n: int) -> np.ndarray:
    """(0, 1, ..., n) / n: the ECDF values of a sorted sample of size n (shared by columns of equal length)."""
    return np.arange(n + 1) / n


def _steps(n: int) -> np.ndarray:
    with _CACHE_LOCK:
        return _ecdf_steps(n)


def ks_statistic_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> float:
    """Two-sided KS statistic D of two sorted, finite, non-empty samples, bit-identical to scipy's ks_2samp.

    One ``searchsorted`` of the current sample into the reference: sup(F_cur - F_ref) is reached at a current
    value (#cur <= c vs #ref <= c), sup(F_ref - F_cur) just below one (#ref < c vs #cur < c), or is 0. The same
    integer counts divided the same way as scipy give the same floats.
    """
    n1, n2 = len(ref_sorted), len(cur_sorted)
    right = np.searchsorted(ref_sorted, cur_sorted, side="right")
    # #ref < c differs from #ref <= c only where a reference value equals c
    below = ref_sorted[np.maximum(right - 1, 0)]
    if np.any((right > 0) & (below == cur_sorted)):
        left = np.searchsorted(ref_sorted, cur_sorted, side="left")
    else:
        left = right
    steps = _steps(n2)
    d_minus = float(np.max(steps[1:] - right / n1))
    d_plus = float(np.max(left / n1 - steps[:-1]))
    min_s = min(max(d_minus, 0.0), 1.0)
    max_s = max(d_plus, 0.0)
    return min_s if min_s > max_s else max_s


@functools.lru_cache(maxsize=4)
def _quantile_plan(n1: int, n2: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments of [0, 1] on which both empirical quantile functions are constant: (ref index, cur index, length).

    Breakpoints are i/n1 and j/n2, kept as integers in units of 1/(n1*n2) and merged in O(n1 + n2).
    """
    a = np.arange(1, n1 + 1, dtype=np.int64) * n2
    b = np.arange(1, n2 + 1, dtype=np.int64) * n1
    slots = b // n2 + np.arange(n2)  # #a <= b[j] plus j: ties put the reference breakpoint first
    is_b = np.zeros(n1 + n2, dtype=bool)
    is_b[slots] = True
    ends = np.empty(n1 + n2, dtype=np.int64)
    ends[slots] = b
    ends[~is_b] = a
    lengths = np.diff(ends, prepend=0) / (float(n1) * float(n2))
    ref_index = (ends + n2 - 1) // n2 - 1
    cur_index = (ends + n1 - 1) // n1 - 1
    keep = lengths > 0
    return ref_index[keep], cur_index[keep], lengths[keep]


def wasserstein_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> float:
    """Wasserstein-1 of two sorted samples as the integral of |Q_ref(t) - Q_cur(t)| over t in [0, 1].

    Equals scipy.stats.wasserstein_distance (the integral of |F_ref - F_cur|) to rounding.
    """
    n1, n2 = len(ref_sorted), len(cur_sorted)
    if n1 == n2:
        return float(np.abs(ref_sorted - cur_sorted).sum() / n1)
    with _CACHE_LOCK:
        ref_index, cur_index, lengths = _quantile_plan(n1, n2)
    return float(np.dot(np.abs(ref_sorted[ref_index] - cur_sorted[cur_index]), lengths))


def ks_wasserstein_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[float, float]:
    """(KS statistic D, Wasserstein-1) of two sorted, finite, non-empty samples."""
    return ks_statistic_sorted(ref_sorted, cur_sorted), wasserstein_sorted(ref_sorted, cur_sorted)


# --------------------------------------------------------------------------- KS p-values
_STIRLING = (1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
SMIRNOV_DIRECT_TERMS = 4000  # below this many terms the Birnbaum-Tingey sum is summed term by term


def _stirlerr(k: np.ndarray) -> np.ndarray:
    """log(k!) - [(k + 1/2) log k - k + log sqrt(2 pi)], accurate to ~1e-16 absolute for k >= 1."""
    from scipy.special import gammaln

    k = np.asarray(k, dtype=np.float64)
    out = np.empty_like(k)
    small = k <= 15
    ks = k[small]
    out[small] = gammaln(ks + 1) - (ks + 0.5) * np.log(ks) + ks - _HALF_LOG_2PI
    kb = k[~small]
    kk = kb * kb
    s0, s1, s2, s3, s4 = _STIRLING
    out[~small] = (s0 - (s1 - (s2 - (s3 - s4 / kk) / kk) / kk) / kk) / kb
    return out


def _smirnov_log_terms(n: int, x: float, j: np.ndarray) -> np.ndarray:
    """log of the Birnbaum-Tingey terms C(n, j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j) for integer j >= 0.

    For j >= 1 the term is binom.pmf(j; n, p) / p with p = x + j/n, written in Loader's saddle-point form
    (Stirling remainders + log1p) so no large logarithms cancel.
    """
    nx = n * x
    j = np.asarray(j, dtype=np.float64)
    out = np.empty_like(j)
    zero = j == 0
    out[zero] = n * math.log1p(-x) - math.log(x)
    jj = j[~zero]
    rest = n - jj
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = (_stirlerr(np.array([float(n)]))[0] - _stirlerr(jj) - _stirlerr(rest)
                + jj * np.log1p(nx / jj) + rest * np.log1p(-nx / rest)
                + 0.5 * np.log(n / (2 * math.pi * jj * rest)) - np.log((jj + nx) / n))
    out[~zero] = np.where(rest - nx > 0, logs, -np.inf)
    return out


def _log_sum_exp(logs: np.ndarray) -> tuple[float, float]:
    top = float(np.max(logs))
    return top, float(np.sum(np.exp(logs - top)))


def smirnov_sf(n: int, x: float) -> float:
    """P(D+_n >= x), one-sided Smirnov: scipy.special.smirnov(n, x) (~1e-13 relative) for 0 < x < 1.

    Birnbaum-Tingey sum in log space. With many terms the summand is a smooth bump far from both ends, so the
    trapezoid rule on every h-th term is exact to rounding (checked against step 2h); otherwise every term is used.
    """
    if x <= 0:
        return 1.0
    if x >= 1:
        return 0.0
    last = int(math.floor(n * (1 - x)))
    if last + 1 > SMIRNOV_DIRECT_TERMS:
        h = max(1, (last + 1) // 2000)
        logs = _smirnov_log_terms(n, x, np.arange(0, last + 1, h))
        top, total = _log_sum_exp(logs)
        coarse = float(np.sum(np.exp(logs[::2] - top)))
        ends_small = logs[0] < top - 60 and logs[-1] < top - 60
        if ends_small and abs(h * total - 2 * h * coarse) <= 1e-13 * h * total:
            return float(math.exp(top + math.log(h * total) + math.log(x)))
    top, total = _log_sum_exp(_smirnov_log_terms(n, x, np.arange(0, last + 1)))
    return float(math.exp(top + math.log(total) + math.log(x))) if total > 0 else 0.0


def kstwo_sf(d: Any, n: Any) -> np.ndarray:
    """scipy.stats.kstwo.sf(d, n) (two-sided one-sample KS distribution), vectorised.

    scipy computes the range 2.2 <= n d^2 < 370 (n > 140, d < 0.5) as 2 * smirnov(n, d) with an O(n) double-double
    loop, ~0.1 s per call at n = 1e5; that branch uses ``smirnov_sf`` here. Every other branch calls scipy.
    """
    from scipy.stats import distributions

    d = np.atleast_1d(np.asarray(d, dtype=np.float64))
    n = np.broadcast_to(np.asarray(n, dtype=np.float64), d.shape)
    out = np.empty(d.shape, dtype=np.float64)
    t = n * d
    nxx = t * d
    fast = (n > 140) & (d < 0.5) & (t > 1.0) & (t < n - 1) & (nxx >= 2.2)
    zero = fast & (nxx >= 370.0)
    sums = fast & ~zero
    out[zero] = 0.0
    for i in np.flatnonzero(sums):
        out[i] = min(max(2.0 * smirnov_sf(int(n[i]), float(d[i])), 0.0), 1.0)
    other = ~fast
    if other.any():
        out[other] = distributions.kstwo.sf(d[other], n[other])
    return out


def ks_pvalue(d: float, n1: int, n2: int, method: str = "auto") -> tuple[float, float]:
    """Two-sided p-value for D with scipy's rules. Returns (d, p): in exact mode scipy rounds d to h / lcm(n1, n2)."""
    import warnings

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
    return float(d), float(ks_pvalues_asymp(np.array([d]), np.array([n1]), np.array([n2]))[0])


def ks_pvalues_asymp(d: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Asymptotic p-values for many columns at once, as ks_2samp(method="asymp"): kstwo.sf(d, round(n1 n2 / (n1 + n2)))."""
    n1 = np.asarray(n1, dtype=np.float64)
    n2 = np.asarray(n2, dtype=np.float64)
    big, small = np.maximum(n1, n2), np.minimum(n1, n2)
    en = big * small / (big + small)
    return np.clip(kstwo_sf(np.asarray(d, dtype=np.float64), np.round(en)), 0, 1)


def ks_2samp_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray, *, n_ref: int | None = None,
                    method: str = "auto") -> TestResult:
    """KS test from sorted samples. ``n_ref`` is the true reference size when ``ref_sorted`` is a sketch."""
    d = ks_statistic_sorted(ref_sorted, cur_sorted)
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
