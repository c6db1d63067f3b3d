"""``DriftTrigger``: wait (in the triggerer, holding no worker) for new batch files at an ObjectStoragePath URL and
fire once with their names.

The trigger only waits: it lists the location (cheap, in a thread through ``asyncio.to_thread``, since the
triggerer's event loop is shared by every trigger and must never block) and never reads a batch. Reading batches and
computing drift statistics is work for a worker: ``DriftSensor.execute_complete`` does it with
:func:`drift_for_files` and re-defers when nothing matters. The module-level helpers are shared with
``DriftEventTrigger`` and ``DriftSensor``.

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
    from airflow_agentic.data.io import resolve_path  # the one resolver: same paths as the operators

    return resolve_path(url, conn_id)


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

    base = storage_path(url, conn_id)  # its connection: conn_id, or the one named in the URL (s3://conn@bucket/..)
    return ObjectStoragePath(name, protocol=base.protocol or None, conn_id=getattr(base, "conn_id", None) or conn_id)


def load_profile(profile_path: str, conn_id: str | None = None) -> Any:
    from airflow_agentic.drift.profile import ReferenceProfile

    return ReferenceProfile.load(storage_path(profile_path, conn_id))


def drift_for_files(names: list[str], *, url: str, profile_path: str, columns: list[str] | None = None,
                    alpha: float = 0.05, correction: str = "bh", fmt: str | None = None, conn_id: str | None = None,
                    profile: Any = None) -> dict[str, Any]:
    """The drift report (``DriftReport.to_dict()``) of the given files, read as one batch, against the profile.
    Reads whole batches: run it on a worker (a sensor's ``poke`` / ``execute_complete``, a task), never in a
    trigger."""
    import pandas as pd

    from airflow_agentic.data.io import read_batch
    from airflow_agentic.drift.detectors import detect_drift

    profile = profile if profile is not None else load_profile(profile_path, conn_id)
    frames = [read_batch(file_path(n, url, conn_id), fmt) for n in names]
    batch = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    report = detect_drift(profile, batch, columns=columns, alpha=alpha, correction=correction)
    return report.to_dict()


DEFAULT_ACTIONS = ("request_retraining",)


def drift_matters(report: dict[str, Any], *, min_score: float = 0.0, min_effect: float = 0.0,
                  columns: Iterable[str] | None = None,
                  actions: Iterable[str] = DEFAULT_ACTIONS) -> tuple[bool, str]:
    """Whether a drift report (``DriftReport.to_dict()``) or a monitoring decision calls for action, and why.

    A monitoring decision (``{"action": ...}`` or the monitoring agent's ``{"decision": {...}}``) matters when its
    action is in ``actions``. A drift report matters when drift was detected, its ``score`` (share of drifted
    feature columns) is at least ``min_score``, its ``max_effect`` at least ``min_effect`` and, when ``columns`` is
    given, at least one of those columns drifted. Shared by ``DriftSensor`` and ``DriftEventTrigger``.
    """
    actions = list(actions)
    if "decision" in report and isinstance(report["decision"], dict):
        report = report["decision"]
    if "action" in report:
        action = report.get("action")
        if action in actions:
            return True, f"monitoring decision {action}"
        return False, f"monitoring decision {action} (not in {actions})"
    if not report.get("detected"):
        return False, "no drift detected"
    score, effect = float(report.get("score") or 0.0), float(report.get("max_effect") or 0.0)
    drifted = list(report.get("drifted_columns") or [])
    if score < min_score:
        return False, f"drift score {score:.2f} below {min_score}"
    if effect < min_effect:
        return False, f"largest effect {effect:.3f} below {min_effect}: a harmless shift"
    if columns is not None and drifted and not set(drifted) & set(columns):
        return False, f"drift only in {drifted}, none of the watched columns"
    return True, f"drift in {drifted or 'the prediction distribution'} (score {score:.2f}, effect {effect:.3f})"


class DriftTrigger(BaseTrigger):
    """Fire once when new batch files appear at ``path``, with their names. Reads no batch.

    :param path: ObjectStoragePath URL of a directory or a glob (``file:///data/in``, ``s3://bucket/in/*.parquet``).
    :param seen: names already processed (as listed, without scheme); they never count as new.
    :param since: POSIX modification time; only files modified after it count as new.
    :param min_files: fire once at least this many new files exist (all of them form one batch).
    :param poll_interval: seconds between listings.
    :param conn_id: Airflow connection for the object store.

    ``profile_path``, ``columns``, ``alpha``, ``correction`` and ``fmt`` are still accepted so that a trigger
    serialised by an earlier version (which computed drift here) resumes after an upgrade; they are ignored, since
    the resumed ``DriftSensor`` has them itself.

    Event payload: ``{"status": "success", "files": [...], "seen": [...], "since": mtime}`` (``files``: the new
    names, oldest first; ``seen``: ``seen`` plus them; ``since``: the newest mtime among them) or
    ``{"status": "error", "message": ..., "files": []}``.
    """

    LEGACY_ARGS = ("profile_path", "columns", "alpha", "correction", "fmt")

    def __init__(self, *, path: str, seen: list[str] | None = None, since: float | None = None, min_files: int = 1,
                 poll_interval: float = 30.0, conn_id: str | None = None, **legacy: Any) -> None:
        super().__init__()
        unknown = set(legacy) - set(self.LEGACY_ARGS)
        if unknown:
            raise TypeError(f"DriftTrigger got unexpected argument(s) {sorted(unknown)}")
        self.path = path
        self.seen = sorted(seen or ())
        self.since = float(since) if since is not None else None
        self.min_files = max(1, int(min_files))
        self.poll_interval = float(poll_interval)
        self.conn_id = conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "path": self.path, "seen": self.seen, "since": self.since, "min_files": self.min_files,
            "poll_interval": self.poll_interval, "conn_id": self.conn_id,
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
                self.log.info("%d new batch file(s) at %s: handing them to the task", len(fresh), self.path)
                yield TriggerEvent({"status": "success", "files": fresh, "seen": sorted(set(self.seen) | set(fresh)),
                                    "since": max(listing[n] for n in fresh)})
                return
            await asyncio.sleep(self.poll_interval)
