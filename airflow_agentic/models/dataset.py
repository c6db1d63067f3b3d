"""Tabular training data as the model code sees it: features, labels, which columns are categorical, and stats."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# Integer columns with at most this many distinct values are read as category codes unless told otherwise.
INT_CODE_MAX_UNIQUE = 12


@dataclass(frozen=True)
class FeatureSchema:
    """Which columns are numeric and which are categorical; categorical ones are either strings or integer codes."""

    numeric: tuple[str, ...]
    categorical_str: tuple[str, ...] = ()
    categorical_int: tuple[str, ...] = ()

    @property
    def categorical(self) -> tuple[str, ...]:
        return self.categorical_str + self.categorical_int

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric), "categorical_str": list(self.categorical_str),
                "categorical_int": list(self.categorical_int)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        return cls(tuple(data.get("numeric", ())), tuple(data.get("categorical_str", ())),
                   tuple(data.get("categorical_int", ())))


def infer_schema(X: pd.DataFrame, categorical: list[str] | None = None,
                 int_code_max_unique: int = INT_CODE_MAX_UNIQUE) -> FeatureSchema:
    """Strings, pandas categories and (by default) low-cardinality integer columns are categorical.

    Integer codes with NaN arrive as floats; a float column whose non-null values are all whole numbers and few is
    treated as codes too. Pass `categorical` to decide explicitly.
    """
    import pandas as pd

    numeric: list[str] = []
    cat_str: list[str] = []
    cat_int: list[str] = []
    explicit = set(categorical) if categorical is not None else None
    for col in X.columns:
        series = X[col]
        is_stringish = (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)
                        or isinstance(series.dtype, pd.CategoricalDtype))
        if explicit is not None:
            if col not in explicit:
                numeric.append(col)
            elif is_stringish:
                cat_str.append(col)
            else:
                cat_int.append(col)
            continue
        if is_stringish:
            cat_str.append(col)
        elif pd.api.types.is_bool_dtype(series):
            numeric.append(col)
        elif _looks_like_codes(series, int_code_max_unique):
            cat_int.append(col)
        else:
            numeric.append(col)
    return FeatureSchema(tuple(numeric), tuple(cat_str), tuple(cat_int))


def _looks_like_codes(series: pd.Series, max_unique: int) -> bool:
    import pandas as pd

    if max_unique <= 0:
        return False
    values = series.dropna()
    if values.empty:
        return False
    if pd.api.types.is_integer_dtype(series):
        return values.nunique() <= max_unique
    if pd.api.types.is_float_dtype(series):
        return bool(np.all(np.mod(values.to_numpy(), 1) == 0)) and values.nunique() <= max_unique
    return False


def normalise_frame(X: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Categoricals as plain object strings (with NaN kept), so models and MLflow signatures see stable types."""
    X = X.copy()
    for col in schema.categorical_str:
        series = X[col]
        X[col] = series.astype(object).where(series.notna(), np.nan).map(
            lambda v: v if isinstance(v, float) and np.isnan(v) else str(v))
    for col in schema.categorical_int:
        X[col] = X[col].astype("float64")
    return X


def content_hash(X: pd.DataFrame, y: pd.Series | None = None) -> str:
    """sha256 over row-wise pandas hashes of features (and labels); order- and value-sensitive."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(",".join(map(str, X.columns)).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    if y is not None:
        digest.update(pd.util.hash_pandas_object(pd.Series(y), index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class DataStats:
    """What the architect plans from."""

    rows: int
    n_features: int
    categorical_share: float
    n_classes: int
    minority_share: float
    missing_share: float

    @classmethod
    def from_frame(cls, X: pd.DataFrame, y: pd.Series, schema: FeatureSchema | None = None) -> DataStats:
        import pandas as pd

        schema = schema or infer_schema(X)
        counts = pd.Series(y).value_counts(normalize=True)
        n_cells = max(X.shape[0] * X.shape[1], 1)
        return cls(
            rows=int(X.shape[0]), n_features=int(X.shape[1]),
            categorical_share=len(schema.categorical) / max(X.shape[1], 1),
            n_classes=int(counts.size), minority_share=float(counts.min()) if counts.size else 0.0,
            missing_share=float(X.isna().to_numpy().sum() / n_cells),
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataStats:
        return cls(**data)


@dataclass
class Dataset:
    """Features and labels with a schema; `categorical=None` infers it."""

    X: pd.DataFrame
    y: pd.Series
    categorical: list[str] | None = None
    location: str | None = None
    schema: FeatureSchema = field(init=False)

    def __post_init__(self) -> None:
        import pandas as pd

        self.schema = infer_schema(self.X, self.categorical)
        self.X = normalise_frame(self.X, self.schema)
        self.y = pd.Series(np.asarray(self.y), index=self.X.index, name=getattr(self.y, "name", None) or "label")

    def stats(self) -> DataStats:
        return DataStats.from_frame(self.X, self.y, self.schema)

    def content_hash(self) -> str:
        return content_hash(self.X, self.y)
