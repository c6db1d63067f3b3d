"""The Data Steward's rules on PySpark: same findings, same quarantine reasons, same rows in the same place.

Row order is kept with a ``_pos`` column (``monotonically_increasing_id``, increasing in input order), so "first
occurrence" means the same row as in pandas. Row-level status lives in columns ``_reason`` (null = clean),
``_sentinel`` and ``_unparsed``; nothing is ever filtered out before the final split. The Spark session (and so the
cluster, through its ``master``) is the caller's.

Plan shape (what keeps it fast): the input is persisted once together with its ``_pos`` (ids are assigned once and
never recomputed), inspection evaluates every rule as a native column expression into one narrow persisted frame of
flags read by one aggregation and one bounded sample query, the tools only add column expressions (no action), the
reason column is a linear ``coalesce`` chain, duplicates need one shuffle (exact duplicates share their id, so the
id window's partitioning serves the whole-row window too), and the final frame is persisted once for the counts,
GX and the two writes.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
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
    reference_columns,
    required_columns,
    sentinel_values_for,
    rename_detail,
    check_renames,
    suggest_renames,
)
from airflow_agentic.data.steward import INVALID_REASON_ORDER, QUARANTINE_REASON_COLUMN

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from airflow_agentic.drift.profile import ColumnProfile, ReferenceProfile

POS, REASON, SENTINEL, UNPARSED = "_pos", "_reason", "_sentinel", "_unparsed"
_INTERNAL = (POS, REASON, SENTINEL, UNPARSED)
ORIGINAL_PREFIX = "__steward_original_"  # copies of columns as they arrived, kept for the quarantine output

# SQL settings in force while the steward plans its own queries (restored afterwards; GX runs with the session's).
# Whole-stage code generation fuses every rule of a stage into one Java method; for a frame of 20 columns that
# method passes 8 kB of bytecode, which the JVM's JIT refuses to compile, so it runs interpreted, many times slower
# (measured: the hot generated methods were all "Interpreted" in a Flight Recorder profile). Per-operator code
# generation splits expressions into small methods the JIT compiles. Pass ``sql_conf={}`` to leave the session as is.
STEWARD_SQL_CONF: dict[str, str] = {"spark.sql.codegen.wholeStage": "false"}


@contextlib.contextmanager
def session_conf(spark: "SparkSession", conf: dict[str, str] | None) -> Iterator[None]:
    """Set ``conf`` on the session for the duration, then restore what was there."""
    if not conf:
        yield
        return
    previous = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


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


def _is_bool(sdf: "DataFrame", name: str) -> bool:
    from pyspark.sql.types import BooleanType

    return isinstance(sdf.schema[name].dataType, BooleanType)


def _is_float(sdf: "DataFrame", name: str) -> bool:
    from pyspark.sql.types import DoubleType, FloatType

    return isinstance(sdf.schema[name].dataType, (DoubleType, FloatType))


def _null(sdf: "DataFrame", name: str) -> "Column":
    F = _F()
    c = F.col(name)
    return (c.isNull() | F.isnan(c)) if _is_float(sdf, name) else c.isNull()


# One small integer per cell says what is wrong with it; a CASE evaluates the checks in the order the pandas rules
# give them precedence (null, unparsed, sentinel, out of range / unknown), so every condition after the first can
# assume a real number and each cell costs one short branch chain. Keeping the generated code small matters: the JIT
# does not compile methods over 8 kB of bytecode, and a wide frame's rules easily exceed that as separate columns.
OK, NULL, UNPARSED_CODE, SENTINEL_CODE, OUT_OF_RANGE, UNKNOWN, UNNORMALISED = range(7)
CODE_SPAN = 8  # issue key = column index * CODE_SPAN + code


def _value(sdf: "DataFrame", name: str) -> tuple["Column", "Column | None"]:
    """(double value, condition "did not parse" for non-null cells, or None when the column is numeric)."""
    F = _F()
    c = F.col(name)
    if _is_numeric(sdf, name):
        return c.cast("double"), None
    value = F.trim(c).try_cast("double") if _is_string(sdf, name) else c.try_cast("double")
    return value, value.isNull() | F.isnan(value)  # pandas.to_numeric: "nan" is not a number either


def _outside(value: "Column", lo: float, hi: float) -> "Column | None":
    F = _F()
    cond = None
    if math.isfinite(lo):
        cond = value < F.lit(lo)
    if math.isfinite(hi):
        cond = (value > F.lit(hi)) if cond is None else cond | (value > F.lit(hi))
    return cond


def _sentinel_cond(value: "Column", col: "ColumnProfile", config: StewardConfig) -> "Column | None":
    """Listed sentinels, infinities (when the reference had none), far outside the reference range (numeric).
    For a non-null, non-NaN value."""
    listed = [float(v) for v in sentinel_values_for(col, config)]
    if col.nonfinite == 0:
        listed += [math.inf, -math.inf]
    cond = value.isin(listed) if listed else None
    if col.kind == "numeric":
        far = _outside(value, *bounds(col, config.far_factor))
        if far is not None:
            cond = far if cond is None else cond | far
    return cond


def _category_keys(sdf: "DataFrame", name: str) -> "Column":
    F = _F()
    if _is_numeric(sdf, name):
        value = F.col(name).cast("double")
        return F.when(value == F.floor(value), value.cast("long").cast("string")).otherwise(F.col(name).cast("string"))
    return F.col(name).cast("string")


def _known_cond(sdf: "DataFrame", name: str, col: "ColumnProfile", value: "Column") -> "Column":
    """The (non-null) cell is a reference category: numeric-coded columns compare as numbers, others as keys."""
    known = list((col.categories or {}).keys())
    if is_string_category(col) or not _is_numeric(sdf, name):
        return _category_keys(sdf, name).isin(known)
    numeric_known = []
    for k in known:
        try:
            numeric_known.append(float(k))
        except ValueError:
            pass
    return value.isin(numeric_known)


def _cell_code(sdf: "DataFrame", name: str, col: "ColumnProfile", config: StewardConfig, *,
               classify: bool = True, normalised: bool = False) -> "Column":
    """The cell's code: NULL, then (when ``classify``) UNPARSED, SENTINEL, OUT_OF_RANGE or UNKNOWN, else OK.
    ``normalised`` tells apart string categories that normalisation would fix (UNNORMALISED)."""
    F = _F()
    branches: list[tuple[Any, int]] = [(_null(sdf, name), NULL)]
    otherwise = OK
    if classify:
        if col.kind == "numeric" or not is_string_category(col):
            value, unparsed = _value(sdf, name)
            if unparsed is not None:
                branches.append((unparsed, UNPARSED_CODE))
            sentinel = _sentinel_cond(value, col, config)
            if sentinel is not None:
                branches.append((sentinel, SENTINEL_CODE))
            if col.kind == "numeric":
                outside = _outside(value, *bounds(col, config.range_tolerance))
                if outside is not None:
                    branches.append((outside, OUT_OF_RANGE))
            else:
                branches.append((_known_cond(sdf, name, col, value), OK))
                otherwise = UNKNOWN
        else:
            branches.append((_known_cond(sdf, name, col, F.col(name)), OK))
            if normalised:
                mapping = category_mapping(col, column_aliases(config, name))
                branches.append((_norm_expr(F.col(name)).isin(list(mapping)), UNNORMALISED))
            otherwise = UNKNOWN
    expr = F.when(branches[0][0], F.lit(branches[0][1]))
    for cond, code in branches[1:]:
        expr = expr.when(cond, F.lit(code))
    return expr.otherwise(F.lit(otherwise))


def _norm_expr(column: "Column") -> "Column":
    F = _F()
    return F.lower(F.regexp_replace(F.trim(column), r"\s+", " "))


def _data_columns(sdf: "DataFrame") -> list[str]:
    return [c for c in sdf.columns if c not in _INTERNAL and not c.startswith(ORIGINAL_PREFIX)]


# Above this many flagged rows the duplicate flags are joined back with a shuffle instead of a broadcast.
BROADCAST_MAX_ROWS = 2_000_000


def _duplicate_flags(sdf: "DataFrame", id_column: str | None) -> tuple["DataFrame", "DataFrame | None", bool]:
    """``sdf`` plus boolean ``_dup`` (exact duplicate of an earlier row) and ``_dupid`` (an earlier row has the same
    id, different content), as in :func:`airflow_agentic.data.findings.duplicate_masks`.

    Only a narrow frame (position, id, hash of the row) is shuffled: rows sharing id and hash are candidates, whose
    full content is then compared exactly (the hash only narrows the search). The few flagged rows are joined back
    by position, broadcast when they are few, so the wide frame is never shuffled and keeps its input order.
    Returns (frame, the persisted flags to unpersist or None, whether the wide frame was shuffled). Runs two
    jobs (the second on the small cached frame of candidates).
    """
    from pyspark.sql import Window

    F = _F()
    cols = _data_columns(sdf)
    has_id = bool(id_column) and id_column in sdf.columns
    group = [id_column] if has_id else []
    narrow = sdf.select(F.col(POS), *[F.col(c) for c in group], F.xxhash64(*cols).alias("_h"))
    if has_id:
        # The id window first: its hash partitioning on the id also serves the (id, hash) window, one shuffle.
        narrow = narrow.withColumn("_idrank", F.row_number().over(Window.partitionBy(id_column).orderBy(POS)))
    else:
        narrow = narrow.withColumn("_idrank", F.lit(1))
    narrow = narrow.withColumn("_cand", F.count(F.lit(1)).over(Window.partitionBy(*group, "_h")) > 1)
    flagged = narrow.filter(F.col("_cand") | (F.col("_idrank") > 1)).select(POS, "_cand", "_idrank").cache()
    candidate_pos = flagged.filter("_cand").select(POS)
    if candidate_pos.count() <= BROADCAST_MAX_ROWS:
        candidate_pos = F.broadcast(candidate_pos)
    candidates = sdf.join(candidate_pos, POS, "left_semi")
    exact = candidates.select(POS, (F.row_number().over(Window.partitionBy(*cols).orderBy(POS)) > 1).alias("_dup"))
    flags = (flagged.join(exact, POS, "left")
             .select(POS, F.coalesce(F.col("_dup"), F.lit(False)).alias("_dup"), F.col("_idrank"))
             .select(POS, "_dup", (~F.col("_dup") & (F.col("_idrank") > 1)).alias("_dupid"))
             .filter(F.col("_dup") | F.col("_dupid"))).cache()
    n_flagged = flags.count()
    flagged.unpersist()
    if n_flagged == 0:
        flags.unpersist()
        return sdf.withColumn("_dup", F.lit(False)).withColumn("_dupid", F.lit(False)), None, False
    small = n_flagged <= BROADCAST_MAX_ROWS
    joined = sdf.join(F.broadcast(flags) if small else flags, POS, "left")
    joined = joined.withColumn("_dup", F.coalesce(F.col("_dup"), F.lit(False))).withColumn(
        "_dupid", F.coalesce(F.col("_dupid"), F.lit(False)))
    return joined, flags, not small


def _first_ids(issues: "DataFrame", keys: list[int]) -> dict[int, list]:
    """The first SAMPLE_SIZE row ids (input order) of each issue key, in one bounded query: a row_number limit per
    key, which Spark applies to each partition before its shuffle."""
    from pyspark.sql import Window

    F = _F()
    ranked = (issues.filter(F.col("_k").isin(keys))
              .withColumn("_rank", F.row_number().over(Window.partitionBy("_k").orderBy(POS))))
    out: dict[int, list] = {k: [] for k in keys}
    for r in sorted(ranked.filter(F.col("_rank") <= SAMPLE_SIZE).collect(), key=lambda r: (r["_k"], r["_rank"])):
        out[int(r["_k"])].append(r["_id"])
    return out


def inspect_spark(sdf: "DataFrame", profile: "ReferenceProfile", config: StewardConfig | None = None, *,
                  n_rows: int | None = None, sql_conf: dict[str, str] | None = None) -> Findings:
    """The same findings as :func:`airflow_agentic.data.findings.inspect_batch`: one pass over the data into a small
    frame of flagged cells, counted and sampled from there, plus the duplicate search on a narrow frame. ``n_rows``
    saves a count when the caller knows it; ``sql_conf`` defaults to STEWARD_SQL_CONF."""
    with session_conf(sdf.sparkSession, STEWARD_SQL_CONF if sql_conf is None else sql_conf):
        return _inspect_spark(sdf, profile, config, n_rows)


def _inspect_spark(sdf: "DataFrame", profile: "ReferenceProfile", config: StewardConfig | None,
                   n_rows: int | None) -> Findings:
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
            items.append(Finding("renamed_column", m, 0, "warning", [], {
                **rename_detail(renames[m], m), "optional": m == profile.target or m in config.optional}))
        elif m == profile.target or m in config.optional:
            items.append(Finding("missing_column", m, 0, "warning", [], {"optional": True}))
        else:
            items.append(Finding("missing_column", m, 0, "critical", [], {"optional": False}))
    for e in extra:
        if e not in renames.values():
            items.append(Finding("extra_column", e, 0, "info", [], {"dtype": str(empty[e].dtype)}))
    if id_col and id_col not in sdf.columns:
        items.append(Finding("missing_column", id_col, 0, "critical", [], {"optional": False, "id_column": True}))
    dtypes = {**{c: str(empty[c].dtype) for c in empty.columns}, **{m: str(empty[e].dtype) for m, e in renames.items()}}
    for m, e in renames.items():
        sdf = sdf.withColumnRenamed(e, m)
    n = int(n_rows) if n_rows is not None else sdf.count()

    required = set(required_columns(profile, config))
    present = [(name, col) for name, col in ref.items() if name in sdf.columns]
    keys = [F.lit(i * CODE_SPAN) + _cell_code(sdf, name, col, config, classify=name != id_col, normalised=True)
            for i, (name, col) in enumerate(present)]
    sdf, dup_flags, _ = _duplicate_flags(sdf, id_col if id_col in sdf.columns else None)
    dup_base = len(present) * CODE_SPAN
    keys.append(F.lit(dup_base) + F.when(F.col("_dup"), F.lit(1)).when(F.col("_dupid"), F.lit(2)).otherwise(F.lit(0)))
    id_expr = F.col(id_col) if id_col and id_col in sdf.columns else F.col(POS)
    # One entry per flagged cell (a small frame): the counts and the samples both read it, so the input is
    # evaluated once.
    issues = sdf.select(F.col(POS), id_expr.alias("_id"),
                        F.explode(F.filter(F.array(*keys), lambda k: k % CODE_SPAN != 0)).alias("_k")).cache()
    try:
        counts = {int(r["_k"]): int(r["count"]) for r in issues.groupBy("_k").count().collect()}
        found: list[tuple[int, str, str | None, str, dict]] = []  # key, kind, column, severity, detail
        for i, (name, col) in enumerate(present):
            base = i * CODE_SPAN
            is_target = name == profile.target
            in_required = name in required
            found.append((base + NULL, "nulls", name, "error" if in_required else "info",
                          {"required": in_required,
                           "reference_null_fraction": round(col.nulls / max(col.n + col.nulls, 1), 6)}))
            if name != id_col and (col.kind == "numeric" or not is_string_category(col)) \
                    and not _is_numeric(sdf, name) and not _is_bool(sdf, name):
                items.append(Finding("stored_as_text", name, 0, "warning", [], {
                    "batch_dtype": dtypes.get(name), "reference_dtype": str(col.dtype)}))
            unparsed = counts.get(base + UNPARSED_CODE, 0)
            if unparsed:
                parsed_fraction = 1.0 - unparsed / max(n - counts.get(base + NULL, 0), 1)
                if parsed_fraction < config.min_parse_fraction:
                    items.append(Finding("retyped_column", name, 0, "critical", [], {
                        "batch_dtype": dtypes.get(name), "reference_dtype": str(col.dtype),
                        "parsed_fraction": round(parsed_fraction, 4)}))
                    continue
            found.append((base + UNPARSED_CODE, "type_mismatch", name, "error",
                          {"batch_dtype": dtypes.get(name), "reference_dtype": str(col.dtype)}))
            found.append((base + SENTINEL_CODE, "sentinel", name, "error", {}))
            lo, hi = bounds(col, config.range_tolerance)
            found.append((base + OUT_OF_RANGE, "out_of_range", name, "warning" if is_target else "error",
                          {"allowed_min": lo, "allowed_max": hi, "reference_min": col.min,
                           "reference_max": col.max}))
            found.append((base + UNNORMALISED, "unnormalised_category", name, "warning", {}))
            found.append((base + UNKNOWN, "unknown_category", name, "warning" if is_target else "error", {}))
        found.append((dup_base + 1, "duplicate_rows", None, "warning", {}))
        found.append((dup_base + 2, "duplicate_ids", id_col, "error", {}))
        found = [f for f in found if counts.get(f[0], 0) > 0]
        samples = _first_ids(issues, [f[0] for f in found]) if found else {}
    finally:
        issues.unpersist()
        if dup_flags is not None:
            dup_flags.unpersist()
    for key, kind, column, severity, detail in found:
        items.append(Finding(kind, column, counts[key], severity, samples.get(key, []), detail))
    order = {k: j for j, k in enumerate(["renamed_column", "missing_column", "extra_column", "nulls",
                                          "stored_as_text", "retyped_column", "type_mismatch", "sentinel", "out_of_range",
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
    persisted: list = field(default_factory=list, repr=False)  # frames this state cached; released by release()
    reordered: bool = False  # a tool shuffled the rows: the outputs need a sort to come out in input order
    sql_conf: dict = field(default_factory=lambda: dict(STEWARD_SQL_CONF))
    input_columns: list = field(default_factory=list)  # the data columns as they arrived, in order
    current_names: dict = field(default_factory=dict)  # input column -> its name now (renames)
    saved: dict = field(default_factory=dict)  # input column -> the hidden copy of its original values
    bulk_quarantine_allowed: bool = False

    @classmethod
    def from_frame(cls, sdf: "DataFrame", profile: "ReferenceProfile", config: StewardConfig | None = None,
                   source: str | None = None, sql_conf: dict[str, str] | None = None) -> "SparkBatchState":
        from airflow_agentic.data.io import check_unique_columns

        F = _F()
        check_unique_columns(sdf.columns, source or "batch")
        state = cls(sdf=sdf, profile=profile, config=config or StewardConfig(), source=source,
                    sql_conf=dict(STEWARD_SQL_CONF if sql_conf is None else sql_conf),
                    input_columns=list(sdf.columns), current_names={c: c for c in sdf.columns})
        with state.conf():
            # Persisted before the first action: monotonically_increasing_id is only stable if computed once.
            state.sdf = (sdf.withColumn(POS, F.monotonically_increasing_id())
                         .withColumn(REASON, F.lit(None).cast("string"))
                         .withColumn(SENTINEL, F.lit(False)).withColumn(UNPARSED, F.lit(False))).cache()
            state.persisted.append(state.sdf)
            state.n_input = state.sdf.count()
        return state

    def conf(self) -> Any:
        """The steward's SQL settings, for a block that plans or runs queries (see STEWARD_SQL_CONF)."""
        return session_conf(self.sdf.sparkSession, self.sql_conf)

    def history(self) -> list[str]:
        return [a["action"] for a in self.actions]

    def preserve(self, names: list[str]) -> None:
        """Keep the arriving values of columns a tool is about to change (a projection, no job): the quarantine
        output shows rows exactly as they arrived."""
        F = _F()
        by_current = {now: orig for orig, now in self.current_names.items()}
        copies = {}
        for name in names:
            orig = by_current.get(name)
            if orig is not None and orig not in self.saved:
                self.saved[orig] = f"{ORIGINAL_PREFIX}{len(self.saved)}"
                copies[self.saved[orig]] = F.col(name)
        if copies:
            self.sdf = self.sdf.withColumns(copies)

    def over_share(self, counts: dict) -> bool:
        n = counts.get("input") or 0
        return n > 0 and counts["quarantined"] / n > self.config.max_quarantine_share

    def finish(self) -> dict:
        """Persist the final frame (every tool's expressions, evaluated once) and check the invariant on it."""
        with self.conf():
            self.sdf = self.sdf.cache()
            self.persisted.append(self.sdf)
            return self.check_invariant()

    def split(self) -> tuple["DataFrame", "DataFrame", "DataFrame"]:
        """(clean rows for validation, clean rows in input order, quarantined rows with their reason in input
        order), data columns only. Call after :meth:`finish`. The frame keeps the input's partitions and row order
        unless a tool had to shuffle it (``reordered``); only then do the outputs need a sort."""
        F = _F()
        data_cols = _data_columns(self.sdf)
        is_clean = F.col(REASON).isNull()
        to_validate = self.sdf.filter(is_clean).select(*data_cols)
        clean, quarantine = self.sdf.filter(is_clean), self.sdf.filter(~is_clean)
        if self.reordered:
            clean, quarantine = clean.orderBy(POS), quarantine.orderBy(POS)
        # Quarantined rows as they arrived: original names, original values (the saved copies where a tool acted).
        arrived = [F.col(self.saved.get(c) or self.current_names[c]).alias(c) for c in self.input_columns]
        return (to_validate, clean.select(*data_cols),
                quarantine.select(*arrived, F.col(REASON).alias(QUARANTINE_REASON_COLUMN)))

    def write(self, clean: "DataFrame", quarantine: "DataFrame", outputs: dict[str, str]) -> None:
        """Write the two Spark outputs of :meth:`split` to ``outputs["clean"]`` and ``outputs["quarantine"]``."""
        with self.conf():
            clean.write.mode("overwrite").parquet(outputs["clean"])
            quarantine.write.mode("overwrite").parquet(outputs["quarantine"])

    def release(self) -> None:
        for frame in self.persisted:
            frame.unpersist()
        self.persisted.clear()

    def mark(self, mask: "Column", reason: str) -> None:
        F = _F()
        # coalesce references the previous reason once: a when/otherwise that reads it twice doubles the
        # expression with every mark once Spark collapses the projections.
        self.sdf = self.sdf.withColumn(REASON, F.coalesce(F.col(REASON), F.when(mask, F.lit(reason))))

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


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def spark_rename_columns(state: SparkBatchState, mapping: dict[str, str] | None = None) -> dict:
    mapping = dict(mapping if mapping is not None else (state.findings.renames if state.findings else {}))
    mapping = check_renames(_data_columns(state.sdf), mapping)
    if mapping:
        # One projection: an exchange of two names must not pass through a moment with two equal names (Spark's
        # withColumnsRenamed applies the renames one after the other).
        F = _F()
        state.sdf = state.sdf.select(*[F.col(_quoted(c)).alias(mapping.get(c, c)) for c in state.sdf.columns])
        state.current_names = {orig: mapping.get(now, now) for orig, now in state.current_names.items()}
    return state._log("rename_columns", renamed=mapping)


