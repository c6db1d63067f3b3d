"""Small mixed-type classification data for the model tests (numeric, string categories, integer codes, NaN)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_frame(n: int = 600, seed: int = 0, shift: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, n)
    x2 = rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    code = rng.integers(0, 4, n)
    logit = 1.5 * x1 - x2 + (colour == "red") * 1.2 - (code == 2) * 1.0
    y = (logit + rng.normal(0, 0.7, n) > 0).astype(int)
    X = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "code": code.astype(float)})
    X.loc[rng.random(n) < 0.05, "x2"] = np.nan
    X.loc[rng.random(n) < 0.05, "colour"] = np.nan
    X.loc[rng.random(n) < 0.05, "code"] = np.nan
    return X, pd.Series(y, name="label")
