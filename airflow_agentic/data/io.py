"""Reading batches and writing results through any path object with ``.open()``.

Works with ``pathlib.Path`` / ``str`` (local), Airflow's ``ObjectStoragePath`` (local, S3 through the amazon provider's
connection, any fsspec filesystem) and plain ``upath.UPath``. No Airflow import: we only duck-type ``.open()``,
``.fs`` and ``.path``.

Atomic writes: on a local filesystem we write a temporary sibling and ``os.replace`` it (atomic on POSIX). On object
stores, where a rename is a copy plus a delete, the whole object is serialised in memory first and written with one
put, and a ``_SUCCESS`` manifest is written last; a reader that sees the manifest sees every file it lists, complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import uuid
from typing import TYPE_CHECKING, Any, Callable

from airflow_agentic.data.errors import StewardInputError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("parquet", "csv", "jsonl")
_SUFFIX_FORMATS = {
    ".parquet": "parquet", ".pq": "parquet", ".parq": "parquet",
    ".csv": "csv", ".txt": "csv", ".tsv": "csv",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
}
_LOCAL_PROTOCOLS = ("", "file", "local")
MANIFEST_NAME = "_SUCCESS"


# ---------------------------------------------------------------------------------------------------------- paths
def as_path(path: Any) -> Any:
    """A path object with ``.open()``: str without scheme -> ``pathlib.Path``; ``s3://...`` -> ``upath.UPath``."""
    if isinstance(path, os.PathLike) and not hasattr(path, "protocol"):
        return pathlib.Path(path)
    if isinstance(path, str):
        if "://" in path and not path.startswith("file://"):
            from upath import UPath

            return UPath(path)
        return pathlib.Path(path.removeprefix("file://"))
    if hasattr(path, "open"):
        return path
    raise TypeError(f"not a path: {path!r}")


def local_path(path: Any) -> pathlib.Path | None:
    """The local filesystem path behind ``path``, or None when it lives on an object store."""
    path = as_path(path)
    if isinstance(path, pathlib.Path):
        return path
    protocol = getattr(path, "protocol", None)
    if isinstance(protocol, (tuple, list)):
        protocol = protocol[0] if protocol else ""
    if protocol in _LOCAL_PROTOCOLS and hasattr(path, "path"):
        return pathlib.Path(path.path)
    return None


def join(directory: Any, name: str) -> Any:
    return as_path(directory) / name


def location(path: Any) -> str:
    """A string that names ``path`` (with scheme for object stores), for reports."""
    local = local_path(path)
    if local is not None:
        return str(local)
    return str(path)