def spark_replace_sentinels(state: SparkBatchState, columns: list[str] | None = None) -> dict:
    F = _F()
    flags: dict[str, Any] = {}
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.sdf.columns or name == state.config.id_column or (columns and name not in columns):
            continue
        if (col.kind != "numeric" and is_string_category(col)) or not _is_numeric(state.sdf, name):
            continue
        sentinel = _sentinel_cond(F.col(name).cast("double"), col, state.config)
        if sentinel is not None:
            flags[name] = ~_null(state.sdf, name) & sentinel
    if flags:
        # Each column's sentinel test once, in a projection of its own: the flag and the replaced value both read it.
        state.preserve(list(flags))
        tmp = {name: f"_rs{i}" for i, name in enumerate(flags)}
        sdf = state.sdf.select("*", *[flags[name].alias(tmp[name]) for name in flags])
        any_sentinel = F.col(SENTINEL)
        for name in flags:
            any_sentinel = any_sentinel | F.col(tmp[name])
        state.sdf = sdf.withColumns({SENTINEL: any_sentinel, **{
            name: F.when(F.col(tmp[name]), F.lit(None)).otherwise(F.col(name)) for name in flags}}).drop(*tmp.values())
    return state._log("replace_sentinels", columns=list(flags))


def spark_coerce_types(state: SparkBatchState) -> dict:
    F = _F()
    values: dict[str, Any] = {}
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.sdf.columns or (col.kind != "numeric" and is_string_category(col)):
            continue
        if _is_numeric(state.sdf, name):
            continue
        values[name] = _value(state.sdf, name)[0]
    if values:
        state.preserve(list(values))
        tmp = {name: f"_ct{i}" for i, name in enumerate(values)}
        sdf = state.sdf.select("*", *[values[name].alias(tmp[name]) for name in values])
        unparsed = F.col(UNPARSED)
        for name in values:
            unparsed = unparsed | (F.col(name).isNotNull() & (F.col(tmp[name]).isNull() | F.isnan(F.col(tmp[name]))))
        state.sdf = sdf.withColumns({UNPARSED: unparsed, **{name: F.col(tmp[name]) for name in values}}).drop(
            *tmp.values())
    return state._log("coerce_types", columns=list(values))


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
        state.preserve([name])
        state.sdf = state.sdf.withColumn(name, F.when(c.isNull() | c.isin(known), c).otherwise(
            F.coalesce(F.element_at(lookup, _norm_expr(c)), c)))
        done.append(name)
    return state._log("normalise_categories", columns=done)


