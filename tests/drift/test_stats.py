from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

from airflow_agentic.drift import stats

SIZES = [(1, 3), (5, 7), (10, 10), (30, 50), (100, 80), (1000, 1200), (9000, 10001), (20000, 15000)]


@pytest.mark.parametrize("n1,n2", SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_ks_and_wasserstein_equal_scipy(n1, n2, ties):
    rng = np.random.default_rng(n1 * 31 + n2)
    a = rng.normal(size=n1)
    b = rng.normal(0.1, 1.1, size=n2)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    methods = ["auto", "asymp"] + (["exact"] if max(n1, n2) <= 2000 else [])
    for method in methods:
        ref = st.ks_2samp(a, b, method=method)
        ours = stats.ks_2samp(a, b, method=method)
        assert abs(ref.statistic - ours.statistic) <= 1e-9
        assert abs(ref.pvalue - ours.p_value) <= 1e-9
    assert abs(st.wasserstein_distance(a, b) - stats.wasserstein(a, b)) <= 1e-9


def test_ks_identical_and_disjoint():
    a = np.arange(50.0)
    assert stats.ks_2samp(a, a).statistic == 0
    r = stats.ks_2samp(a, a + 100)
    assert r.statistic == 1.0 and r.p_value == pytest.approx(st.ks_2samp(a, a + 100).pvalue, abs=1e-12)


def test_vectorised_asymp_pvalues():
    d = np.array([0.01, 0.02, 0.1])
    n1 = np.array([20000, 30000, 50000])
    n2 = np.array([25000, 30000, 12000])
    got = stats.ks_pvalues_asymp(d, n1, n2)
    for j in range(3):
        assert got[j] == pytest.approx(stats.ks_pvalue(d[j], int(n1[j]), int(n2[j]), "asymp")[1], abs=1e-12)


@pytest.mark.parametrize("table", [
    [[10, 20], [5, 25]], [[10, 20, 30], [5, 25, 40]], [[100, 0, 3], [90, 7, 1]], [[1, 2], [1, 2]],
    [[500, 480], [470, 530]],
])
def test_chi2_equal_scipy(table):
    t = np.asarray(table, dtype=float)
    ref = st.chi2_contingency(t)
    ours = stats.chi2_table(t)
    assert abs(ref[0] - ours.statistic) <= 1e-9 and abs(ref[1] - ours.p_value) <= 1e-9 and ref[2] == ours.dof


def test_chi2_counts_unseen_category_is_own_column():
    ref = {"a": 50, "b": 50}
    cur = {"a": 40, "b": 40, "new": 20}
    ours = stats.chi2_counts(ref, cur)
    scipy_res = st.chi2_contingency([[50, 50, 0], [40, 40, 20]])
    assert ours.statistic == pytest.approx(scipy_res[0], abs=1e-9) and ours.dof == 2
    assert stats.chi2_counts({"a": 3}, {"a": 9}).p_value == 1.0  # one category: nothing to test


def test_psi_epsilon_and_zero():
    assert stats.psi_counts({"a": 10, "b": 10}, {"a": 10, "b": 10}) == 0
    value = stats.psi_counts({"a": 10, "b": 10}, {"a": 20})  # empty bin -> epsilon, finite
    assert np.isfinite(value) and value > 1
    x = np.sort(np.random.default_rng(0).normal(size=5000))
    assert stats.psi_sorted(x, x) == 0
    assert stats.psi_sorted(x, np.sort(x + 1)) > 0.5


def test_corrections():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    bonf = stats.adjust_pvalues(p, "bonferroni")
    np.testing.assert_allclose(bonf[:4], np.minimum(p[:4] * 4, 1))
    assert np.isnan(bonf[4])
    bh = stats.adjust_pvalues(p, "bh")
    # reference values (statsmodels multipletests fdr_bh)
    np.testing.assert_allclose(bh[:4], [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(stats.adjust_pvalues(p, "none")[:4], p[:4])
    with pytest.raises(ValueError):
        stats.adjust_pvalues(p, "holm-ish")


def test_smirnov_and_kstwo_sf_equal_scipy():
    from scipy.special import smirnov
    from scipy.stats import distributions

    # the fast branch (2.2 <= n d^2 < 370), its edges, and branches that stay with scipy
    cases = []
    for n in (141, 1_000, 9_999, 30_000, 100_000):
        lo, hi = np.sqrt(2.2 / n), np.sqrt(370 / n)
        cases += [(n, d) for d in (lo * 0.9, lo, lo * 1.5, (lo + hi) / 3, hi * 0.999, hi, 0.6, 1.0 / n)]
    for n, d in cases:
        if 0 < d < 1:
            assert abs(stats.smirnov_sf(n, d) - smirnov(n, d)) <= 1e-12 * max(smirnov(n, d), 1e-300) + 1e-300
        got = stats.kstwo_sf(d, n)[0]
        want = float(distributions.kstwo.sf(d, n))
        assert abs(got - want) <= 1e-12 and abs(got - want) <= 1e-9 * max(want, 1e-300) + 1e-300, (n, d)


def test_large_samples_equal_scipy():
    rng = np.random.default_rng(7)
    for n1, n2, shift, decimals in ((60_000, 40_000, 0.02, None), (30_000, 30_000, 0.0, 2), (25_000, 70_000, 0.03, 1)):
        a, b = rng.normal(size=n1), rng.normal(shift, 1, size=n2)
        if decimals is not None:
            a, b = np.round(a, decimals), np.round(b, decimals)
        ref, ours = st.ks_2samp(a, b), stats.ks_2samp(a, b)
        assert ours.statistic == ref.statistic and abs(ours.p_value - ref.pvalue) <= 1e-9
        assert abs(stats.wasserstein(a, b) - st.wasserstein_distance(a, b)) <= 1e-9


@pytest.mark.parametrize("case", ["same", "resampled", "integers", "shift"])
def test_ks_block_pass_equals_scipy(case):
    # the coarse pass skips blocks whose bound is below the best value: cases where many blocks tie near the max
    rng = np.random.default_rng(7)
    a = rng.normal(size=30_000)
    b = {"same": a.copy(), "resampled": a[rng.integers(0, len(a), 25_000)],
         "integers": rng.integers(0, 7, 40_000).astype(float), "shift": rng.normal(0.02, 1, 50_000)}[case]
    if case == "integers":
        a = rng.integers(0, 7, 30_000).astype(float)
    d = stats.ks_statistic_sorted(stats.sort_finite(a), stats.sort_finite(b))
    assert d == st.ks_2samp(a, b).statistic


def test_sort_finite_matches_np_sort():
    x = np.r_[np.random.default_rng(1).normal(size=1000) * 1e300, -0.0, 0.0, np.inf, -np.inf, 5e-324, -5e-324]
    out = stats.sort_finite(x)
    assert np.array_equal(out, np.sort(x)) and np.all(np.diff(out[1:-1]) >= 0)


@pytest.mark.parametrize("case", ["normal", "shift", "ties", "integers", "offset", "outliers", "lognormal"])
@pytest.mark.parametrize("n1,n2", [(3000, 3000), (2500, 4100), (5000, 700)])
def test_reference_grid_equals_scipy_without_sorting_the_batch(case, n1, n2):
    rng = np.random.default_rng(len(case) * 7 + n1 + n2)
    a, b = rng.normal(size=n1), rng.normal(size=n2)
    if case == "shift":
        b = b + 0.2
    elif case == "ties":
        a, b = np.round(a, 1), np.round(b + 0.05, 1)
    elif case == "integers":
        a, b = rng.integers(0, 6, n1).astype(float), rng.integers(0, 6, n2).astype(float)
    elif case == "offset":
        a, b = 1e6 + a * 1e-3, 1e6 + b * 1e-3
    elif case == "outliers":
        b[:40] = -999.0
        b[40:45] = 1e300
    elif case == "lognormal":
        a, b = rng.lognormal(size=n1), rng.lognormal(0.05, size=n2)
    ref_sorted = np.sort(a)
    lo, hi = ref_sorted[n1 // 1000], ref_sorted[-1 - n1 // 1000]
    grid = stats.ReferenceGrid(ref_sorted, float(lo), float(hi), 256)  # small grid: many buckets sorted exactly
    # bucket ends found by searching the edges == bucketing every reference value (ties sit on edges here)
    np.testing.assert_array_equal(grid.ref_cum, np.cumsum(np.bincount(grid.bucket_of(ref_sorted), minlength=258)))
    d, w1 = grid.ks_wasserstein(b.copy(), max_sorted_share=1.0)
    assert d == st.ks_2samp(a, b, method="asymp").statistic
    assert w1 == pytest.approx(st.wasserstein_distance(a, b), rel=1e-12, abs=1e-12)


def test_reference_grid_is_used_for_large_batches_and_matches_the_sorted_path():
    rng = np.random.default_rng(11)
    a = np.sort(rng.normal(size=stats.GRID_MIN_ROWS + 1000))
    grid = stats.ReferenceGrid.build(a)
    assert grid is not None and stats.ReferenceGrid.build(a[:1000]) is None
    assert stats.ReferenceGrid.build(np.zeros(stats.GRID_MIN_ROWS)) is None  # no spread: sort instead
    for shift in (0.0, 0.03):
        b = rng.normal(shift, size=stats.GRID_MIN_ROWS)
        d, w1 = grid.ks_wasserstein(b)
        assert d == stats.ks_statistic_sorted(a, np.sort(b))
        assert w1 == pytest.approx(stats.wasserstein_sorted(a, np.sort(b)), rel=1e-12)
