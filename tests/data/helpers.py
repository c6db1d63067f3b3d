"""Small shared data for the steward tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def reference_frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "row_id": np.arange(n, dtype=np.int64),
        "x": rng.normal(size=n),
        "y": rng.uniform(0, 10, n),
        "cat": rng.choice(["red", "green", "blue"], n),
        "code": rng.integers(0, 4, n),
        "label": rng.integers(0, 2, n),
    })


def make_profile(ref: pd.DataFrame | None = None):
    from airflow_agentic.drift.profile import ReferenceProfile

    ref = reference_frame() if ref is None else ref
    return ReferenceProfile.from_frame(ref, categorical=["code", "label"], exclude=["row_id"], target="label")


def corrupted_batch(n: int = 1000, seed: int = 1) -> pd.DataFrame:
    batch = reference_frame(n, seed)
    batch["row_id"] += 100_000
    batch.loc[0:9, "x"] = -999.0
    batch.loc[10:19, "y"] = np.nan
    batch.loc[20:24, "cat"] = " RED "
    batch.loc[25:29, "cat"] = "purple"
    batch.loc[30, "y"] = 1e9
    batch.loc[31, "y"] = 13.0  # beyond 10 + 0.25 x span
    batch.loc[32, "code"] = 7
    batch.loc[33, "x"] = np.inf
    batch = pd.concat([batch, batch.iloc[100:110]], ignore_index=True)  # exact duplicates
    dup_id = batch.iloc[[min(200, len(batch) - 1)]].copy()
    dup_id["x"] = 0.5
    return pd.concat([batch, dup_id], ignore_index=True)  # same id, different content


def spark_batch(directory) -> tuple[pd.DataFrame, object]:
    """The Spark tests' batch: ``corrupted_batch(400)`` plus missing categories and a sentinel code, as a frame and as
    the parquet file Spark reads."""
    batch = corrupted_batch(400)
    batch.loc[40:42, "cat"] = None
    batch.loc[50, "code"] = -999
    path = directory / "batch.parquet"
    batch.to_parquet(path, index=False)
    return batch, path
