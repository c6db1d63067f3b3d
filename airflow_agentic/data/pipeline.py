"""The one Data Steward pipeline: read -> inspect -> agent loop -> settle -> validate (GX) -> split -> write.

Used by :class:`~airflow_agentic.operators.steward.DataStewardOperator` (a thin Airflow shell around it), by the
flywheel turn (:func:`steward_features`) and by ``benchmarks/steward_throughput.py``; pandas and Spark alike.

The agent loop is the steward agent (:mod:`airflow_agentic.agents.steward`) with the rule planner or the planner
given. The operator runs the loop itself (journal, approvals through Airflow); everything around it is here:
:meth:`StewardPipeline.prepare` before, :meth:`StewardPipeline.complete` after. :meth:`StewardPipeline.run` chains
the three in-process.

What holds whatever the planner did:

- never delete: every input row ends clean or quarantined with its reason (checked before anything is written);
- the schema contract: numeric reference columns of the clean output hold numbers (text that parses is converted,
  rows whose value does not are quarantined ``type_mismatch``);
- quarantining more than ``StewardConfig.max_quarantine_share`` of the batch (default 0.5) needs approval: a step
  that would do it is destructive; without approval the pipeline stops and writes nothing;
- ``quarantine.parquet`` holds the quarantined rows exactly as they arrived, plus ``_quarantine_reason``;
- the output folder is committed as a unit: a ``_manifest.json`` (files, rows, checksums) is written last, and
  readers refuse a folder without a complete one.

No Airflow here (paths are resolved through :func:`airflow_agentic.data.io.resolve_path`, which imports it lazily).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.data.errors import PipelineStopped, QuarantineNotApproved, StewardInputError

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.agents import AgentRun
    from airflow_agentic.agents.planner import Planner
    from airflow_agentic.agents.steward import StewardAgent
    from airflow_agentic.data.findings import StewardConfig
    from airflow_agentic.data.steward import StewardReport
    from airflow_agentic.drift.profile import ReferenceProfile

ENGINES = ("pandas", "spark")
VALIDATE = ("clean", "input", "none")
DEFAULT_BUDGET = {"max_steps": 20}


class StewardPipeline:
    """Steward one batch.

    :param source: a pandas or Spark DataFrame, or a path / URL (local, ``file://``, ``s3://`` ...; resolved with
        ``conn_id``) of a Parquet, CSV or JSON-lines batch (``fmt`` overrides the suffix).
    :param profile: a ReferenceProfile, or the path / URL of its ``.npz``; None profiles the batch against itself
        (pandas only: only self-evident problems are repaired, GX does the checking).
    :param output: the output folder (path / URL); None writes nothing (the flywheel turn).
    :param suite: a GX suite (dict, list of expectations, or a path / URL of its JSON); default derived from the
        profile.
    :param validate: ``clean`` (certify what goes downstream), ``input`` or ``none``.
    :param approval_for: the risk classes the agent loop asks a person for. Quarantining beyond
        ``config.max_quarantine_share`` is destructive: when ``destructive`` is listed and no approved step did it,
        :meth:`complete` raises :class:`QuarantineNotApproved` and writes nothing.
    """

    def __init__(self, source: Any, *, profile: Any = None, output: Any = None, engine: str = "pandas",
                 config: StewardConfig | dict | None = None, suite: Any = None, validate: str = "clean",
                 fmt: str | None = None, conn_id: str | None = None, approval_for: Any = ("destructive",),
                 spark: Any = None, spark_conf: dict[str, str] | None = None, sql_conf: dict[str, str] | None = None,
                 with_drift: bool | None = None, name: str = "data-steward"):
        from airflow_agentic.data.findings import StewardConfig

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if validate not in VALIDATE:
            raise ValueError(f"validate must be one of {VALIDATE}, not {validate!r}")
        if isinstance(config, dict) or config is None:
            config = StewardConfig.from_dict(config)
        self.source = source
        self.profile = profile
        self.output = output
        self.engine = engine
        self.config = config
        self.suite = suite
        self.validate = validate
        self.fmt = fmt
        self.conn_id = conn_id
        self.approval_for = {str(getattr(r, "value", r)) for r in (approval_for or ())}
        self.spark = spark
        self.spark_conf = dict(spark_conf or {})
        self.sql_conf = sql_conf
        self.with_drift = with_drift
        self.name = name
        self.timings: dict[str, float] = {}
        self.agent: StewardAgent | None = None
        self.input_frame: Any = None
        self.source_location: str | None = None
        self.last_run: AgentRun | None = None
        self.clean: Any = None  # pandas: the clean and quarantine frames after complete()
        self.quarantine: Any = None
        self._started = 0.0

    # ------------------------------------------------------------------ paths
    def path(self, url: Any) -> Any:
        from airflow_agentic.data import io as dio

        return dio.resolve_path(url, self.conn_id)

    def outputs(self) -> dict[str, str]:
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.steward import OUTPUT_FILES

        if self.output is None:
            return {}
        out_dir = self.path(self.output)
        return {key: dio.location(dio.join(out_dir, name)) for key, name in OUTPUT_FILES.items()}

    # ------------------------------------------------------------------ 1. read + inspect
    def prepare(self) -> StewardAgent:
        """Read the batch and the profile, inspect, and build the steward agent (findings set, nothing written).
        Unreadable input raises :class:`StewardInputError` naming the file."""
        from airflow_agentic.agents.steward import StewardAgent

        self._started = time.perf_counter()
        state = self._spark_state() if self.engine == "spark" else self._pandas_state()
        outputs = self.outputs()
        self.agent = StewardAgent(state, engine=self.engine, outputs=outputs,
                                  validation_location=outputs.get("validation") if self.validate != "none" else None)
        return self.agent

    def _pandas_state(self) -> Any:
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.findings import inspect_batch
        from airflow_agentic.data.steward import BatchState

        t = time.perf_counter()
        if _is_pandas(self.source):
            frame = self.source
        else:
            source = self.path(self.source)
            self.source_location = dio.location(source)
            frame = dio.read_batch(source, self.fmt)
        self.timings["read"] = time.perf_counter() - t
        t = time.perf_counter()
        profile = self._load_profile(frame)
        state = BatchState.from_frame(frame, profile, self.config, source=self.source_location)
        state.findings = inspect_batch(state.frame, profile, self.config, with_drift=self.with_drift)
        self.input_frame = state.original
        self.timings["inspect"] = time.perf_counter() - t
        return state

    def _spark_state(self) -> Any:
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.spark import SparkBatchState, inspect_spark, read_spark

        t = time.perf_counter()
        if _is_spark(self.source):
            sdf = self.source
        else:
            spark = self.spark or _spark_session(self.name, self.spark_conf)
            source = self.path(self.source)
            self.source_location = dio.location(source)
            sdf = read_spark(spark, source, self.fmt)
        if self.profile is None:
            raise StewardInputError(self.source_location or "batch", "the Spark engine needs a reference profile")
        profile = self._load_profile(None)
        state = SparkBatchState.from_frame(sdf, profile, self.config, source=self.source_location,
                                           sql_conf=self.sql_conf)  # persisted once
        self.timings["read"] = time.perf_counter() - t
        t = time.perf_counter()
        state.findings = inspect_spark(state.sdf, profile, self.config, n_rows=state.n_input, sql_conf=state.sql_conf)
        self.input_frame = sdf
        self.timings["inspect"] = time.perf_counter() - t
        return state

    def _load_profile(self, frame: Any) -> ReferenceProfile:
        from airflow_agentic.drift.profile import ReferenceProfile

        if self.profile is None:
            id_column = self.config.id_column
            exclude = [id_column] if id_column and id_column in frame.columns else []
            return ReferenceProfile.from_frame(frame, exclude=exclude, sample_rows=0)
        if isinstance(self.profile, ReferenceProfile):
            return self.profile
        from airflow_agentic.data import io as dio

        path = self.path(self.profile)
        data = dio.read_bytes(path)  # StewardInputError naming the file when it is missing or unreadable
        try:
            return ReferenceProfile.from_bytes(data)
        except Exception as exc:  # noqa: BLE001 - a damaged .npz raises many kinds of errors
            raise StewardInputError(path, f"not a reference profile ({type(exc).__name__}: {exc})") from None

    def _load_suite(self) -> Any:
        if self.suite is None or isinstance(self.suite, (dict, list, tuple)):
            return self.suite
        from airflow_agentic.data import io as dio

        try:
            return dio.read_json(self.path(self.suite))
        except StewardInputError as exc:
            raise StewardInputError(exc.path, f"not a readable GX suite JSON ({exc.reason})") from None

    # ------------------------------------------------------------------ 2. the agent loop (in-process)
    def run_agent(self, *, planner: Planner | None = None, allowed_tools: list[str] | None = None,
                  budget: dict | None = None, approver: Any = None, journal: Any = None, goal: str | None = None,
                  logger: Any = None) -> AgentRun:
        """The steward agent through the agent loop, as the operator runs it (there with Airflow's approvals and
        journal). Without ``approver`` every approval is refused (nobody to ask in-process)."""
        from airflow_agentic.agents.loop import AgentLoop

        if self.agent is None:
            self.prepare()
        kwargs: dict[str, Any] = {"planner": planner, "allowed_tools": allowed_tools,
                                  "budget": budget or DEFAULT_BUDGET, "approval_for": sorted(self.approval_for),
                                  "journal": journal, "goal": goal, "logger": logger}
        if approver is not None:
            kwargs["approver"] = approver
        t = time.perf_counter()
        run = AgentLoop(self.agent, **kwargs).run()
        self.timings["agent"] = time.perf_counter() - t
        return run

    # ------------------------------------------------------------------ 3. settle, validate, split, write
    def settle(self) -> dict:
        """After the agent: the schema contract, the quarantine-share rule and the row invariant. Returns the
        counts. Raises :class:`QuarantineNotApproved` (nothing written)."""
        from airflow_agentic.data.findings import required_columns

        assert self.agent is not None, "prepare() first"
        state = self.agent.state
        columns = state.sdf.columns if self.engine == "spark" else state.frame.columns
        missing = [c for c in required_columns(state.profile, state.config) if c not in columns]
        if missing:  # e.g. a rename that was not approved, and a planner that finished anyway
            raise PipelineStopped(f"required column(s) {missing} missing from the batch")
        if self.engine == "spark":
            from airflow_agentic.data.spark import spark_conform_schema

            spark_conform_schema(state)
            counts = state.finish()
            over = state.over_share(counts)
        else:
            from airflow_agentic.data.steward import conform_schema

            conform_schema(state)
            state.check_invariant()
            counts = state.counts()
            over = state.over_share()
        if over and not state.bulk_quarantine_allowed and "destructive" in self.approval_for:
            share = counts["quarantined"] / max(counts["input"], 1)
            raise QuarantineNotApproved(
                f"{counts['quarantined']} of {counts['input']} rows ({share:.0%}) would be quarantined, more than "
                f"max_quarantine_share={self.config.max_quarantine_share}; no approved step allowed that",
                {"counts": counts})
        return counts

    def complete(self, run: AgentRun | None = None) -> StewardReport:
        """Settle, validate with GX once, split and write the outputs as one committed unit. Returns the report."""
        from airflow_agentic.data.validation import summarise_validation

        assert self.agent is not None, "prepare() first"
        if run is not None and run.status == "failed":
            raise PipelineStopped(run.result.get("stop_reason") or "the steward agent failed")
        agent, state = self.agent, self.agent.state
        try:
            t = time.perf_counter()
            counts = self.settle()
            if self.engine == "spark":
                to_validate, clean, quarantine = state.split()
            else:
                from airflow_agentic.data.steward import split_outputs

                clean, quarantine = split_outputs(state)
                to_validate = clean
                if len(clean) + len(quarantine) != state.n_input:
                    raise RuntimeError("never delete: clean + quarantine must equal the input")
            self.timings["settle"] = time.perf_counter() - t
            t = time.perf_counter()
            validation = self._validation(to_validate)
            self.timings["validate"] = time.perf_counter() - t
            outputs = self.outputs()
            report = agent.report()
            report.counts = counts
            report.outputs = outputs
            report.actions = list(state.actions)
            report.validation = summarise_validation(validation) if validation else {}
            report.validation_location = outputs.get("validation") if validation else None
            report.timings = self.timings
            if self.output is not None:
                t = time.perf_counter()
                self._write(clean, quarantine, validation, report)
                self.timings["write"] = time.perf_counter() - t
            self.clean, self.quarantine = (clean, quarantine) if self.engine == "pandas" else (None, None)
        finally:
            self.release()
        self.timings["total"] = time.perf_counter() - self._started
        return report

    def _validation(self, clean: Any) -> dict:
        from airflow_agentic.data.validation import suite_from_profile, validate_frame

        if self.validate == "none":
            return {}
        state = self.agent.state
        config = state.config
        suite = self._load_suite()
        if suite is None:
            suite = suite_from_profile(state.profile, id_column=config.id_column,
                                       range_tolerance=config.range_tolerance, required=config.required,
                                       exclude=config.exclude)
        frame = clean if self.validate == "clean" else self.input_frame
        validation = validate_frame(frame, suite, engine=self.engine)
        validation["validated"] = self.validate
        return validation

    def _write(self, clean: Any, quarantine: Any, validation: dict, report: StewardReport) -> None:
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.steward import OUTPUT_FILES

        out_dir = self.path(self.output)
        counts = report.counts
        rows = {OUTPUT_FILES["clean"]: counts["clean"], OUTPUT_FILES["quarantine"]: counts["quarantined"]}
        extra = {"counts": counts, "source": report.source}
        if self.engine == "spark":
            files: dict[str, Any] = {}
            if validation:
                files[OUTPUT_FILES["validation"]] = dio.json_bytes(validation)
            files[OUTPUT_FILES["report"]] = dio.json_bytes(report.to_dict())
            tables = [OUTPUT_FILES["clean"], OUTPUT_FILES["quarantine"]]
            dio.begin_outputs(out_dir, [*tables, *files])
            self.agent.state.write(clean, quarantine, report.outputs)
            entries = dio.folder_entries(out_dir, tables)
            for name in tables:
                entries[name]["rows"] = rows[name]
            dio.write_outputs(out_dir, files, extra=extra, prewritten=entries)
            return
        # Everything serialised before the first byte is written.
        files = {OUTPUT_FILES["clean"]: dio.frame_to_bytes(clean),
                 OUTPUT_FILES["quarantine"]: dio.frame_to_bytes(quarantine)}
        if validation:
            files[OUTPUT_FILES["validation"]] = dio.json_bytes(validation)
        files[OUTPUT_FILES["report"]] = dio.json_bytes(report.to_dict())
        dio.write_outputs(out_dir, files, extra=extra, rows=rows)

    def release(self) -> None:
        if self.agent is not None and self.engine == "spark":
            self.agent.state.release()

    # ------------------------------------------------------------------ all in one
    def run(self, **loop: Any) -> StewardReport:
        """prepare -> agent loop -> complete. Raises :class:`PipelineStopped` (nothing written) when the agent
        stopped the pipeline, :class:`StewardInputError` for unreadable input."""
        try:
            self.prepare()
            run = self.run_agent(**loop)
            self.last_run = run
        except BaseException:
            self.release()
            raise
        if run.status == "failed":
            self.release()
            state = self.agent.state
            raise PipelineStopped(run.result.get("stop_reason") or self.agent.stop_reason or "stopped",
                                  state.findings.to_dict() if state.findings else None)
        return self.complete(run)


def run_steward(source: Any, profile: Any, output: Any = None, **kwargs: Any) -> StewardReport:
    """Shorthand: ``StewardPipeline(source, profile=profile, output=output, **options).run(**loop)``; loop options
    are ``planner``, ``allowed_tools``, ``budget``, ``approver``."""
    loop = {k: kwargs.pop(k) for k in ("planner", "allowed_tools", "budget", "approver") if k in kwargs}
    return StewardPipeline(source, profile=profile, output=output, **kwargs).run(**loop)


def _is_pandas(obj: Any) -> bool:
    return hasattr(obj, "columns") and hasattr(obj, "iloc")


def _is_spark(obj: Any) -> bool:
    return hasattr(obj, "sparkSession") or type(obj).__module__.startswith("pyspark")


def _spark_session(name: str, conf: dict[str, str]) -> Any:
    """The active session, else one from Spark's own configuration (``spark-defaults.conf``) plus ``conf``."""
    from airflow_agentic.extras import require

    require("pyspark.sql", "spark", "The Spark engine")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# ---------------------------------------------------------------------------------------------- the flywheel turn
