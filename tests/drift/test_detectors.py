from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

from airflow_agentic.drift import DriftInputError, DriftReport, ReferenceProfile, detect_drift


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 4000
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(list("xyz"), n), "c": rng.normal(size=n),
                        "y": rng.integers(0, 2, n)})
    profile = ReferenceProfile.from_frame(ref, target="y", predictions=rng.random(n))
    cur = pd.DataFrame({"a": rng.normal(0.4, 1, n), "b": rng.choice(list("xyz"), n, p=[0.5, 0.3, 0.2]),
                        "c": rng.normal(size=n), "y": rng.integers(0, 2, n)})
    return ref, profile, cur


def test_clear_shift_and_equality_with_scipy(data):
    ref, profile, cur = data
    report = detect_drift(profile, cur)
    assert report.detected and set(report.drifted_columns) == {"a", "b"}
    a = report.column("a")
    scipy_ks = st.ks_2samp(ref["a"], cur["a"])
    assert abs(a.statistic - scipy_ks.statistic) < 1e-9 and abs(a.p_value - scipy_ks.pvalue) < 1e-9
    assert abs(a.wasserstein - st.wasserstein_distance(ref["a"], cur["a"])) < 1e-9
    assert 0 < report.score <= 1 and report.max_effect > 0
    round_trip = DriftReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert round_trip.to_dict() == json.loads(json.dumps(report.to_dict()))
    assert "DETECTED" in report.summary()


def test_no_drift_on_same_distribution(data):
    ref, profile, _ = data
    report = detect_drift(profile, ref.sample(frac=0.5, random_state=1))
    assert not report.detected and report.score == 0


def test_correction_changes_adjusted_only(data):
    _, profile, cur = data
    bonf = detect_drift(profile, cur, correction="bonferroni")
    none = detect_drift(profile, cur, correction="none")
    for b, n in zip(bonf.columns, none.columns):
        assert b.p_value == n.p_value and b.p_adjusted >= n.p_adjusted


def test_missing_column_suggests_rename(data):
    _, profile, cur = data
    with pytest.raises(DriftInputError, match="'a'.*missing") as err:
        detect_drift(profile, cur.rename(columns={"c": "c_renamed"}).drop(columns=["a"]))
    with pytest.raises(DriftInputError, match="renamed to 'c_v2'") as err:
        detect_drift(profile, cur.rename(columns={"c": "c_v2"}))
    assert err.value.column == "c" and err.value.suggestion == "c_v2"


def test_empty_batch(data):
    _, profile, cur = data
    with pytest.raises(DriftInputError, match="empty"):
        detect_drift(profile, cur.iloc[:0])


def test_all_null_column_flagged_not_drifted(data):
    _, profile, cur = data
    batch = cur.copy()
    batch["c"] = np.nan
    report = detect_drift(profile, batch)
    c = report.column("c")
    assert c.flagged and not c.drifted and c.test == "none" and c.nulls_cur == len(batch)
    assert any("c:" in w for w in report.warnings)


def test_constant_columns(data):
    _, _, cur = data
    ref = pd.DataFrame({"k": np.ones(100), "s": ["a"] * 100})
    profile = ReferenceProfile.from_frame(ref)
    same = detect_drift(profile, pd.DataFrame({"k": np.ones(50), "s": ["a"] * 50}))
    assert not same.detected and same.column("k").statistic == 0
    moved = detect_drift(profile, pd.DataFrame({"k": np.full(50, 2.0), "s": ["b"] * 50}))
    assert moved.detected


def test_nan_inf_counted_and_excluded(data):
    ref, profile, cur = data
    batch = cur.copy()
    batch.loc[:9, "a"] = np.nan
    batch.loc[10:14, "a"] = np.inf
    a = detect_drift(profile, batch).column("a")
    assert a.nulls_cur == 10 and a.nonfinite_cur == 5 and a.n_cur == len(batch) - 15
    expected = st.ks_2samp(ref["a"], batch["a"].iloc[15:])
    assert abs(a.statistic - expected.statistic) < 1e-9


def test_type_mismatch_coerced_or_rejected(data):
    ref, profile, cur = data
    batch = cur.copy()
    batch["a"] = batch["a"].astype(str)
    batch.loc[:4, "a"] = "oops"
    a = detect_drift(profile, batch).column("a")
    assert a.unparsable_cur == 5 and a.n_cur == len(batch) - 5 and a.warnings
    batch["a"] = "text"
    with pytest.raises(DriftInputError, match="'a'"):
        detect_drift(profile, batch)


def test_unseen_category(data):
    _, profile, cur = data
    batch = cur.copy()
    batch.loc[:199, "b"] = "brand-new"
    b = detect_drift(profile, batch).column("b")
    assert b.unseen_categories == ["brand-new"] and b.drifted


def test_prediction_and_label_drift(data):
    _, profile, cur = data
    rng = np.random.default_rng(5)
    report = detect_drift(profile, cur, prediction=rng.random(len(cur)) ** 2, labels=cur["y"])
    assert report.prediction.drifted and report.prediction.test == "ks"
    assert report.label is not None and not report.label.drifted and report.label.kind == "numeric"
    report = detect_drift(profile, cur[["a", "b", "c"]], prediction=rng.random(len(cur)))
    assert not report.prediction.drifted


def test_multivariate(data):
    ref, profile, cur = data
    rng = np.random.default_rng(2)
    # correlation change only: marginals identical, MMD / classifier can see it
    z = rng.normal(size=(len(cur), 1))
    corr = cur.copy()
    corr["a"] = z[:, 0]
    corr["c"] = z[:, 0] * 0.9 + rng.normal(size=len(cur)) * np.sqrt(1 - 0.81)
    report = detect_drift(profile, corr, columns=["a", "c"], multivariate="mmd")
    assert report.multivariate["drifted"] and report.detected
    clean = detect_drift(profile, ref.iloc[:2000], columns=["a", "c"], multivariate="mmd")
    assert clean.multivariate["p_value"] > 0.05
    clf = detect_drift(profile, cur, multivariate="classifier")
    assert clf.multivariate["drifted"] and clf.multivariate["auc"] > 0.55
