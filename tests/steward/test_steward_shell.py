"""DataStewardOperator is a thin shell over the steward pipeline: it passes config, approvals and paths through and
turns the pipeline's clear errors into task failures that write nothing."""

from __future__ import annotations

import pytest

from steward_helpers import helpers


class _TI:
    dag_id, run_id, task_id, map_index = "steward_shell", "manual_1", "steward", -1

    def __init__(self):
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


def _run(op):
    ti = _TI()
    return op.execute({"ti": ti, "task_instance": ti, "outlet_events": {}}), ti


def _op(tmp_path, source, out, **kwargs):
    from airflow_agentic.operators.steward import DataStewardOperator

    return DataStewardOperator(task_id="steward", source=str(source), output=str(out),
                               profile=str(tmp_path / "reference.npz"), id_column="row_id", validate="none",
                               journal_path=f"file://{tmp_path}/journal/{out.name}", **kwargs)


def test_share_setting_and_approvals_reach_the_pipeline(tmp_path):
    from airflow_agentic.data import io as dio

    helpers.make_profile().save(str(tmp_path / "reference.npz"))
    batch = helpers.corrupted_batch(300)
    batch.to_parquet(tmp_path / "batch.parquet", index=False)
    # No approvals for this task: quarantining above the (tiny) share goes ahead.
    report, ti = _run(_op(tmp_path, tmp_path / "batch.parquet", tmp_path / "free", approval_for=[],
                          config={"max_quarantine_share": 0.01}))
    assert report["counts"]["quarantined"] > 3 and ti.xcom["agent_run"]["status"] == "finished"
    assert dio.read_manifest(tmp_path / "free")["counts"] == report["counts"]


def test_clear_failures_write_nothing(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from airflow.sdk.exceptions import AirflowFailException

    helpers.make_profile().save(str(tmp_path / "reference.npz"))
    frame = helpers.corrupted_batch(50)
    names = [*frame.columns, "x"]
    table = pa.Table.from_arrays([pa.array(frame[c].to_numpy()) for c in names], names=names)
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(AirflowFailException, match=r"dup.parquet: duplicate column names \['x'\]"):
        _run(_op(tmp_path, tmp_path / "dup.parquet", tmp_path / "out-dup"))
    assert not (tmp_path / "out-dup").exists()
    with pytest.raises(ValueError, match="unknown steward config field"):
        _run(_op(tmp_path, tmp_path / "dup.parquet", tmp_path / "out-cfg", config={"nope": 1}))
