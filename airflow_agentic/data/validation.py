"""Great Expectations 1.x validation: a suite derived from the reference profile, or one the user supplies.

Suites are kept as plain JSON (``{"name", "expectations": [{"type", "kwargs"}]}``) so they cross XCom and files; GX
objects exist only inside :func:`validate_frame`. One ephemeral context, one whole-dataframe batch definition and one
``validate`` call for the whole suite: GX is slow, so we never validate twice.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from airflow_agentic.drift.profile import ReferenceProfile

log = logging.getLogger(__name__)

# One type list for both engines: GX compares pandas dtype names or Spark type names against it.
NUMERIC_TYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64",
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype",
    "UInt64Dtype", "Float32Dtype", "Float64Dtype",
    "ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType",
]
BOOL_TYPES = ["bool", "boolean", "BooleanType"]


def _numeric_dtype(dtype: str) -> bool:
    return any(dtype.lower().startswith(p) for p in ("int", "uint", "float")) and "interval" not in dtype.lower()


def category_value_set(column_profile: Any) -> list:
    """Category keys in the column's own type (profile keys are strings; int-coded columns compare as numbers)."""
    keys = list((column_profile.categories or {}).keys())
    dtype = str(column_profile.dtype)
    if dtype.startswith("bool"):
        return [k == "True" for k in keys]
    if _numeric_dtype(dtype):
        out = []
        for k in keys:
            value = float(k)
            out.append(int(value) if value.is_integer() else value)
        return out
    return keys


def range_bounds(column_profile: Any, tolerance: float) -> tuple[float | None, float | None]:
    lo, hi = column_profile.min, column_profile.max
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None, None
    span = hi - lo
    if span <= 0:
        span = max(abs(hi), 1.0)
    return lo - tolerance * span, hi + tolerance * span


def suite_from_profile(profile: "ReferenceProfile", *, id_column: str | None = None, range_tolerance: float = 0.25,
                       required: Iterable[str] | None = None, exclude: Iterable[str] = (),
                       name: str = "steward_reference_suite") -> dict:
    """Expectations derived from a reference profile, as JSON.

    columns exist; numeric types; not-null where the reference had no nulls (or ``required``); values between the
    reference min/max widened by ``range_tolerance`` x span; values in the reference categories; unique id.
    The prediction column of the profile and ``exclude`` are skipped; the target is not required to be non-null.
    """
    from airflow_agentic.drift.profile import PREDICTION_COLUMN

    skip = set(exclude) | {PREDICTION_COLUMN}
    required_set = set(required) if required is not None else None
    expectations: list[dict] = []

    def add(kind: str, **kwargs: Any) -> None:
        expectations.append({"type": kind, "kwargs": kwargs})

    for col_name, col in profile.columns.items():
        if col_name in skip:
            continue
        add("expect_column_to_exist", column=col_name)
        is_required = (col_name in required_set) if required_set is not None else (
            col.nulls == 0 and col_name != profile.target)
        if is_required:
            add("expect_column_values_to_not_be_null", column=col_name)
        if col_name == id_column:
            continue
        if col.kind == "numeric":
            add("expect_column_values_to_be_in_type_list", column=col_name, type_list=NUMERIC_TYPES)
            lo, hi = range_bounds(col, range_tolerance)
            if lo is not None:
                add("expect_column_values_to_be_between", column=col_name, min_value=lo, max_value=hi)
        elif col.categories and not col.lumped:
            if _numeric_dtype(str(col.dtype)):
                add("expect_column_values_to_be_in_type_list", column=col_name, type_list=NUMERIC_TYPES)
            add("expect_column_values_to_be_in_set", column=col_name, value_set=category_value_set(col))
    if id_column:
        if id_column not in profile.columns:
            add("expect_column_to_exist", column=id_column)
        add("expect_column_values_to_be_unique", column=id_column)
    return {"name": name, "expectations": expectations, "meta": {"derived_from": "reference_profile",
                                                               "range_tolerance": range_tolerance}}


def normalise_suite(suite: Any) -> dict:
    """Accept a suite dict (GX JSON), a JSON string / path-like JSON text, or a list of expectation configs."""
    if isinstance(suite, (bytes, str)):
        suite = json.loads(suite)
    if isinstance(suite, (list, tuple)):
        suite = {"name": "user_suite", "expectations": list(suite)}
    if not isinstance(suite, dict) or "expectations" not in suite:
        raise ValueError("a suite is a dict with 'expectations' or a list of expectation configs")
    expectations = []
    for item in suite["expectations"]:
        if hasattr(item, "to_json_dict"):
            item = item.to_json_dict()
        kind = item.get("type") or item.get("expectation_type")
        if not kind:
            raise ValueError(f"expectation without a type: {item!r}")
        expectations.append({"type": kind, "kwargs": dict(item.get("kwargs") or {}),
                             **({"meta": item["meta"]} if item.get("meta") else {})})
    return {"name": suite.get("name") or "user_suite", "expectations": expectations, "meta": suite.get("meta") or {}}


def _gx_suite(suite: dict) -> Any:
    import great_expectations as gx

    configs = []
    for item in suite["expectations"]:
        kwargs = {k: v for k, v in item["kwargs"].items() if k != "batch_id"}
        configs.append({"type": item["type"], "kwargs": kwargs, "meta": item.get("meta") or {}})
    return gx.ExpectationSuite(name=suite["name"], expectations=configs)


def validate_frame(frame: Any, suite: Any, *, engine: str | None = None,
                   result_format: str | dict = "SUMMARY") -> dict:
    """Validate a pandas or Spark DataFrame against the whole suite in one call; return GX's result as JSON.

    The returned dict is GX's ``ExpectationSuiteValidationResult.to_json_dict()`` plus ``"elapsed_seconds"``.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    suite = normalise_suite(suite)
    engine = engine or ("spark" if type(frame).__module__.startswith("pyspark") else "pandas")
    started = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    if engine == "spark":
        source = context.data_sources.add_spark("steward_spark")
    else:
        source = context.data_sources.add_pandas("steward_pandas")
    batch_definition = source.add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole")
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    if isinstance(result_format, str):
        result_format = {"result_format": result_format, "partial_unexpected_count": 10}
    result = batch.validate(_gx_suite(suite), result_format=result_format)
    out = result.to_json_dict()
    out["elapsed_seconds"] = round(time.perf_counter() - started, 4)
    out["engine"] = engine
    return out


def summarise_validation(result: dict) -> dict:
    """Small view of a GX result for reports: success, counts, failed expectations (type, column, unexpected)."""
    failed = []
    for item in result.get("results", []):
        if item.get("success"):
            continue
        config = item.get("expectation_config") or {}
        res = item.get("result") or {}
        failed.append({"type": config.get("type"), "column": (config.get("kwargs") or {}).get("column"),
                       "unexpected_count": res.get("unexpected_count"),
                       "exception": (item.get("exception_info") or {}).get("exception_message")})
    stats = result.get("statistics") or {}
    return {"success": bool(result.get("success")), "evaluated": stats.get("evaluated_expectations"),
            "successful": stats.get("successful_expectations"), "failed": failed,
            "elapsed_seconds": result.get("elapsed_seconds")}
