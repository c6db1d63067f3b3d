"""``DriftTrigger``: wait (in the triggerer, holding no worker) for new batch files at an ObjectStoragePath URL, then
compare them with a stored reference profile and fire once with the drift report.

Listing and statistics run in a worker thread (``asyncio.to_thread``): the triggerer's event loop is shared by every
trigger and must never block. The module-level helpers are shared with ``DriftEventTrigger`` and ``DriftSensor``.

Which files are new: every matching file whose name is not in ``seen`` and whose modification time is after
``since`` (both optional; without either, every file present counts). Names starting with ``.`` or ``_`` are never
batches (temporary files of atomic writes, ``_SUCCESS`` manifests).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import glob as _glob
import pathlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

BATCH_SUFFIXES = (".parquet", ".pq", ".parq", ".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json")


def storage_path(url: str, conn_id: str | None = None) -> Any:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url, conn_id=conn_id)


def _mtime(info: dict[str, Any]) -> float:
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, _dt.datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return _dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
        return float(value)
    return 0.0


def list_batches(url: str, conn_id: str | None = None, suffixes: Iterable[str] = BATCH_SUFFIXES) -> dict[str, float]:
    """``{name: mtime}`` of the batch files at ``url`` (a directory, or a glob such as ``s3://b/in/*.parquet``).
    Blocking (fsspec): call it through ``asyncio.to_thread`` from a trigger. A missing directory lists as empty."""
    base = storage_path(url, conn_id)
    fs, path = base.fs, base.path
    fs.invalidate_cache()  # object stores cache listings; a poll must see new objects
    try:
        if _glob.has_magic(path):
            entries = fs.glob(path, detail=True)
            infos = list(entries.values()) if isinstance(entries, dict) else [fs.info(e) for e in entries]
        else:
            infos = fs.ls(path, detail=True)
    except FileNotFoundError:
        return {}
    wanted = tuple(s.lower() for s in suffixes)
    out: dict[str, float] = {}
    for info in infos:
        name = str(info.get("name", ""))
        base_name = pathlib.PurePosixPath(name).name
        if info.get("type") == "directory" or not base_name or base_name[0] in "._":
            continue
        if wanted and not base_name.lower().endswith(wanted):
            continue
        out[name] = _mtime(info)
    return out


def new_batches(listing: dict[str, float], *, seen: Iterable[str] | None = None, since: float | None = None) -> list[str]:
    """Names not seen before and newer than ``since``, oldest first."""
    seen = set(seen or ())
    fresh = [n for n, t in listing.items() if n not in seen and (since is None or t > since)]
    return sorted(fresh, key=lambda n: (listing[n], n))


def file_path(name: str, url: str, conn_id: str | None = None) -> Any:
    """A path object (with ``.open()``) for a name returned by :func:`list_batches` on ``url``."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(name, protocol=storage_path(url, conn_id).protocol or None, conn_id=conn_id)


def load_profile(profile_path: str, conn_id: str | None = None) -> Any:
    from airflow_agentic.drift.profile import ReferenceProfile

    return ReferenceProfile.load(storage_path(profile_path, conn_id))


def drift_for_files(names: list[str], *, url: str, profile_path: str, columns: list[str] | None = None,
                    alpha: float = 0.05, correction: str = "bh", fmt: str | None = None, conn_id: str | None = None,
                    profile: Any = None) -> dict[str, Any]:
    """The drift report (``DriftReport.to_dict()``) of the given files, read as one batch, against the profile.
    Blocking: call it through ``asyncio.to_thread`` from a trigger."""
    import pandas as pd

    from airflow_agentic.data.io import read_batch
    from airflow_agentic.drift.detectors import detect_drift

    profile = profile if profile is not None else load_profile(profile_path, conn_id)
    frames = [read_batch(file_path(n, url, conn_id), fmt) for n in names]
    batch = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    report = detect_drift(profile, batch, columns=columns, alpha=alpha, correction=correction)
    return report.to_dict()


class DriftTrigger(BaseTrigger):
    """Fire once when new batch files appear at ``path``, with their drift report against ``profile_path``.

    :param path: ObjectStoragePath URL of a directory or a glob (``file:///data/in``, ``s3://bucket/in/*.parquet``).
    :param profile_path: URL of the reference profile ``.npz`` (``ReferenceProfile.save``).
    :param columns: columns to test (default: the profile's feature columns).
    :param alpha: significance level; ``correction``: ``bh``, ``bonferroni`` or ``none``.
    :param seen: names already processed (as listed, without scheme); they never count as new.
    :param since: POSIX modification time; only files modified after it count as new.
    :param min_files: fire once at least this many new files exist (all of them form one batch).
    :param poll_interval: seconds between listings.
    :param conn_id: Airflow connection for the object store (used for both URLs).
    :param fmt: file format when the suffix does not tell (``parquet``, ``csv``, ``jsonl``).

    Event payload: ``{"status": "success", "report": {...}, "files": [...], "seen": [...], "since": mtime}`` or
    ``{"status": "error", "message": ..., "files": [...]}``.
    """

    def __init__(self, *, path: str, profile_path: str, columns: list[str] | None = None, alpha: float = 0.05,
                 correction: str = "bh", seen: list[str] | None = None, since: float | None = None,
                 min_files: int = 1, poll_interval: float = 30.0, conn_id: str | None = None,
                 fmt: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.profile_path = profile_path
        self.columns = list(columns) if columns is not None else None
        self.alpha = float(alpha)
        self.correction = correction
        self.seen = sorted(seen or ())
        self.since = float(since) if since is not None else None
        self.min_files = max(1, int(min_files))
        self.poll_interval = float(poll_interval)
        self.conn_id = conn_id
        self.fmt = fmt

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "path": self.path, "profile_path": self.profile_path, "columns": self.columns, "alpha": self.alpha,
            "correction": self.correction, "seen": self.seen, "since": self.since, "min_files": self.min_files,
            "poll_interval": self.poll_interval, "conn_id": self.conn_id, "fmt": self.fmt,
        })

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                listing = await asyncio.to_thread(list_batches, self.path, self.conn_id)
            except Exception as exc:  # noqa: BLE001 - reported to the task, which fails (or skips) with it
                yield TriggerEvent({"status": "error", "message": f"cannot list {self.path}: {exc}", "files": []})
                return
            fresh = new_batches(listing, seen=self.seen, since=self.since)
            if len(fresh) >= self.min_files:
                self.log.info("%d new batch file(s) at %s: computing drift", len(fresh), self.path)
                try:
                    report = await asyncio.to_thread(
                        drift_for_files, fresh, url=self.path, profile_path=self.profile_path, columns=self.columns,
                        alpha=self.alpha, correction=self.correction, fmt=self.fmt, conn_id=self.conn_id)
                except Exception as exc:  # noqa: BLE001
                    yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}", "files": fresh})
                    return
                yield TriggerEvent({"status": "success", "report": report, "files": fresh,
                                    "seen": sorted(set(self.seen) | set(fresh)),
                                    "since": max(listing[n] for n in fresh)})
                return
            await asyncio.sleep(self.poll_interval)
