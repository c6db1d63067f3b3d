"""Reference profile: everything drift detection needs from the training data, nothing more.

A profile keeps, per column, the sorted finite values (numeric) or the category counts (categorical). Detection
then reads only the profile and the new batch: the reference side is sorted once, here, and never again.

Columns larger than ``max_exact`` keep a quantile sketch instead of every value: the order statistics at ``k``
evenly spaced ranks (``k = max_exact``, the first and last rank included, so min/max stay exact). For any ``x``
the sketch ECDF ``F_s(x) = #(sketch <= x) / k`` and the true ECDF ``F(x)`` satisfy

    |F_s(x) - F(x)| <= 1 / (k - 1) + 1 / n      (``ColumnProfile.cdf_error_bound``)

so a KS statistic computed from the sketch is within that bound of the exact one. Wasserstein-1 from the sketch is
within ``(max - min) / (k - 1)`` of the exact one. p-values always use the true ``n``.

Storage is a single uncompressed ``.npz`` file: one ``__meta__`` entry (UTF-8 JSON, as bytes) plus one float64 array
per numeric column, each starting at a 64-byte aligned offset (padding in the zip extra field), so loading hands out
read-only views into the bytes read (no copy). ``np.load(..., allow_pickle=False)`` reads it too; older
and compressed files still load (through np.load).

Integrity: a ``__sha256__`` member holds the SHA-256 of every other member (name, dtype, shape, bytes), checked on
every load: a profile with a flipped byte raises ``ProfileCorrupted`` instead of reporting drift that is not there.
Files written before the checksum (format version 1) are checked against the zip CRC-32 of each member instead.
``save`` is atomic: a reader sees the old profile or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.drift.checks import check_column_list, check_positive_int
from airflow_agentic.drift.stats import ReferenceGrid, sort_finite

if TYPE_CHECKING:
    import pandas as pd

PREDICTION_COLUMN = "__prediction__"
OTHER_CATEGORY = "__other__"
DEFAULT_MAX_EXACT = 200_000
FORMAT_VERSION = 2  # 2: the __sha256__ member
FORMAT_NAME = "airflow-agentic-reference-profile"
CHECKSUM_KEY = "__sha256__"


class ProfileCorrupted(ValueError):
    """The stored profile is damaged (checksum mismatch, truncated, unreadable) or is not a profile: rebuild it."""


def payload_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every member but the checksum, in name order: name, dtype, shape and the raw bytes."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        if key == CHECKSUM_KEY:
            continue
        array = np.ascontiguousarray(arrays[key])
        h.update(json.dumps([key, array.dtype.str, list(array.shape)]).encode("utf-8") + b"\0")
        h.update(memoryview(array).cast("B") if array.size else b"")
    return h.hexdigest()


@dataclass
class ColumnProfile:
    name: str
    kind: str  # "numeric" | "categorical"
    dtype: str
    n: int  # non-null count (numeric: finite values + infinities)
    nulls: int = 0
    nonfinite: int = 0
    min: float | None = None
    max: float | None = None
    sorted_values: np.ndarray | None = None
    categories: dict[str, int] | None = None
    exact: bool = True
    n_finite: int = 0  # number of finite values summarised by sorted_values (== len(sorted_values) when exact)
    lumped: bool = False  # categories beyond max_categories were merged into OTHER_CATEGORY
    scale: float | None = None  # effect denominator, see effect_scale (computed once, stored with the profile)
    # bucket counts of sorted_values for detection without sorting the batch (built on first use, never stored)
    _grid: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def effect_scale(self) -> float:
        """Reference IQR (std when the IQR is 0, 1 when both are): divides Wasserstein-1 into the effect size."""
        if self.scale is None:
            self.scale = effect_scale_of(self.sorted_values)
        return self.scale

    def reference_grid(self) -> ReferenceGrid | None:
        """The ReferenceGrid of the numeric values (None when too small to pay), built once per loaded profile."""
        if self._grid is None:
            self._grid = ReferenceGrid.build(self.sorted_values) if self.kind == "numeric" else None
            if self._grid is None:
                self._grid = False
        return self._grid or None

    @property
    def cdf_error_bound(self) -> float:
        """Max |ECDF(sorted_values) - ECDF(true reference)|: 0 when exact, else 1/(k-1) + 1/n."""
        if self.exact or self.sorted_values is None:
            return 0.0
        k = len(self.sorted_values)
        return 1.0 / (k - 1) + 1.0 / max(self.n_finite, 1)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "dtype": self.dtype, "n": self.n, "nulls": self.nulls}
        if self.kind == "numeric":
            out.update(nonfinite=self.nonfinite, min=self.min, max=self.max, exact=self.exact)
            if self.sorted_values is not None and len(self.sorted_values):
                q = sorted_quantiles(self.sorted_values, [0.25, 0.5, 0.75])
                out.update(p25=float(q[0]), median=float(q[1]), p75=float(q[2]),
                           mean=float(np.mean(self.sorted_values)))
        else:
            cats = self.categories or {}
            top = sorted(cats.items(), key=lambda kv: -kv[1])[:10]
            out.update(n_categories=len(cats), top=dict(top), lumped=self.lumped)
        return out


def category_keys(values: Any) -> Any:
    """Map non-null values to the string keys used for category counts (same rule for reference and batch).

    Integral floats become ints first so that ``3`` and ``3.0`` (an int column that gained NaNs) share the key "3".
    Returns a pandas Series of str.
    """
    import pandas as pd

    s = pd.Series(values)
    s = s[s.notna()]
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype(bool).astype(str)
    if pd.api.types.is_numeric_dtype(s.dtype):
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
        if len(arr) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return pd.Series(arr.astype(np.int64), index=s.index).astype(str)
    return s.astype(str)


def category_counts(values: Any) -> tuple[dict[str, int], int]:
    """({category key: count}, number of non-null values) with the keys of ``category_keys``.

    Counts the raw values first and maps only the distinct ones to keys: a column has far fewer categories than rows.
    """
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    raw = s.value_counts(dropna=True, sort=False)
    keys = category_keys(pd.Series(raw.index, dtype=s.dtype if isinstance(s.dtype, np.dtype) else object))
    counts: dict[str, int] = {}
    for key, count in zip(keys.tolist(), raw.to_numpy().tolist()):
        counts[key] = counts.get(key, 0) + int(count)
    ordered = dict(sorted(counts.items(), key=lambda kv: -kv[1]))  # value_counts order: most frequent first
    return ordered, int(raw.sum())


def sorted_quantiles(sorted_values: np.ndarray, qs: list[float]) -> list[float]:
    """np.quantile (linear) of an already sorted array without its partition pass: numpy's own interpolation on
    the two neighbours of each virtual index gives the same floats."""
    n = len(sorted_values)
    out = []
    for q in qs:
        virtual = q * (n - 1)
        below = min(int(math.floor(virtual)), n - 1)
        pair = sorted_values[below:below + 2]
        out.append(float(np.quantile(pair, virtual - below)) if len(pair) == 2 else float(pair[0]))
    return out


def effect_scale_of(sorted_values: np.ndarray | None) -> float:
    if sorted_values is None or len(sorted_values) == 0:
        return 1.0
    q1, q3 = sorted_quantiles(sorted_values, [0.25, 0.75])
    scale = float(q3 - q1)
    if scale <= 0:
        scale = float(np.std(sorted_values))
    return scale if scale > 0 else 1.0


def sketch_sorted(sorted_values: np.ndarray, k: int) -> np.ndarray:
    """Order statistics at k evenly spaced ranks (first and last included)."""
    n = len(sorted_values)
    if n <= k:
        return sorted_values
    ranks = np.round(np.linspace(0, n - 1, k)).astype(np.int64)
    return sorted_values[ranks]


def _is_categorical_dtype(dtype: Any) -> bool:
    import pandas as pd

    return bool(
        pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def numeric_values(series: Any) -> np.ndarray:
    """float64 view of a numeric (or datetime: epoch seconds) column, nulls as NaN."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        out = series.astype("int64").to_numpy(dtype=np.float64) / 1e9
        out[series.isna().to_numpy()] = np.nan
        return out
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def profile_numeric(name: str, dtype: str, values: np.ndarray, max_exact: int = DEFAULT_MAX_EXACT) -> ColumnProfile:
    values = np.asarray(values, dtype=np.float64)
    nan_mask = np.isnan(values)
    nulls = int(nan_mask.sum())
    finite = values[np.isfinite(values)]
    nonfinite = int(len(values) - nulls - len(finite))
    finite = sort_finite(finite)
    exact = len(finite) <= max_exact
    stored = finite if exact else sketch_sorted(finite, max_exact)
    return ColumnProfile(
        name=name, kind="numeric", dtype=dtype, n=int(len(values) - nulls), nulls=nulls, nonfinite=nonfinite,
        min=float(finite[0]) if len(finite) else None, max=float(finite[-1]) if len(finite) else None,
        sorted_values=np.ascontiguousarray(stored), exact=exact, n_finite=int(len(finite)),
        scale=effect_scale_of(stored),
    )


