"""Drift detection throughput: airflow-agentic builtin vs what a user would otherwise run, in the same process.

Reference and current batches of N rows x 20 numeric columns (half of them shifted), plus a variant with 5
categorical columns. Compared: builtin detect_drift from raw data (profile built in the timed section), from a
stored profile (load + detect, and detect alone on a loaded profile; also with 1 thread), scipy.stats.ks_2samp per
column (+ chi2_contingency for categorical), alibi-detect KSDrift / TabularDrift, Evidently DataDriftPreset (its
defaults). Ratios are "alibi seconds / this row" and "Evidently seconds / this row" from the same run, on wall time
and on CPU time (process time, all threads: the builtin rows use up to 4 threads, so their CPU ratio is the lower
one on an idle machine; on a shared, loaded machine CPU time is the steadier measure). Repeats run in rounds over
all contenders (not one contender's repeats back to back), so a burst of load from elsewhere hits them alike.
Peak memory: tracemalloc peak of a separate untimed run of each contender (tracing slows Python-heavy code).
Equality: max |difference| of the builtin statistic, p-value and Wasserstein-1 against scipy.

    python benchmarks/drift_throughput.py            # 200,000 x 20 (+5 categorical)
    python benchmarks/drift_throughput.py --quick    # small smoke size
    python benchmarks/drift_throughput.py --repeat 3 # best of 3 per contender (shared machines)
"""

from __future__ import annotations

import argparse
import gc
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


def timed(fn) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds of the process) of one run."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def peak_mib(fn) -> float:
    """tracemalloc peak of one run, in a separate run: tracing slows Python-heavy code more than numpy code."""
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run_variant(n: int, n_num: int, n_cat: int, skip: set[str], repeat: int, memory: bool) -> None:
    import scipy.stats as st

    from airflow_agentic.drift import ReferenceProfile, detect_drift

    ref, cur = make_frames(n, n_num, n_cat)
    num_cols = [c for c in ref.columns if c.startswith("x")]
    cat_cols = [c for c in ref.columns if c.startswith("k")]
    print(f"\n=== reference {n:,} rows, current {n:,} rows, {n_num} numeric + {n_cat} categorical columns ===")
    path = Path(tempfile.mkdtemp()) / "profile.npz"
    ReferenceProfile.from_frame(ref, sample_rows=0).save(path)
    loaded = ReferenceProfile.load(path)
    print(f"stored profile: {os.path.getsize(path) / 2**20:.1f} MiB (uncompressed .npz)")
    detect_drift(loaded, cur.iloc[:1000])  # warm-up: lazy imports (scipy.special) are not part of any timing

    def scipy_run():
        out = {c: st.ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()) for c in num_cols}
        for c in cat_cols:
            a, b = ref[c].value_counts(), cur[c].value_counts()
            keys = sorted(set(a.index) | set(b.index))
            table = np.array([[a.get(k, 0) for k in keys], [b.get(k, 0) for k in keys]])
            res = st.chi2_contingency(table)
            out[c] = (res[0], res[1])
        return out

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

    def evidently_run():
        from evidently import Report
        from evidently.presets import DataDriftPreset

        return Report([DataDriftPreset()]).run(cur, ref).dict()

    contenders = [
        ("builtin: raw data (profile + detect)", lambda: detect_drift(ReferenceProfile.from_frame(ref, sample_rows=0),
                                                                      cur)),
        ("builtin: stored profile, load + detect", lambda: detect_drift(ReferenceProfile.load(path), cur)),
        ("builtin: stored profile, detect only", lambda: detect_drift(loaded, cur)),
        ("builtin: detect only, 1 thread", lambda: detect_drift(loaded, cur, threads=1)),
        ("scipy ks_2samp per column", scipy_run),
    ]
    if "alibi" not in skip:
        import alibi_detect.cd  # noqa: F401  (import time not counted)

        contenders.append(("alibi-detect " + ("TabularDrift" if cat_cols else "KSDrift"), alibi_run))
    if "evidently" not in skip:
        import evidently.presets  # noqa: F401

        contenders.append(("Evidently DataDriftPreset", evidently_run))

    # best of ``repeat`` rounds; each round runs every contender once (the machine is shared: the minimum is the
    # least disturbed run, and interleaving spreads bursts of outside load over all contenders)
    outputs: dict[str, object] = {}
    wall = {name: float("inf") for name, _ in contenders}
    cpu = dict(wall)
    for _ in range(repeat):
        for name, fn in contenders:
            outputs[name], w, c = timed(fn)
            wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
    rows = [[name, wall[name], cpu[name], peak_mib(fn) if memory else float("nan")] for name, fn in contenders]

    report = outputs[contenders[1][0]]
    sp = outputs["scipy ks_2samp per column"]
    diff_stat = diff_p = diff_w = 0.0
    for col in report.columns:
        r = sp[col.column]
        stat, p = (r.statistic, r.pvalue) if col.kind == "numeric" else r
        diff_stat, diff_p = max(diff_stat, abs(stat - col.statistic)), max(diff_p, abs(p - col.p_value))
        if col.kind == "numeric":  # outside the timings
            w = st.wasserstein_distance(ref[col.column].to_numpy(), cur[col.column].to_numpy())
            diff_w = max(diff_w, abs(w - col.wasserstein))

    def of(prefix: str, index: int) -> float:
        return next((row[index] for row in rows if row[0].startswith(prefix)), float("nan"))

    alibi, evid, alibi_cpu, evid_cpu = of("alibi", 1), of("Evidently", 1), of("alibi", 2), of("Evidently", 2)
    print(f"{'':40s} {'wall':>8s} {'alibi/':>7s} {'Evid./':>7s} {'CPU':>8s} {'alibi/':>7s} {'Evid./':>7s}")
    print(f"{'contender':40s} {'seconds':>8s} {'this':>7s} {'this':>7s} {'seconds':>8s} {'this':>7s} {'this':>7s} "
          f"{'peak MiB':>9s}")
    for name, seconds, cpu_seconds, mem in rows:
        print(f"{name:40s} {seconds:8.3f} {alibi / seconds:7.1f} {evid / seconds:7.1f} {cpu_seconds:8.3f} "
              f"{alibi_cpu / cpu_seconds:7.1f} {evid_cpu / cpu_seconds:7.1f} {mem:9.1f}")
    print(f"builtin vs scipy: max |statistic diff| = {diff_stat:.3g}, max |p-value diff| = {diff_p:.3g}, "
          f"max |wasserstein diff| = {diff_w:.3g}")
    print(f"goal: >= 10x alibi and >= 30x Evidently for the builtin rows (best of {repeat} round(s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)")
    print(f"builtin: {report.summary()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20,000 rows instead of 200,000")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--skip", default="", help="comma list: alibi,evidently")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of timed runs; the best per contender is "
                                                                "reported")
    parser.add_argument("--no-memory", action="store_true", help="skip the separate tracemalloc runs")
    args = parser.parse_args()
    n = args.rows or (20_000 if args.quick else 200_000)
    skip = {s for s in args.skip.split(",") if s}
    run_variant(n, 20, 0, skip, args.repeat, not args.no_memory)
    run_variant(n, 20, 5, skip, args.repeat, not args.no_memory)


if __name__ == "__main__":
    main()