def spark_deduplicate(state: SparkBatchState, id_column: str | None = None) -> dict:
    F = _F()
    id_column = id_column or state.config.id_column
    with state.conf():
        sdf, flags, shuffled = _duplicate_flags(state.sdf, id_column if id_column in state.sdf.columns else None)
    if flags is not None:
        state.persisted.append(flags)
    state.reordered = state.reordered or shuffled
    reason = F.coalesce(F.col(REASON), F.when(F.col("_dup"), F.lit("duplicate")),
                        F.when(F.col("_dupid"), F.lit("duplicate_id")))
    state.sdf = sdf.withColumn(REASON, reason).drop("_dup", "_dupid")
    return state._log("deduplicate")


def spark_quarantine_rows(state: SparkBatchState, rows: Any, reason: str) -> dict:
    """Quarantine by a boolean Column or by a list of row ids (id column values, else ``_pos``)."""
    F = _F()
    if not hasattr(rows, "isin") or isinstance(rows, (list, tuple)):
        key = F.col(state.config.id_column) if state.config.id_column else F.col(POS)
        rows = key.isin(list(rows))
    state.mark(rows, reason)
    return state._log("quarantine_rows", reason=reason)


def projected_share_rows(state: SparkBatchState, row_ids: list) -> float:
    """The quarantined share of the batch if the rows with these ids (id column values, else ``_pos``) were
    quarantined too. One job."""
    F = _F()
    if not state.n_input:
        return 0.0
    key = F.col(state.config.id_column) if state.config.id_column else F.col(POS)
    with state.conf():
        hit = F.col(REASON).isNotNull() | key.isin(list(row_ids))
        n = state.sdf.select(F.sum(F.when(hit, 1).otherwise(0)).alias("q")).collect()[0]["q"] or 0
    return float(n) / state.n_input


