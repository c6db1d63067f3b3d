from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_agentic.drift import ReferenceProfile, detect_drift


def test_spark_matches_pandas(spark):
    from airflow_agentic.drift.spark import detect_drift_spark

    rng = np.random.default_rng(0)
    n = 3000
    ref = pd.DataFrame({"a": np.round(rng.normal(size=n), 2), "b": rng.choice(list("xyz"), n),
                        "c": rng.exponential(size=n), "i": rng.integers(0, 3, n)})
    cur = pd.DataFrame({"a": np.round(rng.normal(0.2, 1, n), 2), "b": rng.choice(list("xyzw"), n),
                        "c": rng.exponential(size=n), "i": rng.integers(0, 3, n)})
    cur.loc[:9, "c"] = np.nan
    cur.loc[10:12, "c"] = np.inf
    profile = ReferenceProfile.from_frame(ref, categorical=["i"])
    expected = detect_drift(profile, cur)
    got = detect_drift_spark(profile, spark.createDataFrame(cur))
    for e, g in zip(expected.columns, got.columns):
        assert (e.column, e.test, e.n_cur, e.nulls_cur, e.nonfinite_cur, e.drifted) == \
               (g.column, g.test, g.n_cur, g.nulls_cur, g.nonfinite_cur, g.drifted)
        assert g.statistic == pytest.approx(e.statistic, abs=1e-9)  # exact, KS included
        assert g.p_value == pytest.approx(e.p_value, abs=1e-9)
        if e.kind == "numeric":
            bound = next((float(w.split("=")[1]) for w in g.warnings if "wasserstein_error_bound" in w), 0.0)
            assert abs(g.wasserstein - e.wasserstein) <= bound + 1e-9
    assert got.drifted_columns == expected.drifted_columns and got.backend == "spark"