@dataclass
class StewardOutcome:
    """Which rows of a batch the steward let through, for the flywheel turn (features only, nothing written)."""

    clean: np.ndarray  # bool per input row
    by_reason: dict[str, int]
    schema_broken: bool = False
    findings: dict[str, Any] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return int((~self.clean).sum())

    def quality(self) -> dict[str, Any]:
        rows = len(self.clean)
        return {"rows": rows, "quarantined": self.quarantined,
                "quarantined_share": self.quarantined / rows if rows else 0.0, "by_reason": self.by_reason,
                "schema_broken": self.schema_broken}


def steward_profile(features: pd.DataFrame, id_column: str | None) -> ReferenceProfile:
    """The steward's reference profile of a frame of features (the id column excluded)."""
    from airflow_agentic.drift.profile import ReferenceProfile

    exclude = [id_column] if id_column and id_column in features.columns else []
    return ReferenceProfile.from_frame(features, exclude=exclude, sample_rows=0)


def steward_config(id_column: str | None) -> StewardConfig:
    from airflow_agentic.data.findings import StewardConfig

    # Corruption here means nulls, sentinels and duplicates. Out-of-range is only flagged far outside the reference
    # range, because a covariate shift moves clean rows there and a clean row must never be quarantined.
    # The turn runs unattended (nobody to approve) with the rule planner: a heavily corrupted batch is quarantined
    # as the rules say, and its quarantined share goes to the monitoring agent through StewardOutcome.quality().
    return StewardConfig(id_column=id_column, range_tolerance=3.0, drift=False, max_quarantine_share=1.0)


