"""Small drift scenarios in the backtest's folder layout, of every kind the flywheel must handle.

make_stream(kind, out_root, ...) writes out_root/<name>/{scenario.json, batches/NNNN.parquet} and returns the
truth ({"drifts", "corrupted_rows", "batches", ...}); write_truth() stores truths the way score.py reads them.
Kinds: stationary, abrupt, gradual, recurring, covariate_harmless, covariate_harmful, label_prior, corrupted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

KINDS = ("stationary", "abrupt", "gradual", "recurring", "covariate_harmless", "covariate_harmful", "label_prior",
         "corrupted")


def _concept(x: np.ndarray, which: int) -> np.ndarray:
    if which == 0:
        return (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    if which == 1:
        return (x[:, 0] - 0.5 * x[:, 1] - 1.0 > 0).astype(int)
    if which == 2:
        return (x[:, 0] ** 2 + x[:, 1] > 1.0).astype(int)  # a curved boundary (harmless covariate shift)
    return (np.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1] > 0).astype(int)  # a wavy one (harmful covariate shift)


def _rows(rng: np.random.Generator, n: int, mean: np.ndarray, which: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 4)) + mean
    y = _concept(x, which)
    flip = rng.random(n) < noise
    y[flip] = 1 - y[flip]
    return x, y


def make_stream(kind: str, out_root: str | Path, *, n_batches: int = 40, rows: int = 1000, warmup: int = 5,
                drift_at: int = 15, label_delay: int = 0, seed: int = 0, noise: float = 0.05,
                name: str | None = None) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: {KINDS}")
    rng = np.random.default_rng(seed)
    name = name or f"{kind}{'_delay' + str(label_delay) if label_delay else ''}"
    folder = Path(out_root) / name
    (folder / "batches").mkdir(parents=True, exist_ok=True)
    drifts: list[int] = []
    corrupted: dict[str, list[int]] = {}
    second = drift_at + (n_batches - drift_at) // 2
    for b in range(n_batches):
        mean = np.zeros(4)
        which = 0
        if kind == "abrupt" and b >= drift_at:
            which = 1
        elif kind == "gradual":
            share = min(max((b - drift_at + 1) / 6, 0.0), 1.0)  # old -> new concept over six batches
            which = -1 if 0 < share < 1 else (1 if share >= 1 else 0)
        elif kind == "recurring":
            which = 1 if drift_at <= b < second else 0
        elif kind == "covariate_harmless" and b >= drift_at:
            mean = np.array([0.0, 0.0, 2.0, -1.5])  # only irrelevant features move
        elif kind == "covariate_harmful" and b >= drift_at:
            mean = np.array([3.0, 0.0, 0.0, 0.0])  # into a region of the wave never seen in training
        if kind in ("covariate_harmless", "covariate_harmful"):
            which = 2 if kind == "covariate_harmless" else 3
        if which == -1:
            share = min(max((b - drift_at + 1) / 6, 0.0), 1.0)
            x, y0 = _rows(rng, rows, mean, 0, noise)
            y1 = _concept(x, 1)
            flip = rng.random(rows) < noise
            y1[flip] = 1 - y1[flip]
            y = np.where(rng.random(rows) < share, y1, y0)
        elif kind == "label_prior" and b >= drift_at:
            # Same P(x | y), class 1 goes from about half to 85 % of the rows.
            x_all, y_all = _rows(rng, rows * 6, mean, 0, noise)
            ones, zeros = np.flatnonzero(y_all == 1), np.flatnonzero(y_all == 0)
            n1 = int(rows * 0.85)
            pick = np.concatenate([ones[:n1], zeros[: rows - n1]])
            rng.shuffle(pick)
            x, y = x_all[pick], y_all[pick]
        else:
            x, y = _rows(rng, rows, mean, which, noise)
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])
        frame.insert(0, "row_id", np.arange(b * rows, (b + 1) * rows, dtype="int64"))
        frame["label"] = y
        if kind == "corrupted" and b in (8, 9, drift_at, n_batches - 5):
            frame, bad = _corrupt(frame, rng)
            corrupted[str(b)] = bad
        frame.to_parquet(folder / "batches" / f"{b:04d}.parquet", index=False)
    if kind in ("abrupt", "covariate_harmful", "label_prior"):
        drifts = [drift_at]
    elif kind == "gradual":
        drifts = [drift_at]
    elif kind == "recurring":
        drifts = [drift_at, second]
    meta = {"name": name, "target": "label", "id_column": "row_id", "task": "classification",
            "warmup_batches": warmup, "label_delay": label_delay}
    (folder / "scenario.json").write_text(json.dumps(meta, indent=2) + "\n")
    return {"name": name, "drifts": drifts, "batches": n_batches, "warmup_batches": warmup,
            "corrupted_rows": corrupted, "kind": kind}


def _corrupt(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, list[int]]:
    """Nulls in 4 %, -999 sentinels in 4 % and exact duplicates of other rows in 3 % of the rows."""
    frame = frame.copy()
    n = len(frame)
    order = rng.permutation(n)
    nulls, sentinels, dups = order[: n // 25], order[n // 25: 2 * n // 25], order[2 * n // 25: 2 * n // 25 + n // 33]
    cols = [c for c in frame.columns if c.startswith("x")]
    for r in nulls:
        frame.loc[r, rng.choice(cols)] = np.nan
    for r in sentinels:
        frame.loc[r, rng.choice(cols)] = -999.0
    sources = order[-len(dups):]
    frame.iloc[dups] = frame.iloc[sources].to_numpy()  # a copied row, row id included
    frame["row_id"] = frame["row_id"].astype("int64")
    frame["label"] = frame["label"].astype("int64")
    bad = sorted({int(v) for v in frame.loc[np.concatenate([nulls, sentinels, dups]), "row_id"]})
    return frame, bad


def write_truth(out_root: str | Path, truths: list[dict]) -> None:
    out_root = Path(out_root)
    (out_root / "truth.json").write_text(json.dumps({t["name"]: t for t in truths}, indent=1) + "\n")
