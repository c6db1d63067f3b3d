from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from airflow_agentic.data import io as dio
from airflow_agentic.data.errors import StewardInputError


@pytest.fixture()
def frame():
    return pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})


@pytest.mark.parametrize("name", ["b.parquet", "b.csv", "b.jsonl"])
def test_round_trip_by_suffix(tmp_path, frame, name):
    path = tmp_path / name
    dio.write_frame(frame, path)
    pd.testing.assert_frame_equal(dio.read_batch(path), frame)
    pd.testing.assert_frame_equal(dio.read_batch(str(path)), frame)


def test_explicit_format(tmp_path, frame):
    path = tmp_path / "batch.data"
    path.write_bytes(frame.to_csv(index=False).encode())
    with pytest.raises(StewardInputError, match="suffix"):
        dio.read_batch(path)
    pd.testing.assert_frame_equal(dio.read_batch(path, fmt="csv"), frame)


def _bad(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name,maker,message", [
    ("missing.parquet", None, "not found"),
    ("empty.parquet", lambda f: b"", "empty"),
    ("empty.csv", lambda f: b"", "empty"),
    ("blank.csv", lambda f: b"  \n\n", "empty"),
    ("truncated.parquet", lambda f: f.to_parquet(index=False)[:-40], "truncated"),
    ("half.parquet", lambda f: f.to_parquet(index=False)[:20], "truncated"),
    ("csv_as.parquet", lambda f: f.to_csv(index=False).encode(), "not a Parquet"),
    ("parquet_as.csv", lambda f: f.to_parquet(index=False), "wrong format"),
    ("header_only.csv", lambda f: b"a,b\n", "no rows"),
    ("no_rows.parquet", lambda f: f.iloc[:0].to_parquet(index=False), "no rows"),
    ("latin1.csv", lambda f: "a,b\n1,caf\xe9\n".encode("latin-1"), "encoding"),
    ("utf16.csv", lambda f: "a,b\n1,x\n".encode("utf-16"), "encoding|binary"),
    ("ragged.csv", lambda f: b'a,b\n1,"x\n', "malformed"),
    ("bad.jsonl", lambda f: b"{not json}\n", "malformed"),
])
def test_bad_input_names_the_file(tmp_path, frame, name, maker, message):
    path = tmp_path / name if maker is None else _bad(tmp_path, name, maker(frame))
    with pytest.raises(StewardInputError, match=message) as info:
        dio.read_batch(path)
    assert name in str(info.value)


def test_directory_is_bad_input(tmp_path):
    (tmp_path / "d.parquet").mkdir()
    with pytest.raises(StewardInputError, match="d.parquet"):
        dio.read_batch(tmp_path / "d.parquet")


def test_atomic_write_leaves_no_partial_file(tmp_path, frame):
    target = tmp_path / "out" / "clean.parquet"

    class Boom(Exception):
        pass

    def exploding():
        raise Boom()

    with pytest.raises(Boom):
        dio.write_outputs(tmp_path / "out", {"clean.parquet": dio.frame_to_bytes(frame), "report.json": exploding})
    assert not target.exists()
    assert not (tmp_path / "out" / "_manifest.json").exists()
    written = dio.write_outputs(tmp_path / "out", {"clean.parquet": dio.frame_to_bytes(frame)})
    assert set(written) == {"clean.parquet", "_manifest.json"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_manifest.json", "clean.parquet"]  # no temps
    manifest = dio.read_json(tmp_path / "out" / "_manifest.json")
    assert manifest["complete"] is True
    assert manifest["files"]["clean.parquet"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()


def test_failed_write_keeps_previous_version(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    dio.write_json({"v": 1}, target)

    def failing_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(dio.os, "replace", failing_replace)
    with pytest.raises(OSError):
        dio.write_json({"v": 2}, target)
    monkeypatch.undo()
    assert dio.read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_memory_filesystem_through_upath(frame):
    from upath import UPath

    root = UPath("memory://steward-test/out")
    dio.write_outputs(root, {"clean.parquet": dio.frame_to_bytes(frame)})
    pd.testing.assert_frame_equal(dio.read_batch(root / "clean.parquet"), frame)
    assert (root / "_manifest.json").exists()
    with pytest.raises(StewardInputError, match="memory"):
        dio.read_batch(UPath("memory://steward-test/none.parquet"))


def test_json_bytes_handles_numpy():
    data = dio.json_bytes({"a": np.int64(3), "b": np.float64("nan"), "c": np.array([1, 2])})
    assert b'"a": 3' in data and b'"b": null' in data
