"""Reading and atomic writing through Airflow's ObjectStoragePath against a local moto S3 server."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from servers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    import os

    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket="steward")
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    old = os.environ.get("AIRFLOW_CONN_AWS_TEST")
    os.environ["AIRFLOW_CONN_AWS_TEST"] = json.dumps(conn)
    yield client
    if old is None:
        os.environ.pop("AIRFLOW_CONN_AWS_TEST", None)
    server.stop()


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
