"""Spark and pandas give the same findings and put the same rows in the same place."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import corrupted_batch, make_profile

from airflow_agentic.data.errors import PipelineStopped
from airflow_agentic.data.findings import StewardConfig, inspect_batch
from airflow_agentic.data.steward import QUARANTINE_REASON_COLUMN, steward_batch

pytestmark = pytest.mark.integration
CONFIG = StewardConfig(id_column="row_id", drift=False)


def test_spark_matches_pandas(spark, tmp_path):
    from airflow_agentic.data.spark import inspect_spark, steward_spark

    profile = make_profile()
    batch = corrupted_batch(400)
    batch.loc[40:42, "cat"] = None
    batch.loc[50, "code"] = -999
    path = tmp_path / "batch.parquet"
    batch.to_parquet(path, index=False)

    pandas_findings = inspect_batch(batch, profile, CONFIG)
    spark_findings = inspect_spark(spark.read.parquet(str(path)), profile, CONFIG)
    assert spark_findings.key() == pandas_findings.key()
    samples = {(f.kind, f.column): f.sample_row_ids for f in pandas_findings.items}
    assert {(f.kind, f.column): f.sample_row_ids for f in spark_findings.items} == samples

    p_report = steward_batch(batch, profile, tmp_path / "pandas", config=CONFIG, validate="none")
    s_report = steward_spark(str(path), profile, tmp_path / "spark", spark=spark, config=CONFIG, validate="none")
    assert s_report.counts == p_report.counts
    assert [a["action"] for a in s_report.actions] == [a["action"] for a in p_report.actions]

    def place(directory):
        clean = pd.read_parquet(directory / "clean.parquet")
        quarantine = pd.read_parquet(directory / "quarantine.parquet")
        return (sorted(clean["row_id"].tolist()),
                sorted(zip(quarantine["row_id"].tolist(), quarantine[QUARANTINE_REASON_COLUMN].tolist())))

    assert place(tmp_path / "spark") == place(tmp_path / "pandas")
    assert (tmp_path / "spark" / "_SUCCESS").exists() and (tmp_path / "spark" / "report.json").exists()


def test_gx_on_spark_and_pandas_agree(spark):
    from airflow_agentic.data.validation import validate_frame

    batch = corrupted_batch(300)[["row_id", "x", "cat"]]
    suite = [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": -10, "max_value": 10}},
             {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "cat", "value_set": ["red", "green", "blue"]}},
             {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "row_id"}}]
    on_pandas = validate_frame(batch, suite)
    on_spark = validate_frame(spark.createDataFrame(batch), suite)
    assert on_spark["engine"] == "spark" and not on_spark["success"]
    def failed(result):
        return sorted((r["expectation_config"]["type"], r["result"].get("unexpected_count"))
                      for r in result["results"] if not r["success"])
    assert failed(on_spark) == failed(on_pandas)


def test_spark_stops_on_broken_schema(spark, tmp_path):
    from airflow_agentic.data.spark import steward_spark

    sdf = spark.createDataFrame(corrupted_batch(150).drop(columns=["x"]))
    with pytest.raises(PipelineStopped):
        steward_spark(sdf, make_profile(), tmp_path / "out", config=CONFIG)
    assert not (tmp_path / "out").exists()


def test_spark_bad_input(spark, tmp_path):
    from airflow_agentic.data.errors import StewardInputError
    from airflow_agentic.data.spark import read_spark

    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(StewardInputError, match="bad.parquet"):
        read_spark(spark, bad)
    with pytest.raises(StewardInputError, match="none.parquet"):
        read_spark(spark, tmp_path / "none.parquet")
