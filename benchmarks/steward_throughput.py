"""Steward throughput: the steward pipeline exactly as DataStewardOperator runs it (``StewardPipeline``: read,
inspect, the steward agent through the agent loop with the rule planner, schema contract, GX-validate once, split,
write with the manifest) on pandas and on Spark local, against what a user would otherwise run: Great Expectations
validation alone of the same suite.

    .venv/bin/python benchmarks/steward_throughput.py [--rows 1000000] [--quick] [--no-spark]

1,000,000 rows x 20 columns by default (``--rows 200000`` on a busy machine, ``--quick`` = 100,000), 5 % corrupted
rows (nulls, sentinels, duplicates, bad categories). Goal: pandas steward pass <= 1.5 x GX validation alone. Spark
runs in local mode (``SPARK_MASTER``, default local[2]); its JVM start and first-query compilation are paid on a
20,000-row warm-up batch before the timed runs (GX on pandas gets a warm-up too). The pandas and Spark outputs are
read back and compared row by row (same clean and quarantined row ids, same reasons, same order).
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


def jvm_cpu_seconds(spark) -> float | None:
    """CPU seconds of the local Spark JVM so far (None when it is not a local process we can read)."""
    try:
        pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except Exception:  # noqa: BLE001 - the figure is informative only
        return None


def placement(directory: Path) -> tuple[list, list]:
    from airflow_agentic.data.io import read_output  # checks the folder's manifest and every checksum

    clean = read_output(directory, "clean.parquet")
    quarantine = read_output(directory, "quarantine.parquet")
    return clean["row_id"].tolist(), list(zip(quarantine["row_id"], quarantine["_quarantine_reason"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args()
    n = 100_000 if args.quick else args.rows

    from airflow_agentic.data.findings import StewardConfig
    from airflow_agentic.data.pipeline import StewardPipeline
    from airflow_agentic.data.validation import suite_from_profile, validate_frame
    from airflow_agentic.drift.profile import ReferenceProfile

    t = time.perf_counter()
    reference, batch = make_data(n)
    print(f"data: {n:,} rows x {batch.shape[1]} columns, generated in {time.perf_counter() - t:.1f}s")
    profile = ReferenceProfile.from_frame(reference, categorical=["label"], exclude=["row_id"], target="label")
    config = StewardConfig(id_column="row_id")
    suite = suite_from_profile(profile, id_column="row_id", range_tolerance=config.range_tolerance)
    print(f"suite: {len(suite['expectations'])} expectations")
    rows: list[tuple[str, float, float | None, str]] = []  # what, seconds, cpu seconds, note

    validate_frame(batch.head(1000), suite)  # warm up: GX import and first-use costs are not throughput
    t, c = time.perf_counter(), time.process_time()
    gx_result = validate_frame(batch, suite)
    gx_seconds = time.perf_counter() - t
    rows.append(("GX validation alone (pandas)", gx_seconds, time.process_time() - c,
                 f"success={gx_result['success']}"))

    with tempfile.TemporaryDirectory() as tmp:
        # The operator's sequence: prepare (read + inspect), the agent loop, complete (settle, GX, split, write).
        t, c = time.perf_counter(), time.process_time()
        report = StewardPipeline(batch, profile=profile, output=Path(tmp) / "pandas", config=config,
                                 suite=suite).run()
        pandas_seconds = time.perf_counter() - t
        rows.append(("steward pass (pandas)", pandas_seconds, time.process_time() - c,
                     f"clean={report.counts['clean']:,} quarantined={report.counts['quarantined']:,}"))
        pandas_phases = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items() if k != "total")

        spark_seconds = gx_spark_seconds = None
        if not args.no_spark:
            from pyspark.sql import SparkSession

            spark = (SparkSession.builder.master(os.environ.get("SPARK_MASTER", "local[2]"))
                     .appName("steward-bench").config("spark.ui.enabled", "false")
                     .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "4g")
                     .getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
            path = Path(tmp) / "batch.parquet"
            batch.to_parquet(path, index=False)
            warm = Path(tmp) / "warm.parquet"
            batch.head(20_000).to_parquet(warm, index=False)
            t = time.perf_counter()
            validate_frame(spark.read.parquet(str(warm)), suite, engine="spark")
            StewardPipeline(str(warm), profile=profile, output=Path(tmp) / "warm", engine="spark", spark=spark,
                            config=config, suite=suite).run()
            warm_seconds = time.perf_counter() - t

            sdf = spark.read.parquet(str(path))
            t, c = time.perf_counter(), jvm_cpu_seconds(spark)
            gx_spark = validate_frame(sdf, suite, engine="spark")
            gx_spark_seconds = time.perf_counter() - t
            c2 = jvm_cpu_seconds(spark)
            rows.append(("GX validation alone (spark)", gx_spark_seconds, c2 - c if c is not None else None,
                         f"success={gx_spark['success']}"))
            t = time.perf_counter()
            sreport = StewardPipeline(str(path), profile=profile, output=Path(tmp) / "spark", engine="spark",
                                      spark=spark, config=config, suite=suite).run()
            spark_seconds = time.perf_counter() - t
            c3 = jvm_cpu_seconds(spark)
            rows.append(("steward pass (spark local)", spark_seconds, c3 - c2 if c2 is not None else None,
                         f"clean={sreport.counts['clean']:,} quarantined={sreport.counts['quarantined']:,}"))
            spark_phases = ", ".join(f"{k} {v:.2f}s" for k, v in sreport.timings.items() if k != "total")
            same_counts = report.counts == sreport.counts
            same_rows = placement(Path(tmp) / "pandas") == placement(Path(tmp) / "spark")
            spark.stop()

    print(f"\n{'pass':32s} {'seconds':>9s} {'cpu s':>8s} {'rows/s':>12s}  note")
    for what, seconds, cpu, note in rows:
        cpu_text = f"{cpu:8.1f}" if cpu is not None else f"{'-':>8s}"
        print(f"{what:32s} {seconds:9.2f} {cpu_text} {n / seconds:12,.0f}  {note}")
    print(f"\npandas phases: {pandas_phases}")
    print(f"quarantined by reason: {report.counts['by_reason']}")
    print(f"\nratio pandas steward / GX alone (pandas): {pandas_seconds / gx_seconds:.2f}x (goal <= 1.5x)")
    print(f"(GX inside the steward pass validates the clean rows: {report.timings.get('validate', 0):.2f}s)")
    if spark_seconds is not None:
        print(f"spark phases: {spark_phases} (JVM start and warm-up on 20,000 rows: {warm_seconds:.1f}s, not counted)")
        print(f"ratio spark steward / GX alone (spark): {spark_seconds / gx_spark_seconds:.2f}x")
        print(f"ratio spark steward / pandas steward: {spark_seconds / pandas_seconds:.2f}x")
        print(f"pandas and spark: same counts {same_counts}, same clean and quarantined row ids, reasons and order "
              f"{same_rows}")


if __name__ == "__main__":
    main()