def steward_features(features: pd.DataFrame, profile: ReferenceProfile, *, id_column: str | None = None,
                     config: StewardConfig | None = None, planner: Planner | None = None) -> StewardOutcome:
    """The steward pipeline on one batch of features (labels are not known yet), in memory: the agent loop with
    its rule policy (or ``planner``), then the schema contract and the quarantine-share rule. Nothing is deleted
    or written. A stopped pipeline (schema broken, or a quarantine beyond the allowed share that nobody approved)
    leaves no row clean."""
    pipeline = StewardPipeline(features, profile=profile, config=config or steward_config(id_column),
                               validate="none", with_drift=False)
    pipeline.prepare()
    agent = pipeline.agent
    run = pipeline.run_agent(planner=planner)
    n = len(features)
    if run.status == "failed":
        reason = agent.stop_reason or run.result.get("stop_reason")
        if any(step.status == "rejected" for step in run.steps):  # a step the batch needed was not approved
            return StewardOutcome(np.zeros(n, dtype=bool), {"not_approved": n}, findings={"stop_reason": reason})
        return StewardOutcome(np.zeros(n, dtype=bool), {"schema_broken": n}, schema_broken=True,
                              findings={"stop_reason": reason})
    try:
        counts = pipeline.settle()
    except QuarantineNotApproved as stop:
        return StewardOutcome(np.zeros(n, dtype=bool), {"not_approved": n}, findings={"stop_reason": stop.reason})
    except PipelineStopped as stop:  # a required column missing after the agent
        return StewardOutcome(np.zeros(n, dtype=bool), {"schema_broken": n}, schema_broken=True,
                              findings={"stop_reason": stop.reason})
    state = agent.state
    return StewardOutcome(np.asarray(state.clean, dtype=bool), counts["by_reason"], findings=state.findings.summary())


__all__ = ["ENGINES", "VALIDATE", "QuarantineNotApproved", "StewardOutcome", "StewardPipeline", "run_steward",
           "steward_config", "steward_features", "steward_profile"]