def detect_format(path: Any, fmt: str | None = None) -> str:
    if fmt:
        fmt = fmt.lower().lstrip(".")
        fmt = {"pq": "parquet", "json": "jsonl", "ndjson": "jsonl"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise StewardInputError(path, f"unsupported format {fmt!r} (supported: {', '.join(FORMATS)})")
        return fmt
    name = str(getattr(path, "name", path)).lower()
    for suffix in (".gz", ".bz2", ".zst"):
        if name.endswith(suffix):
            raise StewardInputError(path, f"compressed input {suffix} is not supported; name the inner format")
    suffix = pathlib.PurePosixPath(name).suffix
    if suffix not in _SUFFIX_FORMATS:
        raise StewardInputError(path, f"cannot tell the format from suffix {suffix or '(none)'!r}; pass fmt=")
    return _SUFFIX_FORMATS[suffix]


# ---------------------------------------------------------------------------------------------------------- read
def read_bytes(path: Any) -> bytes:
    path = as_path(path)
    try:
        with path.open("rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise StewardInputError(path, "file not found") from exc
    except IsADirectoryError as exc:
        raise StewardInputError(path, "is a directory, not a file") from exc
    except PermissionError as exc:
        raise StewardInputError(path, "permission denied") from exc
    except OSError as exc:
        raise StewardInputError(path, f"unreadable: {exc}") from exc


def read_batch(path: Any, fmt: str | None = None, *, encoding: str = "utf-8",
               csv_options: dict | None = None) -> "pd.DataFrame":
    """Read one batch into pandas. Any unreadable input raises ``StewardInputError`` naming the file."""
    path = as_path(path)
    fmt = detect_format(path, fmt)
    data = read_bytes(path)
    if not data:
        raise StewardInputError(path, "empty file (0 bytes)")
    if fmt == "parquet":
        frame = _parse_parquet(path, data)
    elif fmt == "csv":
        frame = _parse_text(path, data, encoding, csv_options or {}, lines=False)
    else:
        frame = _parse_text(path, data, encoding, {}, lines=True)
    if len(frame.columns) == 0:
        raise StewardInputError(path, "no columns")
    if len(frame) == 0:
        raise StewardInputError(path, "no rows")
    return frame


def _parse_parquet(path: Any, data: bytes) -> "pd.DataFrame":
    import pyarrow as pa
    import pyarrow.parquet as pq

    if data[:4] != b"PAR1":
        raise StewardInputError(path, "not a Parquet file (no PAR1 magic at the start; wrong format?)")
    if len(data) < 12 or data[-4:] != b"PAR1":
        raise StewardInputError(path, "truncated Parquet file (no PAR1 footer)")
    try:
        table = pq.read_table(pa.BufferReader(data))
        return table.to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise StewardInputError(path, f"corrupt Parquet file: {exc}") from exc


def _parse_text(path: Any, data: bytes, encoding: str, options: dict, *, lines: bool) -> "pd.DataFrame":
    import pandas as pd

    if data[:4] == b"PAR1":
        raise StewardInputError(path, "binary Parquet content in a text (CSV/JSON) file: wrong format")
    if b"\x00" in data[:65536]:
        raise StewardInputError(path, "binary content (NUL bytes) in a text file: wrong format or encoding")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise StewardInputError(path, f"wrong encoding: not valid {encoding} at byte {exc.start}") from exc
    if not text.strip():
        raise StewardInputError(path, "empty file (only whitespace)")
    try:
        if lines:
            return pd.read_json(io.StringIO(text), lines=True)
        return pd.read_csv(io.StringIO(text), **options)
    except pd.errors.EmptyDataError as exc:
        raise StewardInputError(path, "no data") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise StewardInputError(path, f"malformed {'JSON lines' if lines else 'CSV'}: {exc}") from exc


# ---------------------------------------------------------------------------------------------------------- write
def frame_to_bytes(frame: "pd.DataFrame", fmt: str = "parquet") -> bytes:
    """Serialise fully in memory, so a failure here happens before anything is written."""
    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    elif fmt == "csv":
        buffer.write(frame.to_csv(index=False).encode("utf-8"))
    elif fmt == "jsonl":
        buffer.write(frame.to_json(orient="records", lines=True).encode("utf-8"))
    else:
        raise ValueError(f"unsupported format {fmt!r}")
    return buffer.getvalue()


def json_bytes(obj: Any) -> bytes:
    """Strict JSON (NaN/inf become null, numpy scalars become Python ones)."""
    return json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False).encode("utf-8")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "dtype") and getattr(obj, "ndim", 1) == 0:
        return _finite(obj.item())
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):
        return _finite(obj.tolist())
    return obj


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def write_bytes_atomic(path: Any, data: bytes) -> str:
    """Write ``data`` so that ``path`` is either absent/old or complete, never half-written."""
    path = as_path(path)
    local = local_path(path)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, local)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return str(local)
    fs = getattr(path, "fs", None)
    if fs is not None and hasattr(path, "path"):
        # One put: the object appears only when the upload completes (S3/GCS/Azure semantics).
        fs.pipe_file(path.path, data)
    else:
        with path.open("wb") as handle:
            handle.write(data)
    return location(path)


def write_outputs(directory: Any, files: dict[str, bytes | Callable[[], bytes]],
                  manifest: str | None = MANIFEST_NAME, extra: dict | None = None) -> dict[str, str]:
    """Write several files under ``directory``, then a manifest listing them (size + sha256), last.

    Every payload is serialised before the first write, so a serialisation error writes nothing.
    """
    payloads = {name: (data() if callable(data) else data) for name, data in files.items()}
    directory = as_path(directory)
    local = local_path(directory)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    entries = {}
    for name, data in payloads.items():
        written[name] = write_bytes_atomic(join(directory, name), data)
        entries[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if manifest:
        body = {"files": entries, **(extra or {})}
        written[manifest] = write_bytes_atomic(join(directory, manifest), json_bytes(body))
    return written


def write_frame(frame: "pd.DataFrame", path: Any, fmt: str | None = None) -> str:
    fmt = detect_format(path, fmt) if fmt or getattr(as_path(path), "suffix", "") else "parquet"
    return write_bytes_atomic(path, frame_to_bytes(frame, fmt))


def write_json(obj: Any, path: Any) -> str:
    return write_bytes_atomic(path, json_bytes(obj))


def read_json(path: Any) -> Any:
    return json.loads(read_bytes(path).decode("utf-8"))
