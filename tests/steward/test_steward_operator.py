"""DataStewardOperator through dag.test() on local files and on S3 (moto), and the StewardAgent's guardrails."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dagbag import load_dag  # tests/steward/conftest.py (imported at collection)

pytestmark = [
    pytest.mark.integration,
]


def _xcom(dr, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id, key=key).one()
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


def _asset_events(dr):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetEvent).filter_by(source_dag_id=dr.dag_id, source_run_id=dr.run_id).all()
        return [(e.asset.uri if e.asset else None, dict(e.extra or {})) for e in rows]


def _state(dr, task_id="steward"):
    return next(ti.state for ti in dr.get_task_instances() if ti.task_id == task_id)


def test_operator_on_local_files(airflow_db, steward_files):
    out = steward_files["root"] / "out"
    dag = load_dag("agentic_test_steward")
    dr = dag.test(run_conf={"source": str(steward_files["batch"]), "output": f"file://{out}",
                            "profile": str(steward_files["profile"])})
    assert dr.state == "success"
    report = _xcom(dr, "steward")
    n = len(steward_files["frame"])
    counts = report["counts"]
    assert counts["input"] == n and counts["clean"] + counts["quarantined"] == n
    assert counts["by_reason"]["duplicate"] == 10 and counts["by_reason"]["sentinel"] >= 11
    clean = pd.read_parquet(out / "clean.parquet")
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    assert len(clean) == counts["clean"] and len(quarantine) == counts["quarantined"]
    assert quarantine["_quarantine_reason"].notna().all()
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", "clean.parquet", "quarantine.parquet",
                                                     "report.json", "validation.json"]
    assert report["validation_location"] == str(out / "validation.json") and report["validation"]
    trace = _xcom(dr, "steward", key="agent_run")
    assert trace["status"] == "finished" and trace["steps"][-1]["tool"] == "finish"
    assert trace["result"]["validation_location"] == str(out / "validation.json")
    assert [s["tool"] for s in trace["steps"]][:2] == ["replace_sentinels", "normalise_categories"]
    events = _asset_events(dr)
    assert len(events) == 1
    uri, extra = events[0]
    assert uri == "agentic-test-clean-batch"
    assert extra["counts"] == counts and extra["outputs"]["clean"] == str(out / "clean.parquet")


def test_broken_file_fails_clearly_and_writes_nothing(airflow_db, steward_files, caplog, capsys):
    out = steward_files["root"] / "out-broken"
    dag = load_dag("agentic_test_steward")
    dr = dag.test(run_conf={"source": str(steward_files["broken"]), "output": str(out),
                            "profile": str(steward_files["profile"])})
    assert dr.state == "failed" and _state(dr) == "failed"
    assert not out.exists()
    assert _asset_events(dr) == []
    logged = caplog.text + capsys.readouterr().out
    assert "Data Steward cannot read" in logged and "broken.parquet: truncated Parquet" in logged


def test_operator_on_s3(airflow_db, steward_files, s3_server):
    s3_server.put_object(Bucket="lake", Key="landing/b1.parquet", Body=steward_files["batch"].read_bytes())
    s3_server.put_object(Bucket="lake", Key="ref/profile.npz", Body=steward_files["profile"].read_bytes())
    dag = load_dag("agentic_test_steward_s3")
    dr = dag.test(run_conf={"source": "s3://lake/landing/b1.parquet", "output": "s3://lake/clean/b1",
                            "profile": "s3://lake/ref/profile.npz"})
    assert dr.state == "success"
    keys = sorted(o["Key"] for o in s3_server.list_objects_v2(Bucket="lake", Prefix="clean/b1/")["Contents"])
    assert keys == ["clean/b1/_manifest.json", "clean/b1/clean.parquet", "clean/b1/quarantine.parquet",
                    "clean/b1/report.json", "clean/b1/validation.json"]
    report = _xcom(dr, "steward")
    assert report["counts"]["clean"] + report["counts"]["quarantined"] == len(steward_files["frame"])
    assert report["outputs"]["clean"].endswith("lake/clean/b1/clean.parquet")
    manifest = json.loads(s3_server.get_object(Bucket="lake", Key="clean/b1/_manifest.json")["Body"].read())
    assert manifest["counts"] == report["counts"]
    (uri, extra), = _asset_events(dr)
    assert extra["counts"] == report["counts"]
    # A broken object: the task fails naming it, nothing is written.
    s3_server.put_object(Bucket="lake", Key="landing/cut.parquet", Body=steward_files["broken"].read_bytes())
    dr = dag.test(run_conf={"source": "s3://lake/landing/cut.parquet", "output": "s3://lake/clean/cut",
                            "profile": "s3://lake/ref/profile.npz"})
    assert dr.state == "failed"
    assert "Contents" not in s3_server.list_objects_v2(Bucket="lake", Prefix="clean/cut/")
