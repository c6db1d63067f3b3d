"""Spark and pandas give the same findings and put the same rows in the same place."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import corrupted_batch, make_profile, spark_batch

from airflow_agentic.data.errors import PipelineStopped
from airflow_agentic.data.findings import StewardConfig, inspect_batch
from airflow_agentic.data.pipeline import run_steward
from airflow_agentic.data.steward import QUARANTINE_REASON_COLUMN

pytestmark = pytest.mark.integration
CONFIG = StewardConfig(id_column="row_id", drift=False)


def test_spark_matches_pandas(spark, tmp_path):
    from airflow_agentic.data.spark import inspect_spark

    profile = make_profile()
    batch, path = spark_batch(tmp_path)

    pandas_findings = inspect_batch(batch, profile, CONFIG)
    spark_findings = inspect_spark(spark.read.parquet(str(path)), profile, CONFIG)
    assert spark_findings.key() == pandas_findings.key()
    samples = {(f.kind, f.column): f.sample_row_ids for f in pandas_findings.items}
    assert {(f.kind, f.column): f.sample_row_ids for f in spark_findings.items} == samples

    p_report = run_steward(batch, profile, tmp_path / "pandas", config=CONFIG, validate="none")
    s_report = run_steward(str(path), profile, tmp_path / "spark", engine="spark", spark=spark, config=CONFIG,
                           validate="none")
    assert s_report.counts == p_report.counts
    assert [a["action"] for a in s_report.actions] == [a["action"] for a in p_report.actions]

    def place(directory):
        clean = pd.read_parquet(directory / "clean.parquet")
        quarantine = pd.read_parquet(directory / "quarantine.parquet")
        return (sorted(clean["row_id"].tolist()),
                sorted(zip(quarantine["row_id"].tolist(), quarantine[QUARANTINE_REASON_COLUMN].tolist())))

    assert place(tmp_path / "spark") == place(tmp_path / "pandas")
    assert (tmp_path / "spark" / "_manifest.json").exists() and (tmp_path / "spark" / "report.json").exists()


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
    sdf = spark.createDataFrame(corrupted_batch(150).drop(columns=["x"]))
    with pytest.raises(PipelineStopped):
        run_steward(sdf, make_profile(), tmp_path / "out", engine="spark", config=CONFIG)
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


def test_spark_keeps_the_contract_and_the_arriving_rows(spark, tmp_path):
    """Numbers stored as text, a value that does not parse, sentinels: Spark and pandas put the same rows in the
    same place, the clean output holds numbers, the quarantine holds the rows as they arrived (read through the
    manifest)."""
    import numpy as np

    from airflow_agentic.data import io as dio

    profile = make_profile()
    batch = corrupted_batch(200)
    batch["x"] = batch["x"].map(lambda v: f"{v}")
    batch.loc[60, "x"] = "garbage"
    path = tmp_path / "batch.parquet"
    batch.to_parquet(path, index=False)

    p_report = run_steward(batch, profile, tmp_path / "pandas", config=CONFIG, validate="none")
    s_report = run_steward(str(path), profile, tmp_path / "spark", engine="spark", spark=spark, config=CONFIG,
                           validate="none")
    assert s_report.counts == p_report.counts and p_report.counts["by_reason"]["type_mismatch"] == 1
    assert "coerce_types" in [a["action"] for a in s_report.actions]
    out = {}
    for engine in ("pandas", "spark"):
        clean = dio.read_output(tmp_path / engine, "clean.parquet")
        quarantine = dio.read_output(tmp_path / engine, "quarantine.parquet")
        assert clean["x"].dtype == np.float64
        assert list(quarantine.columns) == [*batch.columns, QUARANTINE_REASON_COLUMN]
        out[engine] = (sorted(clean["row_id"]), sorted(zip(quarantine["row_id"], quarantine["x"],
                                                           quarantine[QUARANTINE_REASON_COLUMN])))
    assert out["spark"] == out["pandas"]
    assert len(dio.read_batch(tmp_path / "spark" / "clean.parquet")) == s_report.counts["clean"]  # part files
    arrived = dict((r, x) for r, x, _ in out["spark"][1])
    assert arrived[batch.loc[60, "row_id"]] == "garbage" and arrived[batch.loc[0, "row_id"]] == "-999.0"


def test_spark_rename_exchanges_in_one_step_and_refuses_overwrites(spark):
    from airflow_agentic.data.findings import RenameError
    from airflow_agentic.data.spark import SparkBatchState, spark_rename_columns

    frame = pd.DataFrame({"row_id": [1, 2], "x": [1.0, 2.0], "y": [10.0, 20.0]})
    state = SparkBatchState.from_frame(spark.createDataFrame(frame), make_profile(), CONFIG)
    try:
        with pytest.raises(RenameError, match="onto the existing column 'y'"):
            spark_rename_columns(state, {"x": "y"})
        spark_rename_columns(state, {"x": "y", "y": "x"})
        got = state.sdf.select("row_id", "x", "y").toPandas()
        assert got["x"].tolist() == [10.0, 20.0] and got["y"].tolist() == [1.0, 2.0]
        assert state.current_names == {"row_id": "row_id", "x": "y", "y": "x"}
    finally:
        state.release()


def test_spark_quarantining_most_rows_by_id_needs_approval(spark, tmp_path):
    from airflow_agentic.agents.approval import auto_approve
    from airflow_agentic.agents.decision import Decision, finish
    from airflow_agentic.data.pipeline import StewardPipeline

    class Script:
        def __init__(self, *decisions):
            self.decisions = list(decisions)

        def plan(self, ctx):
            if not self.decisions:
                return finish("done")
            return Decision(*self.decisions.pop(0), "scripted")

        def describe(self):
            return {"kind": "script"}

    batch = corrupted_batch(120)
    ids = batch["row_id"].tolist()[:100]
    step = ("quarantine_rows", {"row_ids": ids, "reason": "looks odd"})
    sdf = spark.createDataFrame(batch)
    refused = StewardPipeline(sdf, profile=make_profile(), output=tmp_path / "refused", engine="spark",
                              config=CONFIG, validate="none")
    refused.prepare()
    run = refused.run_agent(planner=Script(step))
    assert run.steps[0].status == "rejected" and "destructive" in run.steps[0].verdict_reason
    assert refused.complete(run).counts["quarantined"] < 60  # only what the rules found
    approved = StewardPipeline(sdf, profile=make_profile(), output=tmp_path / "approved", engine="spark",
                               config=CONFIG, validate="none")
    approved.prepare()
    run = approved.run_agent(planner=Script(step), approver=auto_approve)
    assert run.steps[0].status == "ok"
    assert approved.complete(run).counts["by_reason"]["looks odd"] == 100
