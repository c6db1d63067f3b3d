"""The Spark engine of DataStewardOperator (local Spark): the same rows clean and quarantined as pandas."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


class _TI:
    dag_id, run_id, task_id, map_index = "steward_spark", "manual_1", "steward", -1

    def __init__(self):
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


def test_spark_engine_matches_pandas(spark, steward_files, tmp_path):
    from airflow_agentic.operators.steward import DataStewardOperator

    results = {}
    for engine in ("pandas", "spark"):
        out = tmp_path / engine
        op = DataStewardOperator(task_id=f"steward_{engine}", source=str(steward_files["batch"]), output=str(out),
                                 profile=str(steward_files["profile"]), id_column="row_id", engine=engine,
                                 validate="none", journal_path=f"file://{tmp_path}/journal/{engine}")
        ti = _TI()
        report = op.execute({"ti": ti, "task_instance": ti, "outlet_events": {}})
        assert ti.xcom["agent_run"]["status"] == "finished"
        results[engine] = (report, pd.read_parquet(out / "clean.parquet"), pd.read_parquet(out / "quarantine.parquet"))
    (pr, pc, pq), (sr, sc, sq) = results["pandas"], results["spark"]
    assert sr["engine"] == "spark" and sr["counts"] == pr["counts"]
    assert sorted(sc["row_id"]) == sorted(pc["row_id"])
    assert sorted(zip(sq["row_id"], sq["_quarantine_reason"])) == sorted(zip(pq["row_id"], pq["_quarantine_reason"]))
