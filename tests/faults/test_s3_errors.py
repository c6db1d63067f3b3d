"""S3 answering errors in the middle of the Data Steward's write: the steward writes its output folder through the
amazon provider (``ObjectStoragePath`` on an Airflow ``aws`` connection) to a moto server behind a proxy that answers
500 / 503 to every PUT after the first N. The write fails with a clear error, readers never see a partial output
(the folder is refused, or still holds the previous complete output), and after a successful retry every input row
is clean or quarantined, the quarantined ones exactly as they arrived."""

from __future__ import annotations

import json

import pytest

from error_proxy import ErrorProxy
from fault_data import ID, accounting, corrupted, profile

pytestmark = pytest.mark.integration

# The PUTs of one output folder, in order: pending manifest, clean, quarantine, report, complete manifest.
WRITES = ("_manifest.json (pending)", "clean.parquet", "quarantine.parquet", "report.json", "_manifest.json")


@pytest.fixture()
def faulty(s3, monkeypatch):
    """An Airflow connection to the same moto server through the error proxy; botocore retries once (each PUT is
    tried twice, s3fs retries a SlowDown itself), so a persistent fault fails in seconds."""
    with ErrorProxy(s3.meta.endpoint_url) as proxy:
        conn = {"conn_type": "aws", "login": "testing", "password": "testing",
                "extra": {"endpoint_url": proxy.url, "region_name": "us-east-1",
                          "config_kwargs": {"retries": {"max_attempts": 2, "mode": "standard"}}}}
        monkeypatch.setenv("AIRFLOW_CONN_AWS_FAULTY", json.dumps(conn))
        yield proxy


def _path(key: str, conn_id: str):
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"s3://steward/{key}", conn_id=conn_id)


def test_s3_errors_mid_write_leave_no_partial_output(s3, faulty, fault):
    import pandas as pd

    from airflow_agentic.data.findings import StewardConfig
    from airflow_agentic.data.io import IncompleteOutput, read_batch, read_output
    from airflow_agentic.data.pipeline import run_steward

    source = corrupted(300)
    s3.put_object(Bucket="steward", Key="faults/landing/0001.parquet", Body=source.to_parquet(index=False))
    ref = profile()

    def steward():
        return run_steward(_path("faults/landing/0001.parquet", "aws_faulty"), ref,
                           _path("faults/clean/0001", "aws_faulty"), config=StewardConfig(id_column=ID),
                           validate="none")

    def readers_see():
        """What a reader (straight to moto, not through the proxy) gets from the folder: the committed tables, or
        the refusal."""
        out = _path("faults/clean/0001", "aws_test")
        try:
            return read_batch(out / "clean.parquet"), read_output(out, "quarantine.parquet")
        except IncompleteOutput as refused:
            return refused

    steward()  # a complete earlier output of the same batch, as a re-run finds it
    previous = readers_see()
    assert not isinstance(previous, Exception)

    for allowed, status in ((0, 503), (1, 500), (2, 500), (4, 500)):
        faulty.fail_puts_after(allowed, status)
        with pytest.raises(OSError) as failed:
            steward()
        faulty.clear()
        message = str(failed.value)
        notes = " ".join(getattr(failed.value, "__notes__", []))
        # The store's own words, and which file of which folder failed (the note write_outputs adds).
        assert "injected by the fault suite" in message or "InternalError" in message, message
        assert "steward/faults/clean/0001" in notes and "not committed" in notes, notes
        assert faulty.failed, "the fault was never hit"
        seen = readers_see()
        if allowed == 0:  # the pending manifest never landed: the previous complete output is still whole
            assert not isinstance(seen, Exception), seen
            pd.testing.assert_frame_equal(seen[0], previous[0])
            pd.testing.assert_frame_equal(seen[1], previous[1])
            outcome = "previous complete output still served (checksums match)"
        else:
            assert isinstance(seen, IncompleteOutput), "a half-written folder was readable"
            outcome = f"readers refused the folder: {seen.reason}"
        fault.add(f"S3 answers {status} to every PUT after {allowed} (fails: {WRITES[allowed]})",
                  f"write failed: {type(failed.value).__name__}: {message[:60]} + \"{notes[:notes.index(' failed')]} "
                  f"failed\"; {outcome}")

    report = steward()  # the retry, faults cleared
    clean, quarantine = readers_see()
    counts = accounting(source, clean, quarantine.drop(columns=["_quarantine_reason"]))
    assert counts["silent_wrong"] == 0, counts
    assert counts["rows_in"] == counts["clean"] + counts["quarantined"]
    assert report.counts["input"] == len(source) and report.counts["quarantined"] == len(quarantine)
    assert (quarantine["x"] == "garbage").sum() == 3  # the unparseable text is kept as it came
    fault.add("retry after the S3 faults", "output committed; rows in = clean + quarantined, quarantined rows "
              "byte-identical to the input", **counts)