def profile_categorical(name: str, dtype: str, series: Any, max_categories: int | None = None) -> ColumnProfile:
    cats, n = category_counts(series)
    lumped = False
    if max_categories is not None and len(cats) > max_categories:
        top = sorted(cats.items(), key=lambda kv: -kv[1])[: max_categories - 1]
        rest = sum(cats.values()) - sum(v for _, v in top)
        cats = dict(top)
        cats[OTHER_CATEGORY] = cats.get(OTHER_CATEGORY, 0) + rest
        lumped = True
    return ColumnProfile(name=name, kind="categorical", dtype=dtype, n=n, nulls=int(len(series) - n),
                         categories=cats, lumped=lumped)


@dataclass
class ReferenceProfile:
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    n_rows: int = 0
    target: str | None = None
    created_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # a random row sample of the numeric feature columns (NaN kept), for the multivariate tests
    sample: np.ndarray | None = None
    sample_columns: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        categorical: list[str] | None = None,
        exclude: list[str] | tuple[str, ...] = (),
        target: str | None = None,
        max_categories: int = 50,
        predictions: Any = None,
        max_exact: int = DEFAULT_MAX_EXACT,
        metadata: dict[str, Any] | None = None,
        sample_rows: int = 2000,
        seed: int = 0,
    ) -> ReferenceProfile:
        """Profile a pandas DataFrame.

        object/string/category/bool columns are categorical; numeric columns are numeric unless listed in
        ``categorical`` (allowed for integer-valued columns with at most ``max_categories`` distinct values).
        String-like categorical columns with more than ``max_categories`` distinct values keep the most frequent
        ``max_categories - 1`` and merge the rest into ``"__other__"``. ``predictions`` (model outputs on the
        reference rows: 1-D labels/scores, or 2-D probabilities whose last column is kept) is stored under
        ``"__prediction__"``. ``target`` names the label column (profiled like the others, used for label drift).
        ``sample_rows`` random rows of the numeric feature columns are kept for the multivariate tests.
        """
        import datetime as _dt

        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"from_frame needs a pandas DataFrame, got {type(df).__name__}")
        labels = [str(c) for c in df.columns]
        if len(set(labels)) != len(labels):
            dup = sorted({c for c in labels if labels.count(c) > 1})
            raise ValueError(f"the frame has duplicate column names: {dup}; rename or drop them first")
        check_positive_int("max_categories", max_categories, minimum=2)
        check_positive_int("max_exact", max_exact, minimum=2)
        check_positive_int("sample_rows", sample_rows, minimum=0)
        if target is not None and not isinstance(target, str):
            raise ValueError(f"target must be a column name (str), got {target!r}")
        declared = set(check_column_list("categorical", categorical) or ())
        exclude = tuple(check_column_list("exclude", exclude) or ()) if exclude else ()
        missing = [c for c in declared | set(exclude) | ({target} if target else set()) if c not in df.columns]
        if missing:
            raise KeyError(f"columns not in frame: {sorted(missing)}")
        cols: dict[str, ColumnProfile] = {}
        for name in df.columns:
            if name in exclude:
                continue
            series = df[name]
            key = str(name)
            dtype = str(series.dtype)
            if name in declared:
                if not _is_categorical_dtype(series.dtype):
                    distinct = series.dropna().nunique()
                    if distinct > max_categories:
                        raise ValueError(f"column {key!r} declared categorical has {distinct} distinct values "
                                         f"(> max_categories={max_categories})")
                cols[key] = profile_categorical(key, dtype, series, None)
            elif _is_categorical_dtype(series.dtype):
                cols[key] = profile_categorical(key, dtype, series, max_categories)
            elif pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
                cols[key] = profile_numeric(key, dtype, numeric_values(series), max_exact)
            else:
                cols[key] = profile_categorical(key, dtype, series, max_categories)
        if predictions is not None:
            cols[PREDICTION_COLUMN] = profile_predictions(predictions, max_exact=max_exact)
        sample_columns = [c for c, p in cols.items() if p.kind == "numeric" and c != PREDICTION_COLUMN and c != target]
        sample = None
        if sample_rows and sample_columns and len(df):
            rng = np.random.default_rng(seed)
            rows = rng.choice(len(df), size=min(sample_rows, len(df)), replace=False)
            sample = np.column_stack([numeric_values(df[c].iloc[rows]) for c in sample_columns])
        return cls(columns=cols, n_rows=int(len(df)), target=target,
                   created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(), metadata=dict(metadata or {}),
                   sample=sample, sample_columns=sample_columns)

    def with_predictions(self, predictions: Any, *, max_exact: int = DEFAULT_MAX_EXACT) -> ReferenceProfile:
        self.columns[PREDICTION_COLUMN] = profile_predictions(predictions, max_exact=max_exact)
        return self

    # ------------------------------------------------------------------ views
    @property
    def feature_columns(self) -> list[str]:
        return [c for c in self.columns if c != PREDICTION_COLUMN and c != self.target]

    @property
    def prediction(self) -> ColumnProfile | None:
        return self.columns.get(PREDICTION_COLUMN)

    def schema(self) -> dict[str, str]:
        return {name: col.dtype for name, col in self.columns.items()}

    def to_summary(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows, "target": self.target, "created_at": self.created_at,
            "n_columns": len(self.columns), "columns": {n: c.summary() for n, c in self.columns.items()},
        }

    def reference_values(self, name: str) -> np.ndarray:
        """Raw-like reference data for backends that need it: the sorted finite values (numeric; the sketch when
        not exact), or the categories repeated by their counts (categorical, as str)."""
        col = self.columns[name]
        if col.kind == "numeric":
            return col.sorted_values if col.sorted_values is not None else np.empty(0)
        cats = col.categories or {}
        return np.repeat(np.array(list(cats.keys()), dtype=object), list(cats.values()))

    # ------------------------------------------------------------------ storage
    def _meta(self) -> dict[str, Any]:
        cols = []
        for i, (name, c) in enumerate(self.columns.items()):
            cols.append({
                "name": name, "kind": c.kind, "dtype": c.dtype, "n": c.n, "nulls": c.nulls,
                "nonfinite": c.nonfinite, "min": c.min, "max": c.max, "categories": c.categories,
                "exact": c.exact, "n_finite": c.n_finite, "lumped": c.lumped,
                "effect_scale": c.effect_scale if c.kind == "numeric" else None,
                "values_key": f"v{i}" if c.sorted_values is not None else None,
            })
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "n_rows": self.n_rows,
                "target": self.target, "created_at": self.created_at, "metadata": self.metadata, "columns": cols,
                "sample_columns": self.sample_columns}

    def to_bytes(self) -> bytes:
        meta = self._meta()
        arrays = {"__meta__": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
        for spec, col in zip(meta["columns"], self.columns.values()):
            if spec["values_key"]:
                arrays[spec["values_key"]] = np.asarray(col.sorted_values, dtype=np.float64)
        if self.sample is not None:
            arrays["__sample__"] = np.asarray(self.sample, dtype=np.float64)
        arrays[CHECKSUM_KEY] = np.frombuffer(payload_digest(arrays).encode("ascii"), dtype=np.uint8)
        return aligned_npz_bytes(arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """Arrays come back as read-only views into ``data`` (no copy) when the file is one of ours; older or
        compressed files go through ``np.load``. Raises ``ProfileCorrupted`` when the bytes are damaged."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_bytes needs bytes, got {type(data).__name__}")
        data = bytes(data)
        try:
            arrays = npz_views(data)
            if arrays is None:
                with np.load(io.BytesIO(data), allow_pickle=False) as npz:  # reads whole members: CRC checked
                    arrays = {key: npz[key] for key in npz.files}
            meta = json.loads(bytes(arrays["__meta__"]).decode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - whatever the damage, one clear error
            raise ProfileCorrupted(f"the reference profile is unreadable ({len(data)} bytes: "
                                   f"{type(exc).__name__}: {exc}); rebuild it") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise ProfileCorrupted("not a reference profile (no airflow-agentic profile metadata); rebuild it")
        stored = arrays.pop(CHECKSUM_KEY, None)
        if stored is not None:
            expected = bytes(stored).decode("ascii", errors="replace")
            actual = payload_digest(arrays)
            if expected != actual:
                raise ProfileCorrupted(f"the reference profile is corrupted: sha256 {actual[:16]}... does not match "
                                       f"the stored {expected[:16]}...; rebuild it")
        elif int(meta.get("version") or 0) >= 2:
            raise ProfileCorrupted("the reference profile has lost its checksum member; rebuild it")
        else:
            _check_zip_crc(data)  # written before the checksum: the zip CRC-32 of each member is what there is
        try:
            return cls._from_meta(meta, arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileCorrupted(f"the reference profile metadata is inconsistent ({type(exc).__name__}: {exc}); "
                                   f"rebuild it") from exc

    @classmethod
    def _from_meta(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ReferenceProfile:
        cols: dict[str, ColumnProfile] = {}
        for spec in meta["columns"]:
            values = arrays[spec["values_key"]] if spec["values_key"] else None
            cols[spec["name"]] = ColumnProfile(
                name=spec["name"], kind=spec["kind"], dtype=spec["dtype"], n=spec["n"], nulls=spec["nulls"],
                nonfinite=spec["nonfinite"], min=spec["min"], max=spec["max"], sorted_values=values,
                categories=spec["categories"], exact=spec["exact"], n_finite=spec["n_finite"],
                lumped=spec.get("lumped", False), scale=spec.get("effect_scale"),
            )
        return cls(columns=cols, n_rows=meta["n_rows"], target=meta["target"], created_at=meta["created_at"],
                   metadata=meta.get("metadata") or {}, sample=arrays.get("__sample__"),
                   sample_columns=meta.get("sample_columns") or [])

    def save(self, path: Any) -> None:
        """Write one .npz file to a str path or anything with ``.open("wb")`` (pathlib, ObjectStoragePath, UPath).

        Atomic: a temporary sibling renamed over the target on a local disk, one put on an object store."""
        from airflow_agentic.data.io import write_bytes_atomic

        write_bytes_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: Any) -> ReferenceProfile:
        if isinstance(path, str):
            with open(path, "rb") as fh:
                data = fh.read()
        else:
            with path.open("rb") as fh:
                data = fh.read()
        return cls.from_bytes(data)


def _check_zip_crc(data: bytes) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            bad = zf.testzip()
    except Exception as exc:  # noqa: BLE001
        raise ProfileCorrupted(f"the reference profile is unreadable ({type(exc).__name__}: {exc}); rebuild it") from exc
    if bad is not None:
        raise ProfileCorrupted(f"the reference profile is corrupted: member {bad!r} fails its CRC-32; rebuild it")


_ZIP_ALIGN = 64  # numpy pads .npy headers to 64 bytes: a 64-aligned member start keeps the data 64-aligned
_PAD_EXTRA_ID = 0xD935  # the zip extra field id Android's zipalign uses for padding; readers skip unknown ids


def aligned_npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz (np.load reads it) whose array data start at 64-byte aligned offsets.

    Padding goes into each member's extra field, so ``npz_views`` can hand out the arrays as aligned views.
    """
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.CRC = info.compress_size = info.file_size = 0  # FileHeader's length does not depend on them
            header = len(info.FileHeader(zip64=True))
            pad = -(buf.tell() + header) % _ZIP_ALIGN
            if 0 < pad < 4:  # an extra field needs at least its 4-byte id + size
                pad += _ZIP_ALIGN
            if pad:
                info.extra = _PAD_EXTRA_ID.to_bytes(2, "little") + (pad - 4).to_bytes(2, "little") + bytes(pad - 4)
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return buf.getvalue()


def npz_views(data: bytes) -> dict[str, np.ndarray] | None:
    """The arrays of an uncompressed .npz as read-only views into ``data``: no copy, no CRC pass over the values.

    None when a member is compressed or not a plain .npy (np.load handles those). A view whose data are not aligned
    for its dtype is copied: numpy would otherwise copy it again on every sort or search.
    """
    import struct
    import zipfile

    from numpy.lib import format as npy

    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                return None
            start = info.header_offset
            if data[start:start + 4] != b"PK\x03\x04":
                return None
            name_len, extra_len = struct.unpack_from("<HH", data, start + 26)
            offset = start + 30 + name_len + extra_len
            major = data[offset + 6] if offset + 8 <= len(data) else 0
            if data[offset:offset + 6] != npy.MAGIC_PREFIX or major not in (1, 2):
                return None
            size_bytes = 2 if major == 1 else 4
            header_len = int.from_bytes(data[offset + 8:offset + 8 + size_bytes], "little")
            body = offset + 8 + size_bytes + header_len
            read_header = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(io.BytesIO(data[offset + 8:body]))
            count = math.prod(shape)
            if dtype.hasobject or body + count * dtype.itemsize > offset + info.file_size:
                return None
            array = np.frombuffer(data, dtype=dtype, count=count, offset=body)
            array = array.reshape(shape, order="F" if fortran else "C")
            if not array.flags.aligned:
                array = array.copy()
                array.flags.writeable = False
            arrays[info.filename[:-4]] = array
    return arrays


def profile_predictions(predictions: Any, *, max_exact: int = DEFAULT_MAX_EXACT) -> ColumnProfile:
    """Profile model outputs: float scores/probabilities -> numeric; labels (int/str/bool) -> categorical."""
    import pandas as pd

    arr = np.asarray(predictions)
    if arr.ndim == 2:
        arr = arr[:, -1]
    series = pd.Series(arr)
    if pd.api.types.is_float_dtype(series.dtype):
        return profile_numeric(PREDICTION_COLUMN, str(series.dtype), numeric_values(series), max_exact)
    return profile_categorical(PREDICTION_COLUMN, str(series.dtype), series, None)


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x
