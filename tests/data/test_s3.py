"""Reading and atomic writing through Airflow's ObjectStoragePath against a local moto S3 server."""

from __future__ import annotations

import pandas as pd
import pytest

# The `s3` fixture (moto server, bucket "steward", Airflow connection `aws_test`) lives in tests/conftest.py.
pytestmark = pytest.mark.integration


def _path(key: str):
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"s3://steward/{key}", conn_id="aws_test")


def test_read_and_bad_input_on_s3(s3):
    from airflow_agentic.data.errors import StewardInputError
    from airflow_agentic.data.io import read_batch

    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    s3.put_object(Bucket="steward", Key="in/batch.parquet", Body=frame.to_parquet(index=False))
    s3.put_object(Bucket="steward", Key="in/batch.csv", Body=frame.to_csv(index=False).encode())
    s3.put_object(Bucket="steward", Key="in/cut.parquet", Body=frame.to_parquet(index=False)[:-30])
    pd.testing.assert_frame_equal(read_batch(_path("in/batch.parquet")), frame)
    pd.testing.assert_frame_equal(read_batch(_path("in/batch.csv")), frame)
    with pytest.raises(StewardInputError, match="steward/in/cut.parquet"):
        read_batch(_path("in/cut.parquet"))
    with pytest.raises(StewardInputError, match="not found"):
        read_batch(_path("in/none.parquet"))


def test_steward_writes_atomically_to_s3(s3):
    from helpers import corrupted_batch, make_profile

    from airflow_agentic.data.findings import StewardConfig
    from airflow_agentic.data.io import read_batch, read_json
    from airflow_agentic.data.pipeline import run_steward

    batch = corrupted_batch(300)
    s3.put_object(Bucket="steward", Key="landing/b1.parquet", Body=batch.to_parquet(index=False))
    before = s3.get_object(Bucket="steward", Key="landing/b1.parquet")["ETag"]
    out = _path("out/b1")
    report = run_steward(_path("landing/b1.parquet"), make_profile(), out, config=StewardConfig(id_column="row_id"),
                           validate="none")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="steward", Prefix="out/b1/")["Contents"])
    assert keys == ["out/b1/_manifest.json", "out/b1/clean.parquet", "out/b1/quarantine.parquet",
                    "out/b1/report.json"]
    assert "steward/out/b1/clean.parquet" in report.outputs["clean"]
    clean = read_batch(out / "clean.parquet")
    quarantine = read_batch(out / "quarantine.parquet")
    assert len(clean) + len(quarantine) == len(batch)
    assert read_json(out / "_manifest.json")["counts"]["input"] == len(batch)
    assert s3.get_object(Bucket="steward", Key="landing/b1.parquet")["ETag"] == before  # input untouched


def test_failed_serialisation_writes_nothing_to_s3(s3):
    from airflow_agentic.data.io import write_outputs

    def boom():
        raise RuntimeError("serialisation failed")

    with pytest.raises(RuntimeError):
        write_outputs(_path("out/fail"), {"a.json": b"{}", "b.json": boom})
    assert "Contents" not in s3.list_objects_v2(Bucket="steward", Prefix="out/fail/")
