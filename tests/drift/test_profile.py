from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_agentic.drift import ReferenceProfile
from airflow_agentic.drift.profile import PREDICTION_COLUMN, profile_numeric
from airflow_agentic.drift.stats import ks_wasserstein_sorted


def frame(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": np.r_[rng.normal(size=n - 2), np.nan, np.inf],
        "k": rng.choice(["a", "b", "c"], size=n),
        "i": rng.integers(0, 4, size=n),
        "flag": rng.random(n) > 0.5,
        "y": rng.integers(0, 2, size=n),
    })


def test_from_frame_kinds_and_counts():
    p = ReferenceProfile.from_frame(frame(), categorical=["i"], target="y", predictions=np.linspace(0, 1, 1000))
    assert p.columns["x"].kind == "numeric" and p.columns["x"].nulls == 1 and p.columns["x"].nonfinite == 1
    assert p.columns["x"].n_finite == 998 and np.all(np.diff(p.columns["x"].sorted_values) >= 0)
    assert p.columns["k"].kind == "categorical" and sum(p.columns["k"].categories.values()) == 1000
    assert p.columns["i"].kind == "categorical" and set(p.columns["i"].categories) <= {"0", "1", "2", "3"}
    assert p.columns["flag"].kind == "categorical" and set(p.columns["flag"].categories) == {"True", "False"}
    assert p.feature_columns == ["x", "k", "i", "flag"] and p.prediction is not None
    assert p.schema()["x"] == "float64" and p.schema()["k"] in ("object", "str")  # pandas 2 / pandas 3 strings
    json.dumps(p.to_summary())
    with pytest.raises(ValueError):
        ReferenceProfile.from_frame(frame(), categorical=["x"])  # too many distinct values


def test_save_load_round_trip(tmp_path: Path):
    p = ReferenceProfile.from_frame(frame(), categorical=["i"], target="y", predictions=np.linspace(0, 1, 1000))
    p.save(tmp_path / "p.npz")  # pathlib (.open)
    p.save(str(tmp_path / "q.npz"))  # str
    for q in (ReferenceProfile.load(tmp_path / "p.npz"), ReferenceProfile.load(str(tmp_path / "q.npz"))):
        assert q.to_summary() == p.to_summary() and q.target == "y"
        for name, col in p.columns.items():
            other = q.columns[name]
            assert other.categories == col.categories and other.kind == col.kind
            if col.sorted_values is not None:
                np.testing.assert_array_equal(other.sorted_values, col.sorted_values)
        np.testing.assert_array_equal(q.sample, p.sample)


def test_sketch_error_bound():
    rng = np.random.default_rng(3)
    values = np.round(rng.lognormal(size=300_000), 2)  # ties too
    cur = np.sort(rng.lognormal(0.02, 1, size=50_000))
    exact = profile_numeric("x", "float64", values, max_exact=10**9)
    sketch = profile_numeric("x", "float64", values, max_exact=5_000)
    assert not sketch.exact and len(sketch.sorted_values) == 5_000 and sketch.n_finite == 300_000
    assert sketch.min == exact.min and sketch.max == exact.max
    bound = sketch.cdf_error_bound
    assert bound == pytest.approx(1 / 4999 + 1 / 300_000)
    # ECDF error at every point of the data
    grid = np.unique(np.r_[values, cur])
    f_exact = np.searchsorted(exact.sorted_values, grid, "right") / 300_000
    f_sketch = np.searchsorted(sketch.sorted_values, grid, "right") / 5_000
    assert np.max(np.abs(f_exact - f_sketch)) <= bound
    d_exact, _ = ks_wasserstein_sorted(exact.sorted_values, cur)
    d_sketch, _ = ks_wasserstein_sorted(sketch.sorted_values, cur)
    assert abs(d_exact - d_sketch) <= bound


def test_prediction_probabilities_2d():
    probs = np.column_stack([np.linspace(1, 0, 100), np.linspace(0, 1, 100)])
    p = ReferenceProfile.from_frame(pd.DataFrame({"a": np.arange(100.0)}), predictions=probs)
    assert p.columns[PREDICTION_COLUMN].kind == "numeric" and p.columns[PREDICTION_COLUMN].max == 1.0


def test_stored_arrays_load_as_aligned_views_and_old_files_still_load():
    import io

    p = ReferenceProfile.from_frame(frame(), categorical=["i"], target="y", predictions=np.linspace(0, 1, 1000))
    data = p.to_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # still a plain .npz
        assert "__meta__" in npz.files
    q = ReferenceProfile.from_bytes(data)
    values = q.columns["x"].sorted_values
    assert values.base is not None and values.flags.aligned and not values.flags.writeable  # a view, no copy
    np.testing.assert_array_equal(values, p.columns["x"].sorted_values)
    from airflow_agentic.drift.profile import aligned_npz_bytes, npz_views

    members = npz_views(data)
    for save in (np.savez, np.savez_compressed):  # older files: unaligned or deflated members
        buf = io.BytesIO()
        save(buf, **members)
        old = ReferenceProfile.from_bytes(buf.getvalue())
        assert old.to_summary() == p.to_summary()
        np.testing.assert_array_equal(old.columns["x"].sorted_values, values)
    assert npz_views(aligned_npz_bytes({"a": np.arange(3.0)}))["a"].tolist() == [0.0, 1.0, 2.0]
