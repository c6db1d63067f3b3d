"""Reading batches and writing results: every path goes through :func:`resolve_path` (one resolver).

Strings, ``pathlib.Path`` and ``file://`` URLs become local ``ObjectStoragePath`` s; ``s3://`` and other schemes go
through the Airflow connection given as ``conn_id``. Path objects that already have ``.open()`` and a protocol
(``ObjectStoragePath``, ``upath.UPath``) are used as they are. Airflow is imported lazily (only to build paths).

Atomic writes: on a local filesystem we write a temporary sibling and ``os.replace`` it (atomic on POSIX). On object
stores, where a rename is a copy plus a delete, the whole object is serialised in memory first and written with one
put. An output folder is committed as a unit (:func:`write_outputs`): a pending ``_manifest.json`` first, the
files, then the complete manifest (bytes, sha256, rows per file) last; readers of the folder's files check it.
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
MANIFEST_NAME = "_manifest.json"
LEGACY_MANIFEST = "_SUCCESS"
# The steward's tables: only ever read from a folder with a complete manifest.
COMMITTED_TABLES = ("clean.parquet", "quarantine.parquet")


# ---------------------------------------------------------------------------------------------------------- paths
def resolve_path(url: Any, conn_id: str | None = None) -> Any:
    """The one path resolver: ``url`` -> Airflow's ``ObjectStoragePath``.

    A local path (``str`` without scheme or ``pathlib.Path``, made absolute) and ``file://`` URLs become
    ``file://`` paths; any other scheme (``s3://``, ``gs://`` ...) goes through the Airflow connection ``conn_id``
    (or the one named in the URL, ``s3://conn@bucket/key``). A path object that already has ``.open()`` and a
    protocol (ObjectStoragePath, UPath) is returned as it is. Airflow is imported here, not at module import, so
    the data package stays importable without it.
    """
    if hasattr(url, "open") and hasattr(url, "protocol"):
        return url
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        raise TypeError(f"not a path or URL: {url!r}")
    if not url.strip():
        raise ValueError("empty path")
    from airflow.sdk import ObjectStoragePath

    if url.startswith("file://") or "://" not in url:
        local = url.removeprefix("file://")
        return ObjectStoragePath(f"file://{os.path.abspath(local) if local else local}")
    scheme = url.split("://", 1)[0].lower()
    if scheme in _SCHEME_EXTRAS:
        # Checked here, not on first read: without the provider fsspec would fall back to a bare s3fs that ignores
        # the Airflow connection, and without s3fs the error would come from deep inside fsspec.
        from airflow_agentic.extras import require

        for module in _SCHEME_EXTRAS[scheme][0]:
            require(module, _SCHEME_EXTRAS[scheme][1], f"{scheme}:// paths")
    return ObjectStoragePath(url, conn_id=conn_id)


# Object-store schemes served by an optional extra: (modules it needs, extra).
_SCHEME_EXTRAS = {scheme: (("s3fs", "airflow.providers.amazon.aws.fs.s3"), "amazon") for scheme in ("s3", "s3a")}


def as_path(path: Any, conn_id: str | None = None) -> Any:
    """A path object with ``.open()``: everything goes through :func:`resolve_path`."""
    return resolve_path(path, conn_id)


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
def read_bytes(path: Any, conn_id: str | None = None) -> bytes:
    path = as_path(path, conn_id)
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


def read_batch(path: Any, fmt: str | None = None, *, encoding: str = "utf-8", csv_options: dict | None = None,
               conn_id: str | None = None) -> "pd.DataFrame":
    """Read one batch into pandas. Any unreadable input raises ``StewardInputError`` naming the file.

    A file inside an output folder (one with a manifest next to it, and always the steward's ``clean.parquet`` and
    ``quarantine.parquet``) is read only when that manifest is complete, lists the file and its checksum matches:
    a half-rewritten folder is never read as a whole one.
    """
    path = as_path(path, conn_id)
    fmt = detect_format(path, fmt)
    try:
        data = read_bytes(path)
    except StewardInputError:
        # A table written by Spark is a folder of part files: read it through the manifest that lists them.
        entry = ((_manifest_next_to(path) or {}).get("files") or {}).get(path.name) or {}
        if entry.get("parts") is not None:
            return read_output(path.parent, path.name)
        raise
    manifest = _manifest_next_to(path)
    if manifest is None and path.name in COMMITTED_TABLES:
        manifest = read_manifest(path.parent)  # a steward table outside a committed folder: refused
    if manifest is not None:
        verify_output(path, data, manifest)
    return _parse(path, data, fmt, encoding, csv_options)


def _parse(path: Any, data: bytes, fmt: str, encoding: str = "utf-8",
           csv_options: dict | None = None) -> "pd.DataFrame":
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
    check_unique_columns(frame.columns, path)
    if len(frame) == 0:
        raise StewardInputError(path, "no rows")
    return frame


def check_unique_columns(columns: Any, source: Any = "batch") -> None:
    """Duplicate column names make every per-column operation ambiguous: refuse them, naming the columns."""
    seen: set = set()
    duplicated: list = []
    for name in columns:
        if name in seen and name not in duplicated:
            duplicated.append(name)
        seen.add(name)
    if duplicated:
        raise StewardInputError(source, f"duplicate column names {[str(d) for d in duplicated]}: rename them so "
                                        "every column has its own name")


def _parse_parquet(path: Any, data: bytes) -> "pd.DataFrame":
    import pyarrow as pa
    import pyarrow.parquet as pq

    if data[:4] != b"PAR1":
        raise StewardInputError(path, "not a Parquet file (no PAR1 magic at the start; wrong format?)")
    if len(data) < 12 or data[-4:] != b"PAR1":
        raise StewardInputError(path, "truncated Parquet file (no PAR1 footer)")
    try:
        # The schema first: pyarrow reports duplicate names only as an obscure field-lookup error.
        check_unique_columns(pq.read_schema(pa.BufferReader(data)).names, path)
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


def write_bytes_atomic(path: Any, data: bytes, conn_id: str | None = None) -> str:
    """Write ``data`` so that ``path`` is either absent/old or complete, never half-written."""
    if isinstance(path, (str, os.PathLike)) and ("://" not in os.fspath(path) or
                                                 os.fspath(path).startswith("file://")):
        # A plain local path needs no Airflow (the drift maths saves profiles where Airflow is not installed).
        local = pathlib.Path(os.path.abspath(os.fspath(path).removeprefix("file://")))
    else:
        path = as_path(path, conn_id)
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
                  manifest: str | None = MANIFEST_NAME, extra: dict | None = None,
                  rows: dict[str, int] | None = None, prewritten: dict[str, dict] | None = None) -> dict[str, str]:
    """Write several files under ``directory`` as one unit: the folder's manifest is replaced by a *pending* one
    first, then the files are written, then the complete manifest (every file's bytes, sha256 and row count) last.

    Every payload is serialised before the first write, so a serialisation error writes nothing. A run that dies
    half-way leaves a pending manifest: readers (:func:`verify_output`, :func:`read_batch`, :func:`read_output`)
    refuse the folder instead of mixing new files with old ones. ``prewritten``: manifest entries of files the
    caller already wrote after :func:`begin_outputs` (Spark's folders).
    """
    payloads = {name: (data() if callable(data) else data) for name, data in files.items()}
    directory = as_path(directory)
    current = manifest or next(iter(payloads), "")
    try:
        if manifest and prewritten is None:
            begin_outputs(directory, list(payloads), manifest)
        elif manifest is None:
            local = local_path(directory)
            if local is not None:
                local.mkdir(parents=True, exist_ok=True)
        written: dict[str, str] = {}
        entries = dict(prewritten or {})
        for name, data in payloads.items():
            current = name
            written[name] = write_bytes_atomic(join(directory, name), data)
            entries[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            if rows and name in rows:
                entries[name]["rows"] = int(rows[name])
        if manifest:
            current = manifest
            body = {"complete": True, "files": entries, **(extra or {})}
            written[manifest] = write_bytes_atomic(join(directory, manifest), json_bytes(body))
    except OSError as exc:
        # An object store's error names neither the file nor the folder ("[Errno 16] Please reduce your request
        # rate"): say which write failed and what readers see now.
        exc.add_note(f"writing {location(join(directory, current))} failed: the output folder {location(directory)} "
                     f"is not committed (readers keep its earlier complete output or refuse it); run again to "
                     f"commit it")
        raise
    return written


def begin_outputs(directory: Any, names: list[str], manifest: str = MANIFEST_NAME) -> None:
    """Mark ``directory`` as being written: its manifest becomes a pending one (and a legacy ``_SUCCESS`` goes), so
    no reader takes the folder's files for a committed set until the complete manifest lands."""
    directory = as_path(directory)
    local = local_path(directory)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(join(directory, manifest), json_bytes({"complete": False, "writing": list(names)}))
    legacy = join(directory, LEGACY_MANIFEST)
    try:
        if legacy.exists():
            legacy.unlink()
    except FileNotFoundError:
        pass


class IncompleteOutput(StewardInputError):
    """An output folder without a complete manifest, or a file that does not match it."""


def read_manifest(directory: Any, manifest: str = MANIFEST_NAME) -> dict:
    """The complete manifest of an output folder; ``IncompleteOutput`` when it is missing, pending or unreadable."""
    directory = as_path(directory)
    path = join(directory, manifest)
    try:
        body = json.loads(read_bytes(path).decode("utf-8"))
    except StewardInputError as exc:
        raise IncompleteOutput(directory, f"no {manifest}: the output folder was never committed ({exc.reason})") \
            from None
    except ValueError as exc:
        raise IncompleteOutput(directory, f"unreadable {manifest}: {exc}") from None
    if isinstance(body, dict) and body.get("complete") is False:
        raise IncompleteOutput(directory, f"{manifest} is pending: a write into this folder did not finish")
    if not isinstance(body, dict) or body.get("complete") is not True or not isinstance(body.get("files"), dict):
        raise IncompleteOutput(directory, f"{manifest} is not a complete manifest with a file list")
    return body


def verify_output(path: Any, data: bytes | None = None, manifest: dict | None = None) -> dict:
    """Check that file ``path`` belongs to its folder's complete manifest (and, given its bytes, the checksum).
    Returns the file's manifest entry."""
    path = as_path(path)
    body = manifest if manifest is not None else read_manifest(path.parent)
    entry = body["files"].get(path.name)
    if entry is None:
        raise IncompleteOutput(path, "not listed in the folder's manifest (left over from another run?)")
    if data is not None and entry.get("sha256") and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise IncompleteOutput(path, "checksum differs from the folder's manifest (overwritten after commit?)")
    return entry


def _manifest_next_to(path: Any) -> dict | None:
    """The manifest of the folder holding ``path`` when there is one (complete or not: a pending one raises)."""
    try:
        sibling = join(path.parent, MANIFEST_NAME)
        exists = sibling.exists()
    except (OSError, ValueError, NotImplementedError):
        return None
    return read_manifest(path.parent) if exists else None


def read_output(directory: Any, name: str = "clean.parquet", fmt: str | None = None,
                conn_id: str | None = None) -> "pd.DataFrame":
    """Read one table of a committed output folder (a file, or a Spark folder of part files), checking the folder's
    complete manifest and every checksum. A folder without a complete manifest is refused."""
    import pandas as pd

    directory = as_path(directory, conn_id)
    body = read_manifest(directory)
    path = join(directory, name)
    entry = body["files"].get(name)
    if entry is None:
        raise IncompleteOutput(path, "not listed in the folder's manifest")
    parts = entry.get("parts")
    if parts is None:
        data = read_bytes(path)
        verify_output(path, data, body)
        return _parse(path, data, detect_format(path, fmt))
    frames = []
    for part, meta in sorted(parts.items()):
        data = read_bytes(join(path, part))
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise IncompleteOutput(join(path, part), "checksum differs from the folder's manifest")
        frames.append(_parse_parquet(join(path, part), data))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def folder_entries(directory: Any, names: list[str]) -> dict[str, dict]:
    """Manifest entries (per part file: bytes, sha256) of folders written by another writer (Spark)."""
    out: dict[str, dict] = {}
    directory = as_path(directory)
    for name in names:
        folder = join(directory, name)
        parts = {}
        for child in folder.iterdir():
            if child.name.startswith((".", "_")):
                continue
            data = read_bytes(child)
            parts[child.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        out[name] = {"parts": parts}
    return out


def write_frame(frame: "pd.DataFrame", path: Any, fmt: str | None = None, conn_id: str | None = None) -> str:
    path = as_path(path, conn_id)
    fmt = detect_format(path, fmt) if fmt or getattr(path, "suffix", "") else "parquet"
    return write_bytes_atomic(path, frame_to_bytes(frame, fmt))


def write_json(obj: Any, path: Any, conn_id: str | None = None) -> str:
    return write_bytes_atomic(as_path(path, conn_id), json_bytes(obj))


def read_json(path: Any, conn_id: str | None = None) -> Any:
    data = read_bytes(path, conn_id)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StewardInputError(as_path(path, conn_id), f"not valid JSON: {exc}") from None