def spark_quarantine_invalid(state: SparkBatchState) -> dict:
    """Rows still invalid, first reason in INVALID_REASON_ORDER wins: one code per cell (see :func:`_cell_code`),
    then one coalesce over the reasons."""
    F = _F()
    config, profile = state.config, state.profile
    required = set(required_columns(profile, config))
    codes: dict[str, Any] = {}
    for name, col in reference_columns(profile, config).items():
        if name not in state.sdf.columns:
            continue
        classify = name not in (config.id_column, profile.target)
        if classify or name in required:
            codes[name] = _cell_code(state.sdf, name, col, config, classify=classify)
    tmp = {name: f"_qc{i}" for i, name in enumerate(codes)}
    sdf = state.sdf.select("*", *[codes[name].alias(tmp[name]) for name in codes])

    def any_code(code: int, names: Any) -> Any:
        out = F.lit(False)
        for name in names:
            out = out | (F.col(tmp[name]) == code)
        return out

    classified = [n for n in codes if n not in (config.id_column, profile.target)]
    sdf = sdf.withColumn("_qnull", any_code(NULL, [n for n in codes if n in required]))
    null_any = F.col("_qnull")
    reasons = {
        # A value that did not parse as a number is a mismatch whether or not its column may hold nulls.
        "type_mismatch": F.col(UNPARSED) | any_code(UNPARSED_CODE, classified),
        "sentinel": (F.col(SENTINEL) & null_any) | any_code(SENTINEL_CODE, classified),
        "null": null_any & ~F.col(SENTINEL) & ~F.col(UNPARSED),
        "out_of_range": any_code(OUT_OF_RANGE, classified),
        "unknown_category": any_code(UNKNOWN, classified),
    }
    reason = F.coalesce(F.col(REASON), *[F.when(reasons[r], F.lit(r)) for r in INVALID_REASON_ORDER])
    state.sdf = sdf.withColumn(REASON, reason).drop(*tmp.values(), "_qnull")
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


def spark_conform_schema(state: SparkBatchState) -> dict:
    """The schema contract on Spark (see :func:`airflow_agentic.data.steward.conform_schema`): numeric reference
    columns still held as text are parsed; clean rows whose value does not parse are quarantined type_mismatch."""
    from airflow_agentic.data.findings import is_numeric_dtype_name

    F = _F()
    values: dict[str, Any] = {}
    for name, col in reference_columns(state.profile, state.config).items():
        if name not in state.sdf.columns or name == state.config.id_column:
            continue
        if not is_numeric_dtype_name(str(col.dtype)) or _is_numeric(state.sdf, name) or _is_bool(state.sdf, name):
            continue
        values[name] = _value(state.sdf, name)
    if not values:
        return {}
    state.preserve(list(values))
    unparsed = F.lit(False)
    for name, (value, bad) in values.items():
        unparsed = unparsed | (F.col(name).isNotNull() & bad)
    state.mark(unparsed, "type_mismatch")
    state.sdf = state.sdf.withColumns({name: value for name, (value, _) in values.items()})
    return state._log("conform_schema", columns=list(values))
