"""A small generated stream with a real drift, for the demo and the end-to-end tests.

Four Gaussian features; the label is a linear boundary with 5 % label noise. ``stable`` batches keep the boundary,
``drifted`` batches move it (the concept changes: the champion's accuracy drops to about chance on half the plane)
and push ``x1`` a little, ``harmless`` batches only move the two features the label ignores.
Columns: ``row_id, x1, x2, x3, x4, label``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("stable", "drifted", "harmless")
FEATURES = ("x1", "x2", "x3", "x4")
TARGET = "label"
ID_COLUMN = "row_id"


def make_batch(kind: str, *, rows: int = 1000, seed: int = 0, noise: float = 0.05, start_id: int = 0) -> pd.DataFrame:
    import pandas as pd

    if kind not in KINDS:
        raise ValueError(f"unknown batch kind {kind!r}: {KINDS}")
    rng = np.random.default_rng(seed)
    mean = np.zeros(4)
    if kind == "drifted":
        mean[0] = 0.5
    elif kind == "harmless":
        mean[2:] = (1.0, -0.75)
    x = rng.normal(size=(rows, 4)) + mean
    if kind == "drifted":
        y = (-x[:, 0] + 0.8 * x[:, 1] + 0.3 > 0).astype(int)  # the boundary turned around
    else:
        y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    flip = rng.random(rows) < noise
    y[flip] = 1 - y[flip]
    frame = pd.DataFrame(x, columns=list(FEATURES))
    frame.insert(0, ID_COLUMN, np.arange(start_id, start_id + rows, dtype=np.int64))
    frame[TARGET] = y
    return frame
