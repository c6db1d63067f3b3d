"""The Data Steward's rules on PySpark: same findings, same quarantine reasons, same rows in the same place.

Row order is kept with a ``_pos`` column (``monotonically_increasing_id``, increasing in input order), so "first
occurrence" means the same row as in pandas. Row-level status lives in columns ``_reason`` (null = clean),
``_sentinel`` and ``_unparsed``; nothing is ever filtered out before the final split. The Spark session (and so the
cluster, through its ``master``) is the caller's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from airflow_agentic.data.errors import InvariantViolation, PipelineStopped, StewardInputError
from airflow_agentic.data.findings import (
    SAMPLE_SIZE,
    Finding,
    Findings,
    StewardConfig,
    bounds,
    category_mapping,
    column_aliases,
    is_string_category,
    normalise_key,
    reference_columns,
    required_columns,
    sentinel_values_for,
    suggest_renames,
)
from airflow_agentic.data.steward import INVALID_REASON_ORDER, OUTPUT_FILES, QUARANTINE_REASON_COLUMN, StewardReport

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from airflow_agentic.drift.profile import ColumnProfile, ReferenceProfile

POS, REASON, SENTINEL, UNPARSED = "_pos", "_reason", "_sentinel", "_unparsed"
_INTERNAL = (POS, REASON, SENTINEL, UNPARSED)


def _F():
    from pyspark.sql import functions as F

    return F


def _is_string(sdf: "DataFrame", name: str) -> bool:
    from pyspark.sql.types import StringType

    return isinstance(sdf.schema[name].dataType, StringType)


def _is_numeric(sdf: "DataFrame", name: str) -> bool:
    from pyspark.sql.types import BooleanType, NumericType

    dtype = sdf.schema[name].dataType
    return isinstance(dtype, NumericType) and not isinstance(dtype, BooleanType)


def _is_float(sdf: "DataFrame", name: str) -> bool:
    from pyspark.sql.types import DoubleType, FloatType

    return isinstance(sdf.schema[name].dataType, (DoubleType, FloatType))


def _null(sdf: "DataFrame", name: str) -> "Column":
    F = _F()
    c = F.col(name)
    return (c.isNull() | F.isnan(c)) if _is_float(sdf, name) else c.isNull()


def _as_double(sdf: "DataFrame", name: str) -> tuple["Column", "Column"]:
    """(double value, mask of non-null values that did not parse)."""
    F = _F()
    c = F.col(name)
    if _is_numeric(sdf, name):
        return c.cast("double"), F.lit(False)
    value = F.trim(c).try_cast("double") if _is_string(sdf, name) else c.try_cast("double")
    return value, c.isNotNull() & value.isNull()


def _sentinel_expr(value: "Column", col: "ColumnProfile", config: StewardConfig) -> "Column":
    F = _F()
    listed = [float(v) for v in sentinel_values_for(col, config)]
    is_num = value.isNotNull() & ~F.isnan(value)
    expr = F.lit(False)
    if listed:
        expr = is_num & value.isin(listed)
    if col.nonfinite == 0:
        expr = expr | (is_num & value.isin([math.inf, -math.inf]))
    if col.kind == "numeric":
        lo, hi = bounds(col, config.far_factor)
        far = is_num & ~value.isin([math.inf, -math.inf]) & ((value < F.lit(lo)) | (value > F.lit(hi)))
        expr = expr | far
    return expr


def _oor_expr(value: "Column", col: "ColumnProfile", config: StewardConfig) -> "Column":
    F = _F()
    lo, hi = bounds(col, config.range_tolerance)
    finite = value.isNotNull() & ~F.isnan(value) & ~value.isin([math.inf, -math.inf])
    return finite & ((value < F.lit(lo)) | (value > F.lit(hi)))


def _unknown_expr(sdf: "DataFrame", name: str, col: "ColumnProfile") -> "Column":
    F = _F()
    known = list((col.categories or {}).keys())
    if is_string_category(col) or not _is_numeric(sdf, name):
        if _is_numeric(sdf, name):
            value = F.col(name).cast("double")
            keys = F.when(value == F.floor(value), value.cast("long").cast("string")).otherwise(
                F.col(name).cast("string"))
        else:
            keys = F.col(name).cast("string")
        return F.col(name).isNotNull() & ~keys.isin(known)
    numeric_known = []
    for k in known:
        try:
            numeric_known.append(float(k))
        except ValueError:
            pass
    value = F.col(name).cast("double")
    return ~_null(sdf, name) & ~value.isin(numeric_known)


def _norm_expr(column: "Column") -> "Column":
    F = _F()
    return F.lower(F.regexp_replace(F.trim(column), r"\s+", " "))


def _data_columns(sdf: "DataFrame") -> list[str]:
    return [c for c in sdf.columns if c not in _INTERNAL]


def _dup_exprs(sdf: "DataFrame", id_column: str | None) -> "DataFrame":
    """Adds boolean ``_dup`` (exact duplicate after the first) and ``_dupid`` (repeated id, different content)."""
    from pyspark.sql import Window

    F = _F()
    cols = _data_columns(sdf)
    sdf = sdf.withColumn("_dup", F.row_number().over(Window.partitionBy(*cols).orderBy(POS)) > 1)
    if id_column and id_column in sdf.columns:
        sdf = sdf.withColumn("_dupid", (~F.col("_dup")) & (
            F.row_number().over(Window.partitionBy(id_column, "_dup").orderBy(POS)) > 1))
    else:
        sdf = sdf.withColumn("_dupid", F.lit(False))
    return sdf


def inspect_spark(sdf: "DataFrame", profile: "ReferenceProfile", config: StewardConfig | None = None) -> Findings:
    """The same findings as :func:`airflow_agentic.data.findings.inspect_batch`, computed in one aggregation."""
    F = _F()
    started = time.perf_counter()
    config = config or StewardConfig()
    if POS not in sdf.columns:
        sdf = sdf.withColumn(POS, F.monotonically_increasing_id())
    ref = reference_columns(profile, config)
    id_col = config.id_column
    columns = [c for c in _data_columns(sdf) if c not in config.exclude]
    empty = sdf.select(*_data_columns(sdf)).limit(0).toPandas()
    items: list[Finding] = []

    missing = [c for c in ref if c not in sdf.columns]
    extra = [c for c in columns if c not in ref and c != id_col]
    renames = suggest_renames(missing, extra, empty, ref, config.rename_similarity)
    for m in missing:
        if m in renames:
            items.append(Finding("renamed_column", m, 0, "warning", [], {"from": renames[m], "to": m}))
        elif m == profile.target or m in config.optional:
            items.append(Finding("missing_column", m, 0, "warning", [], {"optional": True}))
        else:
            items.append(Finding("missing_column", m, 0, "critical", [], {"optional": False}))
    for e in extra:
        if e not in renames.values():
            items.append(Finding("extra_column", e, 0, "info", [], {"dtype": str(empty[e].dtype)}))
    if id_col and id_col not in sdf.columns:
        items.append(Finding("missing_column", id_col, 0, "critical", [], {"optional": False, "id_column": True}))
    for m, e in renames.items():
        sdf = sdf.withColumnRenamed(e, m)

    required = set(required_columns(profile, config))
    masks: list[tuple[str, str | None, Any, str, dict]] = []  # kind, column, expr, severity, detail
    parse_checks: list[tuple[str, Any, Any]] = []
    bad = F.lit(False)
    for name, col in ref.items():
        if name not in sdf.columns:
            continue
        is_target = name == profile.target
        null = _null(sdf, name)
        in_required = name in required
        masks.append(("nulls", name, null, "error" if in_required else "info",
                      {"required": in_required,
                       "reference_null_fraction": round(col.nulls / max(col.n + col.nulls, 1), 6)}))
        if in_required:
            bad = bad | null
        if name == id_col:
            continue
        if col.kind == "numeric" or not is_string_category(col):
            value, unparsed = _as_double(sdf, name)
            parse_checks.append((name, unparsed, ~null))
            masks.append(("type_mismatch", name, unparsed, "error",
                          {"batch_dtype": str(empty[name].dtype), "reference_dtype": str(col.dtype)}))
            sentinel = _sentinel_expr(value, col, config)
            masks.append(("sentinel", name, sentinel, "error", {}))
            bad = bad | unparsed | sentinel
            if col.kind == "numeric":
                lo, hi = bounds(col, config.range_tolerance)
                oor = _oor_expr(value, col, config) & ~sentinel
                masks.append(("out_of_range", name, oor, "warning" if is_target else "error",
                              {"allowed_min": lo, "allowed_max": hi, "reference_min": col.min,
                               "reference_max": col.max}))
                bad = bad | oor
                continue
            unknown = _unknown_expr(sdf, name, col) & ~sentinel & ~unparsed
        else:
            raw_unknown = _unknown_expr(sdf, name, col)
            mapping = category_mapping(col, column_aliases(config, name))
            fixable = raw_unknown & _norm_expr(F.col(name)).isin(list(mapping))
            masks.append(("unnormalised_category", name, fixable, "warning", {}))
            unknown = raw_unknown & ~fixable
        masks.append(("unknown_category", name, unknown, "warning" if is_target else "error", {}))
        if not is_target:
            bad = bad | unknown
    sdf = _dup_exprs(sdf, id_col if id_col in sdf.columns else None)
    masks.append(("duplicate_rows", None, F.col("_dup"), "warning", {}))
    masks.append(("duplicate_ids", id_col, F.col("_dupid"), "error", {}))

    id_expr = F.col(id_col) if id_col and id_col in sdf.columns else F.col(POS)
    aggs = [F.count(F.lit(1)).alias("_n")]
    for i, (_kind, _col, expr, _sev, _det) in enumerate(masks):
        aggs.append(F.sum(F.when(expr, 1).otherwise(0)).alias(f"c{i}"))
    for i, (_name, unparsed, nonnull) in enumerate(parse_checks):
        aggs.append(F.sum(F.when(nonnull, 1).otherwise(0)).alias(f"nn{i}"))
    row = sdf.agg(*aggs).collect()[0]
    n = int(row["_n"])
    retyped: set[str] = set()
    for i, (name, _unparsed, _nonnull) in enumerate(parse_checks):
        idx = next(j for j, m in enumerate(masks) if m[0] == "type_mismatch" and m[1] == name)
        unparsed_count = int(row[f"c{idx}"] or 0)
        nonnull = max(int(row[f"nn{i}"] or 0), 1)
        if unparsed_count and 1.0 - unparsed_count / nonnull < config.min_parse_fraction:
            retyped.add(name)
            items.append(Finding("retyped_column", name, 0, "critical", [], {
                "batch_dtype": str(empty[name].dtype), "reference_dtype": str(ref[name].dtype),
                "parsed_fraction": round(1.0 - unparsed_count / nonnull, 4)}))
    flagged = [(i, m) for i, m in enumerate(masks) if int(row[f"c{i}"] or 0) > 0 and m[1] not in retyped]
    samples: dict[int, list] = {}
    if flagged:
        sample_aggs = [F.slice(F.array_sort(F.collect_list(F.when(m[2], F.struct(F.col(POS).alias("p"),
                                                                                 id_expr.alias("id"))))),
                               1, SAMPLE_SIZE).alias(f"s{i}") for i, m in flagged]
        srow = sdf.agg(*sample_aggs).collect()[0]
        samples = {i: [r["id"] for r in srow[f"s{i}"]] for i, _ in flagged}
    for i, (kind, column, _expr, severity, detail) in flagged:
        items.append(Finding(kind, column, int(row[f"c{i}"]), severity, samples.get(i, []), detail))
    order = {k: j for j, k in enumerate(["renamed_column", "missing_column", "extra_column", "nulls",
                                          "retyped_column", "type_mismatch", "sentinel", "out_of_range",
                                          "unnormalised_category", "unknown_category", "duplicate_rows",
                                          "duplicate_ids"])}
    items.sort(key=lambda f: order.get(f.kind, 99))
    return Findings(items=items, n_rows=n, id_column=id_col, drift=None,
                    elapsed_seconds=time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------- state + tools
@dataclass
class SparkBatchState:
    sdf: "DataFrame"
    profile: "ReferenceProfile"
    config: StewardConfig = field(default_factory=StewardConfig)
    source: str | None = None
    findings: Findings | None = None
    actions: list[dict] = field(default_factory=list)
    accepted: bool = False
    n_input: int = 0

    @classmethod
    def from_frame(cls, sdf: "DataFrame", profile: "ReferenceProfile", config: StewardConfig | None = None,
                   source: str | None = None) -> "SparkBatchState":
        F = _F()
        sdf = (sdf.withColumn(POS, F.monotonically_increasing_id())
               .withColumn(REASON, F.lit(None).cast("string"))
               .withColumn(SENTINEL, F.lit(False)).withColumn(UNPARSED, F.lit(False)))
        return cls(sdf=sdf, profile=profile, config=config or StewardConfig(), source=source,
                   n_input=sdf.count())

    def history(self) -> list[str]:
        return [a["action"] for a in self.actions]

    def mark(self, mask: "Column", reason: str) -> None:
        F = _F()
        self.sdf = self.sdf.withColumn(REASON, F.when(F.col(REASON).isNull() & mask, F.lit(reason))
                                       .otherwise(F.col(REASON)))

    def counts(self) -> dict:
        F = _F()
        rows = self.sdf.groupBy(REASON).agg(F.count(F.lit(1)).alias("n")).collect()
        by_reason = {r[REASON]: int(r["n"]) for r in rows if r[REASON] is not None}
        clean = sum(int(r["n"]) for r in rows if r[REASON] is None)
        total = clean + sum(by_reason.values())
        return {"input": int(self.n_input), "clean": clean, "quarantined": total - clean, "by_reason": by_reason,
                "_total": total}

    def check_invariant(self, counts: dict | None = None) -> dict:
        counts = counts or self.counts()
        if counts.pop("_total") != self.n_input or counts["clean"] + counts["quarantined"] != counts["input"]:
            raise InvariantViolation(f"clean + quarantined != input: {counts}")
        return counts

    def _log(self, action: str, **result: Any) -> dict:
        entry = {"action": action, **result}
        self.actions.append(entry)
        return entry


def spark_rename_columns(state: SparkBatchState, mapping: dict[str, str] | None = None) -> dict:
    mapping = dict(mapping if mapping is not None else (state.findings.renames if state.findings else {}))
    mapping = {k: v for k, v in mapping.items() if k in state.sdf.columns}
    for old, new in mapping.items():
        state.sdf = state.sdf.withColumnRenamed(old, new)
    return state._log("rename_columns", renamed=mapping)


def spark_replace_sentinels(state: SparkBatchState, columns: list[str] | None = None) -> dict:
    F = _F()
    done = []
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.sdf.columns or name == state.config.id_column or (columns and name not in columns):
            continue
        if (col.kind != "numeric" and is_string_category(col)) or not _is_numeric(state.sdf, name):
            continue
        value = F.col(name).cast("double")
        mask = _sentinel_expr(value, col, state.config)
        state.sdf = (state.sdf.withColumn(SENTINEL, F.col(SENTINEL) | mask)
                     .withColumn(name, F.when(mask, F.lit(None)).otherwise(F.col(name))))
        done.append(name)
    return state._log("replace_sentinels", columns=done)


def spark_coerce_types(state: SparkBatchState) -> dict:
    F = _F()
    done = []
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.sdf.columns or (col.kind != "numeric" and is_string_category(col)):
            continue
        if _is_numeric(state.sdf, name):
            continue
        value, unparsed = _as_double(state.sdf, name)
        state.sdf = state.sdf.withColumn(UNPARSED, F.col(UNPARSED) | unparsed).withColumn(name, value)
        done.append(name)
    return state._log("coerce_types", columns=done)


def spark_normalise_categories(state: SparkBatchState, aliases: dict[str, dict[str, str]] | None = None) -> dict:
    F = _F()
    done = []
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.sdf.columns or not is_string_category(col) or not col.categories:
            continue
        if not _is_string(state.sdf, name):
            continue
        mapping = category_mapping(col, {**column_aliases(state.config, name), **((aliases or {}).get(name, {}))})
        pairs = []
        for k, v in mapping.items():
            pairs += [F.lit(k), F.lit(v)]
        lookup = F.create_map(*pairs)
        known = list(col.categories)
        c = F.col(name)
        state.sdf = state.sdf.withColumn(name, F.when(c.isNull() | c.isin(known), c).otherwise(
            F.coalesce(F.element_at(lookup, _norm_expr(c)), c)))
        done.append(name)
    return state._log("normalise_categories", columns=done)


def spark_deduplicate(state: SparkBatchState, id_column: str | None = None) -> dict:
    id_column = id_column or state.config.id_column
    sdf = _dup_exprs(state.sdf, id_column if id_column in state.sdf.columns else None)
    state.sdf = sdf
    state.mark(sdf["_dup"], "duplicate")
    state.mark(sdf["_dupid"], "duplicate_id")
    state.sdf = state.sdf.drop("_dup", "_dupid")
    return state._log("deduplicate")


def spark_quarantine_rows(state: SparkBatchState, rows: Any, reason: str) -> dict:
    """Quarantine by a boolean Column or by a list of row ids (id column values, else ``_pos``)."""
    F = _F()
    if not hasattr(rows, "isin") or isinstance(rows, (list, tuple)):
        key = F.col(state.config.id_column) if state.config.id_column else F.col(POS)
        rows = key.isin(list(rows))
    state.mark(rows, reason)
    return state._log("quarantine_rows", reason=reason)


def spark_quarantine_invalid(state: SparkBatchState) -> dict:
    F = _F()
    sdf = state.sdf
    required = set(required_columns(state.profile, state.config))
    null_any, oor, unknown, still_sentinel, still_unparsed = (F.lit(False),) * 5
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in sdf.columns:
            continue
        if name in required:
            null_any = null_any | _null(sdf, name)
        if name == state.config.id_column or name == state.profile.target:
            continue
        if col.kind == "numeric" or not is_string_category(col):
            value, unparsed = _as_double(sdf, name)
            still_unparsed = still_unparsed | unparsed
            sentinel = _sentinel_expr(value, col, state.config)
            still_sentinel = still_sentinel | sentinel
            if col.kind == "numeric":
                oor = oor | (_oor_expr(value, col, state.config) & ~sentinel)
            else:
                unknown = unknown | (_unknown_expr(sdf, name, col) & ~sentinel & ~unparsed)
        else:
            unknown = unknown | _unknown_expr(sdf, name, col)
    masks = {
        "type_mismatch": (F.col(UNPARSED) & null_any) | still_unparsed,
        "sentinel": (F.col(SENTINEL) & null_any) | still_sentinel,
        "null": null_any & ~F.col(SENTINEL) & ~F.col(UNPARSED),
        "out_of_range": oor,
        "unknown_category": unknown,
    }
    for reason in INVALID_REASON_ORDER:
        state.mark(masks[reason], reason)
    return state._log("quarantine_invalid")


def spark_stop_pipeline(state: SparkBatchState, reason: str) -> dict:
    state._log("stop_pipeline", reason=reason)
    raise PipelineStopped(reason, state.findings.to_dict() if state.findings else None)


def spark_accept(state: SparkBatchState) -> dict:
    state.accepted = True
    return state._log("accept")


SPARK_TOOLS: dict[str, Callable[..., dict]] = {
    "rename_columns": spark_rename_columns,
    "replace_sentinels": spark_replace_sentinels,
    "coerce_types": spark_coerce_types,
    "normalise_categories": spark_normalise_categories,
    "deduplicate": spark_deduplicate,
    "quarantine_rows": spark_quarantine_rows,
    "quarantine_invalid": spark_quarantine_invalid,
    "stop_pipeline": spark_stop_pipeline,
    "accept": spark_accept,
}


def read_spark(spark: "SparkSession", path: Any, fmt: str | None = None) -> "DataFrame":
    from airflow_agentic.data import io as dio

    fmt = dio.detect_format(path, fmt)
    where = dio.location(path)
    try:
        if fmt == "parquet":
            sdf = spark.read.parquet(where)
        elif fmt == "csv":
            sdf = spark.read.option("header", True).option("inferSchema", True).option("mode", "FAILFAST").csv(where)
        else:
            sdf = spark.read.json(where)
        if not sdf.columns:
            raise StewardInputError(path, "no columns")
        if sdf.limit(1).count() == 0:
            raise StewardInputError(path, "no rows")
    except StewardInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - Spark wraps every read error in its own exception types
        raise StewardInputError(path, f"Spark could not read it: {str(exc).splitlines()[0]}") from exc
    return sdf


def steward_spark(batch: Any, profile: "ReferenceProfile", out_dir: Any, *, spark: "SparkSession | None" = None,
                  config: StewardConfig | None = None, suite: Any = None, policy: Callable | None = None,
                  fmt: str | None = None, validate: str = "clean") -> StewardReport:
    """The Spark twin of :func:`airflow_agentic.data.steward.steward_batch`.

    ``batch`` is a Spark DataFrame or a path Spark can read. Clean and quarantine rows are written with Spark
    (directories ``clean.parquet/`` and ``quarantine.parquet/`` whose ``_SUCCESS`` marks completion);
    ``validation.json``, ``report.json`` and the ``_SUCCESS`` manifest are written atomically last.
    """
    from pyspark.sql import SparkSession

    from airflow_agentic.data import io as dio
    from airflow_agentic.data.steward import rule_policy
    from airflow_agentic.data.validation import suite_from_profile, summarise_validation, validate_frame

    policy = policy or rule_policy
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    config = config or StewardConfig()
    if hasattr(batch, "sparkSession") or type(batch).__module__.startswith("pyspark"):
        sdf, source = batch, None
    else:
        spark = spark or SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        sdf, source = read_spark(spark, batch, fmt), dio.location(batch)
    state = SparkBatchState.from_frame(sdf, profile, config, source=source)
    state.sdf = state.sdf.cache()
    state.findings = inspect_spark(state.sdf, profile, config)
    timings["inspect"] = time.perf_counter() - t0

    t = time.perf_counter()
    for _ in range(20):
        action, args = policy(state.findings, state, state.history())
        SPARK_TOOLS[action](state, **args)
        if action == "accept":
            break
    final = state.sdf.cache()
    state.sdf = final
    counts = state.check_invariant()
    timings["clean"] = time.perf_counter() - t

    t = time.perf_counter()
    F = _F()
    data_cols = [c for c in _data_columns(final) if c not in ("_dup", "_dupid")]
    clean = final.filter(F.col(REASON).isNull()).orderBy(POS).select(*data_cols)
    quarantine = final.filter(F.col(REASON).isNotNull()).orderBy(POS).select(
        *data_cols, F.col(REASON).alias(QUARANTINE_REASON_COLUMN))
    suite_json = suite if suite is not None else suite_from_profile(
        profile, id_column=config.id_column, range_tolerance=config.range_tolerance, required=config.required,
        exclude=config.exclude)
    validation: dict = {}
    if validate != "none":
        validation = validate_frame(clean if validate == "clean" else sdf, suite_json, engine="spark")
        validation["validated"] = validate
    timings["validate"] = time.perf_counter() - t

    t = time.perf_counter()
    outputs = {key: dio.location(dio.join(out_dir, name)) for key, name in OUTPUT_FILES.items()}
    clean.write.mode("overwrite").parquet(outputs["clean"])
    quarantine.write.mode("overwrite").parquet(outputs["quarantine"])
    report = StewardReport(
        source=source, engine="spark", counts=counts,
        findings={**state.findings.summary(), "items": [f.to_dict() for f in state.findings.items],
                  "drift": None},
        actions=state.actions, outputs=outputs,
        validation=summarise_validation(validation) if validation else {},
        validation_location=outputs["validation"] if validation else None, accepted=state.accepted,
        timings=timings)
    files = {OUTPUT_FILES["report"]: dio.json_bytes(report.to_dict())}
    if validation:
        files = {OUTPUT_FILES["validation"]: dio.json_bytes(validation), **files}
    dio.write_outputs(out_dir, files, extra={"counts": counts})
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    final.unpersist()
    return report
