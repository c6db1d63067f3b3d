"""Durable replay: what a step produced is written down at once, so a retried or resumed task does not ask the LLM
again nor repeat a side effect. Storage is any path object with `open`, `exists` and `parent.mkdir` (pathlib.Path,
Airflow's ObjectStoragePath for local files, S3 and the rest), or nothing for an in-memory journal."""

from __future__ import annotations

import json
import os
from typing import Any


class JournalError(RuntimeError):
    """The journal exists but cannot be read."""


def _local_file(path: Any) -> str | None:
    """The OS path behind a pathlib path or a ``file://`` ObjectStoragePath, else None."""
    if isinstance(path, os.PathLike) and type(path).__module__.startswith("pathlib"):
        return os.fspath(path)
    if getattr(path, "protocol", None) in ("file", "local"):
        return str(path.path)
    return None


class Journal:
    def __init__(self, path: Any | None = None):
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        # Set when the run reached its end; the file stays until a deliberate re-run, because the attempt that
        # finished may still die before Airflow records it, and its retry must replay rather than act again.
        self.finished: dict[str, Any] | None = None
        if path is not None and path.exists():
            with path.open("r") as fh:
                text = fh.read()
            try:
                data = json.loads(text)
            except ValueError as exc:
                # Which steps already acted is unknown: acting again could repeat a side effect, so stop and say so.
                raise JournalError(f"the replay journal {path} is unreadable ({exc}); inspect it, then delete it to "
                                   "start the agent afresh") from exc
            self.entries = data.get("steps", {})
            self.finished = data.get("finished")

    def get(self, step: int) -> dict[str, Any]:
        return self.entries.get(str(step), {})

    def record(self, step: int, **values: Any) -> None:
        self.entries.setdefault(str(step), {}).update(values)
        self._flush()

    def mark_finished(self, **info: Any) -> None:
        self.finished = dict(info)
        self._flush()

    def _flush(self) -> None:
        if self.path is None:
            return
        data: dict[str, Any] = {"version": 1, "steps": self.entries}
        if self.finished is not None:
            data["finished"] = self.finished
        blob = json.dumps(data, default=str)
        parent = getattr(self.path, "parent", None)
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        local = _local_file(self.path)
        if local is not None:
            tmp = local + ".tmp"
            with open(tmp, "w") as fh:
                fh.write(blob)
            os.replace(tmp, local)  # atomic on a local file system: a crash never leaves half a journal
        else:
            with self.path.open("w") as fh:  # object stores write an object in one put
                fh.write(blob)

    def clear(self) -> None:
        self.entries = {}
        self.finished = None
        if self.path is not None and self.path.exists():
            self.path.unlink()
