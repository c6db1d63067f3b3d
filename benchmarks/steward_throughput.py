"""Steward throughput: the full pandas steward pass (inspect, clean, quarantine, GX-validate once, write) and the
Spark local pass, against what a user would otherwise run: Great Expectations validation alone of the same suite.

    .venv/bin/python benchmarks/steward_throughput.py [--quick] [--no-spark]

1,000,000 rows x 20 columns (100,000 with --quick), 5 % corrupted rows (nulls, sentinels, duplicates, bad
categories). Goal: pandas steward pass <= 1.5 x GX validation alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


def make_data(n: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)

    def frame(rows: int, start: int):
        data = {"row_id": np.arange(start, start + rows, dtype=np.int64)}
        for i in range(14):
            data[f"f{i}"] = rng.normal(loc=i, scale=1 + i / 10, size=rows)
        for i in range(4):
            data[f"c{i}"] = rng.choice(["red", "green", "blue", "amber"], size=rows)
        data["label"] = rng.integers(0, 3, size=rows)
        return pd.DataFrame(data)

    reference = frame(200_000, 0)
    batch = frame(n, 10_000_000)
    k = n // 80  # 4 kinds x 1.25 % = 5 %
    rows = rng.permutation(n)[: 4 * k]
    nulls, sentinels, dups, cats = rows[:k], rows[k:2 * k], rows[2 * k:3 * k], rows[3 * k:]
    f = rng.integers(0, 14, size=k)
    for j in range(14):
        sel = nulls[f == j]
        batch.loc[sel, f"f{j}"] = np.nan
        sel = sentinels[f == j]
        batch.loc[sel, f"f{j}"] = -999.0
    # duplicates: exact copies of earlier rows (id included)
    sources = rng.integers(0, n, size=k)
    batch.iloc[dups] = batch.iloc[sources].to_numpy()
    batch["row_id"] = batch["row_id"].astype(np.int64)
    batch["label"] = batch["label"].astype(np.int64)
    half = len(cats) // 2
    batch.loc[cats[:half], "c0"] = " RED "
    batch.loc[cats[half:], "c1"] = "purple"
    return reference, batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100k rows instead of 1M")
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000

    from airflow_agentic.data.findings import StewardConfig
    from airflow_agentic.data.steward import steward_batch
    from airflow_agentic.data.validation import suite_from_profile, validate_frame
    from airflow_agentic.drift.profile import ReferenceProfile

    t = time.perf_counter()
    reference, batch = make_data(n)
    print(f"data: {n:,} rows x {batch.shape[1]} columns, generated in {time.perf_counter() - t:.1f}s")
    profile = ReferenceProfile.from_frame(reference, categorical=["label"], exclude=["row_id"], target="label")
    config = StewardConfig(id_column="row_id")
    suite = suite_from_profile(profile, id_column="row_id", range_tolerance=config.range_tolerance)
    print(f"suite: {len(suite['expectations'])} expectations")

    validate_frame(batch.head(1000), suite)  # warm up: GX import and first-use costs are not throughput
    t = time.perf_counter()
    gx_result = validate_frame(batch, suite)
    gx_seconds = time.perf_counter() - t
    print(f"GX validation alone (pandas): {gx_seconds:7.2f}s  {n / gx_seconds:12,.0f} rows/s  "
          f"success={gx_result['success']}")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        report = steward_batch(batch, profile, Path(tmp) / "pandas", config=config, suite=suite)
        pandas_seconds = time.perf_counter() - t
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items() if k != "total")
        print(f"steward pass (pandas):        {pandas_seconds:7.2f}s  {n / pandas_seconds:12,.0f} rows/s  "
              f"clean={report.counts['clean']:,} quarantined={report.counts['quarantined']:,} "
              f"{report.counts['by_reason']}")
        print(f"  phases: {phases}")
        print(f"ratio pandas steward / GX alone: {pandas_seconds / gx_seconds:.2f}x (goal <= 1.5x)")

        if not args.no_spark:
            from pyspark.sql import SparkSession

            from airflow_agentic.data.spark import steward_spark

            spark = (SparkSession.builder.master(os.environ.get("SPARK_MASTER", "local[2]"))
                     .appName("steward-bench").config("spark.ui.enabled", "false")
                     .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "4g")
                     .getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
            path = Path(tmp) / "batch.parquet"
            batch.to_parquet(path, index=False)
            sdf = spark.read.parquet(str(path))
            t = time.perf_counter()
            gx_spark = validate_frame(sdf, suite, engine="spark")
            gx_spark_seconds = time.perf_counter() - t
            print(f"GX validation alone (spark):  {gx_spark_seconds:7.2f}s  {n / gx_spark_seconds:12,.0f} rows/s  "
                  f"success={gx_spark['success']}")
            t = time.perf_counter()
            sreport = steward_spark(str(path), profile, Path(tmp) / "spark", spark=spark, config=config, suite=suite)
            spark_seconds = time.perf_counter() - t
            print(f"steward pass (spark local):   {spark_seconds:7.2f}s  {n / spark_seconds:12,.0f} rows/s  "
                  f"clean={sreport.counts['clean']:,} quarantined={sreport.counts['quarantined']:,} "
                  f"{sreport.counts['by_reason']}")
            print(f"ratio spark steward / GX spark alone: {spark_seconds / gx_spark_seconds:.2f}x")
            same = report.counts == {k: v for k, v in sreport.counts.items()}
            print(f"pandas and spark counts identical: {same}")
            spark.stop()


if __name__ == "__main__":
    main()
