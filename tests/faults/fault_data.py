"""Data of the fault suite: a batch with the corruptions of issue 14 (numbers stored as text, unparseable text,
sentinels, inf, nulls, duplicates) and the row accounting every fault test checks after a retry."""

from __future__ import annotations

import numpy as np
import pandas as pd

ID = "row_id"


def reference(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        ID: np.arange(n, dtype=np.int64),
        "x": rng.normal(size=n),
        "y": rng.uniform(0, 10, n),
        "cat": rng.choice(["red", "green", "blue"], n),
        "label": rng.integers(0, 2, n),
    })


def profile():
    from airflow_agentic.drift.profile import ReferenceProfile

    return ReferenceProfile.from_frame(reference(), categorical=["label"], exclude=[ID], target="label")


def corrupted(n: int = 300, seed: int = 1, start_id: int = 100_000) -> pd.DataFrame:
    """``x`` arrives as text (as a CSV export would give it): every value parses except the ``garbage`` ones."""
    batch = reference(n, seed)
    batch[ID] += start_id
    batch.loc[0:4, "y"] = -999.0
    batch.loc[5:9, "y"] = np.nan
    batch.loc[10, "y"] = np.inf
    batch.loc[11:13, "cat"] = "purple"
    x = batch["x"].map(lambda v: f"{v:.6f}")
    x.iloc[14:17] = "garbage"
    batch["x"] = x.astype(object)
    return pd.concat([batch, batch.iloc[20:25]], ignore_index=True)  # exact duplicates


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [tuple(str(v) for v in row) for row in frame[columns].itertuples(index=False)]


def accounting(source: pd.DataFrame, clean: pd.DataFrame, quarantine: pd.DataFrame) -> dict[str, int]:
    """Rows in = clean + quarantined, every input id exactly once (duplicates as often as they came), and every
    quarantined row exactly as it arrived. ``silent_wrong`` counts what breaks any of it without an error."""
    from collections import Counter

    wrong = 0
    ids_in = Counter(source[ID].tolist())
    ids_out = Counter(clean[ID].tolist()) + Counter(quarantine[ID].tolist())
    wrong += sum(((ids_in - ids_out) + (ids_out - ids_in)).values())  # lost or duplicated rows
    originals = Counter(_rows(source, list(source.columns)))
    kept = Counter(_rows(quarantine, list(source.columns)))
    wrong += sum((kept - originals).values())  # quarantined rows whose values changed
    wrong += int(pd.to_numeric(clean["x"], errors="coerce").isna().sum())  # the schema contract: x is a number
    return {"rows_in": len(source), "clean": len(clean), "quarantined": len(quarantine), "silent_wrong": wrong}
