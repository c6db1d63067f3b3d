"""Drift detection throughput: airflow-agentic builtin vs what a user would otherwise run, in the same process.

Reference and current batches of N rows x 20 numeric columns (half of them shifted), plus a variant with 5
categorical columns. Compared: builtin detect_drift from raw data (profile built in the timed section) and from a
stored profile (loaded from disk in the timed section), scipy.stats.ks_2samp per column (+ chi2_contingency for
categorical), alibi-detect KSDrift / TabularDrift, Evidently DataDriftPreset (its defaults).
Peak memory: tracemalloc peak inside each timed section (tracing is on for every contender alike).

    python benchmarks/drift_throughput.py            # 200,000 x 20 (+5 categorical)
    python benchmarks/drift_throughput.py --quick    # small smoke size
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)


def make_frames(n: int, n_num: int, n_cat: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    ref = {f"x{i}": rng.normal(size=n) for i in range(n_num)}
    cur = {f"x{i}": rng.normal(loc=0.05 if i % 2 else 0.0, size=n) for i in range(n_num)}
    cats = np.array([f"c{j}" for j in range(10)], dtype=object)
    p_ref = np.full(10, 0.1)
    p_cur = np.r_[0.14, np.full(9, 0.86 / 9)]
    for i in range(n_cat):
        ref[f"k{i}"] = rng.choice(cats, size=n, p=p_ref)
        cur[f"k{i}"] = rng.choice(cats, size=n, p=p_cur if i % 2 else p_ref)
    return pd.DataFrame(ref), pd.DataFrame(cur)


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def run_variant(n: int, n_num: int, n_cat: int, skip: set[str]) -> None:
    import scipy.stats as st

    from airflow_agentic.drift import ReferenceProfile, detect_drift

    ref, cur = make_frames(n, n_num, n_cat)
    num_cols = [c for c in ref.columns if c.startswith("x")]
    cat_cols = [c for c in ref.columns if c.startswith("k")]
    print(f"\n=== reference {n:,} rows, current {n:,} rows, {n_num} numeric + {n_cat} categorical columns ===")
    rows = []

    def builtin_raw():
        profile = ReferenceProfile.from_frame(ref, sample_rows=0)
        return detect_drift(profile, cur)

    report, s, mem = measure(builtin_raw)
    rows.append(("builtin (raw: profile + detect)", s, mem))
    path = Path(tempfile.mkdtemp()) / "profile.npz"
    ReferenceProfile.from_frame(ref, sample_rows=0).save(path)
    print(f"stored profile: {os.path.getsize(path) / 2**20:.1f} MiB")
    report, s, mem = measure(lambda: detect_drift(ReferenceProfile.load(path), cur))
    rows.append(("builtin (stored profile)", s, mem))

    def scipy_run():
        out = {c: st.ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()) for c in num_cols}
        for c in cat_cols:
            a, b = ref[c].value_counts(), cur[c].value_counts()
            keys = sorted(set(a.index) | set(b.index))
            table = np.array([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]])
            res = st.chi2_contingency(table)
            out[c] = (res[0], res[1])
        return out

    sp, s, mem = measure(scipy_run)
    rows.append(("scipy per column", s, mem))

    diffs_stat, diffs_p = [], []
    for col in report.columns:
        r = sp[col.column]
        stat, p = (r.statistic, r.pvalue) if col.kind == "numeric" else r
        diffs_stat.append(abs(stat - col.statistic))
        diffs_p.append(abs(p - col.p_value))

    if "alibi" not in skip:
        def alibi_run():
            from alibi_detect.cd import KSDrift, TabularDrift

            if cat_cols:
                x_ref = ref[num_cols + cat_cols].copy()
                x_cur = cur[num_cols + cat_cols].copy()
                for c in cat_cols:
                    codes = {k: i for i, k in enumerate(sorted(set(x_ref[c]) | set(x_cur[c])))}
                    x_ref[c] = x_ref[c].map(codes)
                    x_cur[c] = x_cur[c].map(codes)
                cpf = {len(num_cols) + i: None for i in range(len(cat_cols))}
                det = TabularDrift(x_ref.to_numpy(dtype=np.float64), p_val=0.05, categories_per_feature=cpf)
                return det.predict(x_cur.to_numpy(dtype=np.float64))
            det = KSDrift(ref[num_cols].to_numpy(), p_val=0.05)
            return det.predict(cur[num_cols].to_numpy())

        import alibi_detect.cd  # noqa: F401  (import time not counted)

        _, s, mem = measure(alibi_run)
        rows.append(("alibi-detect " + ("TabularDrift" if cat_cols else "KSDrift"), s, mem))
    if "evidently" not in skip:
        def evidently_run():
            from evidently import Report
            from evidently.presets import DataDriftPreset

            return Report([DataDriftPreset()]).run(cur, ref).dict()

        import evidently.presets  # noqa: F401

        _, s, mem = measure(evidently_run)
        rows.append(("Evidently DataDriftPreset", s, mem))

    base = rows[1][1]
    print(f"{'contender':36s} {'seconds':>9s} {'x stored':>9s} {'peak MiB':>9s}")
    for name, s, mem in rows:
        print(f"{name:36s} {s:9.3f} {s / base:9.1f} {mem:9.1f}")
    print(f"max |statistic - scipy| = {max(diffs_stat):.3g}, max |p - scipy| = {max(diffs_p):.3g}")
    print(f"builtin: {report.summary()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20,000 rows instead of 200,000")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--skip", default="", help="comma list: alibi,evidently")
    args = parser.parse_args()
    n = args.rows or (20_000 if args.quick else 200_000)
    skip = {s for s in args.skip.split(",") if s}
    run_variant(n, 20, 0, skip)
    run_variant(n, 20, 5, skip)


if __name__ == "__main__":
    main()
