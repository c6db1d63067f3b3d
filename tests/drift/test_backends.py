from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_agentic.drift import ReferenceProfile, detect_drift


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 1500
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(list("xyz"), n), "c": rng.normal(size=n)})
    cur = pd.DataFrame({"a": rng.normal(0.6, 1, n), "b": rng.choice(list("xyz"), n, p=[0.6, 0.2, 0.2]),
                        "c": rng.normal(size=n)})
    cur.loc[:4, "c"] = np.nan
    return ReferenceProfile.from_frame(ref), cur


@pytest.mark.drift_backends  # their numpy<2 / pandas<3 pins live in envs/drift-backends, not in .venv
@pytest.mark.parametrize("backend", ["alibi", "evidently"])
def test_backend_same_shape_and_verdict(data, backend):
    pytest.importorskip("alibi_detect" if backend == "alibi" else "evidently",
                        reason=f"{backend} runs in envs/drift-backends/.venv (./run test)")
    profile, cur = data
    builtin = detect_drift(profile, cur)
    other = detect_drift(profile, cur, backend=backend)
    assert other.backend == backend and set(other.to_dict()) == set(builtin.to_dict())
    assert other.drifted_columns == builtin.drifted_columns == ["a", "b"]
    for o, b in zip(other.columns, builtin.columns):
        assert o.column == b.column and o.n_cur == b.n_cur and o.nulls_cur == b.nulls_cur
        assert o.effect == pytest.approx(b.effect)
    # numeric p-values: both libraries run the same KS (alibi in float32)
    assert other.column("c").p_value == pytest.approx(builtin.column("c").p_value, abs=0.01)
