"""Durable replay: what a step produced is written down at once, so a retried or resumed task does not ask the LLM
again nor repeat a side effect.

Two kinds of storage, same behaviour:
- a **key-value store** (``store=``): anything with ``get(key, default)``, ``set(key, value)`` and ``delete(key)``
  holding JSON values; in Airflow 3.3 that is the task's ``context["task_state_store"]`` (AIP-103), scoped to the task
  instance, kept across its retries, under Airflow's retention and visible in its UI and REST API. One key per step
  plus an index, so a write costs one step, not the whole journal;
- a **file** (``path=``): any path object with ``open``, ``exists`` and ``parent.mkdir`` (pathlib.Path, Airflow's
  ObjectStoragePath for local files, S3 and the rest);
- or nothing, for an in-memory journal.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Protocol

VERSION = 1
# Keys in a key-value store; the index names the steps recorded (a store cannot list its keys).
INDEX_KEY = "agentic.journal"
STEP_KEY = "agentic.journal.step.{}"


class JournalError(RuntimeError):
    """The journal exists but cannot be read."""


class KeyValueStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


def _local_file(path: Any) -> str | None:
    """The OS path behind a pathlib path or a ``file://`` ObjectStoragePath, else None."""
    if isinstance(path, os.PathLike) and type(path).__module__.startswith("pathlib"):
        return os.fspath(path)
    if getattr(path, "protocol", None) in ("file", "local"):
        return str(path.path)
    return None


def _write_atomically(local: str, blob: str) -> None:
    """A unique temporary file next to the target, synced, then renamed over it: a crash (or a second writer) never
    leaves half a journal, and the rename is not reordered before the data on power loss."""
    folder = os.path.dirname(local) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(local)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, local)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class Journal:
    def __init__(self, path: Any | None = None, *, store: KeyValueStore | None = None):
        if path is not None and store is not None:
            raise ValueError("a journal lives in a file (path) or in a key-value store (store), not both")
        self.path = path
        self.store = store
        self.entries: dict[str, dict[str, Any]] = {}
        # Set when the run reached its end; kept until a deliberate re-run, because the attempt that finished may
        # still die before Airflow records it, and its retry must replay rather than act again.
        self.finished: dict[str, Any] | None = None
        if store is not None:
            self._load_from_store()
        elif path is not None and path.exists():
            with path.open("r") as fh:
                text = fh.read()
            try:
                data = json.loads(text)
            except ValueError as exc:
                # Which steps already acted is unknown: acting again could repeat a side effect, so stop and say so.
                raise self._unreadable(f"not JSON: {exc}") from exc
            self.entries, self.finished = self._parse(data)

    @property
    def where(self) -> str:
        if self.store is not None:
            return f"{self.store!r} key {INDEX_KEY!r}"
        return str(self.path)

    def _unreadable(self, why: str) -> JournalError:
        return JournalError(f"the replay journal {self.where} is unreadable ({why}); inspect it, then delete it to "
                            "start the agent afresh")

    def _parse(self, data: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
        if not isinstance(data, dict):
            raise self._unreadable(f"expected a JSON object, found {type(data).__name__}")
        steps = data.get("steps", {})
        if not isinstance(steps, dict) or not all(isinstance(v, dict) for v in steps.values()):
            raise self._unreadable("'steps' must map step numbers to objects")
        finished = data.get("finished")
        if finished is not None and not isinstance(finished, dict):
            raise self._unreadable("'finished' must be an object")
        return {str(k): v for k, v in steps.items()}, finished

    def _load_from_store(self) -> None:
        index = self.store.get(INDEX_KEY, None)
        if index is None:
            return
        if not isinstance(index, dict) or not isinstance(index.get("steps", []), list):
            raise self._unreadable(f"expected an object with a list of steps, found {type(index).__name__}")
        steps: dict[str, Any] = {}
        for step in index.get("steps", []):
            entry = self.store.get(STEP_KEY.format(step), None)
            if not isinstance(entry, dict):
                raise self._unreadable(f"step {step} is listed but its key holds {type(entry).__name__}")
            steps[str(step)] = entry
        self.entries, self.finished = self._parse({"steps": steps, "finished": index.get("finished")})

    def get(self, step: int) -> dict[str, Any]:
        return self.entries.get(str(step), {})

    def record(self, step: int, **values: Any) -> None:
        new = str(step) not in self.entries
        self.entries.setdefault(str(step), {}).update(values)
        if self.store is not None:
            # The step first, then the index that lists it: a crash in between leaves the step unlisted (not done).
            self.store.set(STEP_KEY.format(step), _jsonable(self.entries[str(step)]))
            if new:
                self._write_index()
            return
        self._flush()

    def mark_finished(self, **info: Any) -> None:
        self.finished = dict(info)
        if self.store is not None:
            self._write_index()
            return
        self._flush()

    def _write_index(self) -> None:
        index: dict[str, Any] = {"version": VERSION, "steps": sorted(int(k) for k in self.entries)}
        if self.finished is not None:
            index["finished"] = _jsonable(self.finished)
        self.store.set(INDEX_KEY, index)

    def _flush(self) -> None:
        if self.path is None:
            return
        data: dict[str, Any] = {"version": VERSION, "steps": self.entries}
        if self.finished is not None:
            data["finished"] = self.finished
        blob = json.dumps(data, default=str)
        parent = getattr(self.path, "parent", None)
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        local = _local_file(self.path)
        if local is not None:
            _write_atomically(local, blob)
        else:
            with self.path.open("w") as fh:  # object stores write an object in one put
                fh.write(blob)

    def clear(self) -> None:
        if self.store is not None:
            self.store.delete(INDEX_KEY)  # first: without the index nothing below it is read
            for step in self.entries:
                self.store.delete(STEP_KEY.format(step))
        elif self.path is not None and self.path.exists():
            self.path.unlink()
        self.entries = {}
        self.finished = None


def _jsonable(value: Any) -> Any:
    """Store values must be plain JSON; results may hold dates or numpy numbers (the file journal writes them as
    text through ``default=str``, and so does this)."""
    return json.loads(json.dumps(value, default=str))
