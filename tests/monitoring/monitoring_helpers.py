"""Data for the monitoring tests: a reference frame, its profile, and batches written the way producers should
(atomically: a hidden temporary file renamed into place)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

COLUMNS = ["x1", "x2", "x3"]


def frame(n: int = 3000, seed: int = 0, shift: float = 0.0, column: str = "x1"):
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({c: rng.normal(0.0, 1.0, n) for c in COLUMNS})
    df[column] = df[column] + shift
    return df


def save_profile(path: Path, seed: int = 0) -> Path:
    from airflow_agentic.drift.profile import ReferenceProfile

    path.parent.mkdir(parents=True, exist_ok=True)
    ReferenceProfile.from_frame(frame(seed=seed), sample_rows=0).save(str(path))
    return path


def write_batch(directory: Path, name: str, df) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    df.to_parquet(tmp, index=False)
    os.replace(tmp, directory / name)
    return directory / name


# A drift that matters (x1 moves by one standard deviation: effect ~0.74) and a harmless one (statistically
# significant on 4,000 rows, effect ~0.11).
def drifted(seed: int = 1):
    return frame(2000, seed=seed, shift=1.0)


def harmless(seed: int = 2):
    return frame(4000, seed=seed, shift=0.15)
