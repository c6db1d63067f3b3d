"""The Data Steward operator: read a batch, let the steward agent repair and quarantine it, validate the clean rows
with Great Expectations, write clean / quarantine / validation / report atomically, and emit the clean-batch Asset.

Nothing is written before the agent finished and every output is serialised: an unreadable batch or a stop of the
pipeline fails the task with nothing written. Retries replay the (in-memory) cleaning steps from the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_agentic.operators.agent import TRACE_XCOM_KEY, AgentOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_agentic.agents import AgentRun
    from airflow_agentic.agents.steward import StewardAgent

ENGINES = ("pandas", "spark")
VALIDATE = ("clean", "input", "none")


class DataStewardOperator(AgentOperator):
    """Steward one batch.

    :param source: the batch (templated): a path or ObjectStoragePath URL (``file://``, ``s3://`` ...), Parquet,
        CSV or JSON lines (format from the suffix, or ``fmt``).
    :param output: folder URL for ``clean.parquet``, ``quarantine.parquet``, ``validation.json``, ``report.json``
        and the ``_SUCCESS`` manifest written last (templated).
    :param profile: a ReferenceProfile ``.npz`` path/URL (templated). Without it, ``suite`` is required and the
        batch is profiled against itself (only self-evident problems are repaired; GX does the checking).
    :param suite: a GX suite as JSON-able dict, or a path/URL of one (templated); default derived from the profile.
    :param conn_id: connection for object storage URLs (e.g. an ``aws`` connection for ``s3://``).
    :param engine: ``pandas`` or ``spark`` (the Spark session comes from Spark's own configuration:
        ``spark-defaults.conf`` / ``SPARK_CONF_DIR``, plus ``spark_conf``).
    :param id_column: the row id column (duplicate ids, quarantine by id).
    :param config: StewardConfig fields as a dict (templated), e.g. ``{"extra_sentinels": [-1]}``.
    :param validate: ``clean`` (certify what goes downstream), ``input`` or ``none``.

    Outlets: every Asset in ``outlets`` gets an event whose extra holds the counts and the output locations.
    Returns the StewardReport dict; the trace in XCom ``agent_run`` names the same locations.
    """

    template_fields: Sequence[str] = (*AgentOperator.template_fields, "source", "output_dir", "profile", "suite",
                                      "conn_id", "engine", "id_column", "config", "fmt")
    template_fields_renderers = {**AgentOperator.template_fields_renderers, "config": "json", "suite": "json"}
    ui_color = "#e6f5e9"

    def __init__(self, *, source: str, output: str, profile: str | None = None, suite: Any = None,
                 conn_id: str | None = None, engine: str = "pandas", id_column: str | None = None,
                 config: dict[str, Any] | None = None, fmt: str | None = None, validate: str = "clean",
                 spark_conf: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if profile is None and suite is None:
            raise ValueError("DataStewardOperator needs a reference `profile` (.npz) or a GX `suite`")
        if validate not in VALIDATE:
            raise ValueError(f"validate must be one of {VALIDATE}")
        self.source = source
        self.output_dir = output
        self.profile = profile
        self.suite = suite
        self.conn_id = conn_id
        self.engine = engine
        self.id_column = id_column
        self.config = config
        self.fmt = fmt
        self.validate = validate
        self.spark_conf = dict(spark_conf or {})
        self._agent: StewardAgent | None = None
        self._input_frame: Any = None

    # ------------------------------------------------------------------ paths
    def _path(self, url: Any) -> Any:
        from airflow.sdk import ObjectStoragePath

        if not isinstance(url, str):
            return url
        if "://" not in url:
            url = f"file://{url}"
        return ObjectStoragePath(url, conn_id=self.conn_id) if not url.startswith("file://") else ObjectStoragePath(url)

    def _fail(self, what: Any, reason: str) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        # Bad input does not heal on a retry: fail at once, naming the file.
        raise AirflowFailException(f"Data Steward cannot read {what}: {reason}. Nothing was written.")

    def _load_profile(self, frame: Any) -> Any:
        from airflow_agentic.drift.profile import ReferenceProfile

        if self.profile is None:
            exclude = [self.id_column] if self.id_column and self.id_column in frame.columns else []
            return ReferenceProfile.from_frame(frame, exclude=exclude, sample_rows=0)
        path = self._path(self.profile)
        try:
            return ReferenceProfile.load(path)
        except FileNotFoundError:
            self._fail(self.profile, "reference profile not found")
        except Exception as exc:  # noqa: BLE001 - a corrupt .npz raises many kinds of errors
            self._fail(self.profile, f"not a reference profile ({type(exc).__name__}: {exc})")

    def _load_suite(self) -> Any:
        if self.suite is None or isinstance(self.suite, dict):
            return self.suite
        from airflow_agentic.data import io as dio

        try:
            return dio.read_json(self._path(self.suite))
        except Exception as exc:  # noqa: BLE001
            self._fail(self.suite, f"not a readable GX suite JSON ({exc})")

    def _steward_config(self) -> Any:
        from airflow_agentic.data.findings import StewardConfig

        config = dict(self.config or {})
        if self.id_column:
            config["id_column"] = self.id_column
        try:
            return StewardConfig.from_dict(config)
        except TypeError as exc:
            raise ValueError(f"unknown steward config field: {exc}") from None

    def _outputs(self) -> tuple[Any, dict[str, str]]:
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.steward import OUTPUT_FILES

        out_dir = self._path(self.output_dir)
        return out_dir, {key: dio.location(dio.join(out_dir, name)) for key, name in OUTPUT_FILES.items()}

    # ------------------------------------------------------------------ agent
    def build_agent(self, context: Context) -> StewardAgent:
        from airflow_agentic.agents.steward import StewardAgent
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.errors import StewardInputError

        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {self.engine!r}")
        config = self._steward_config()
        source = self._path(self.source)
        _, outputs = self._outputs()
        self.log.info("Data Steward (%s) on %s -> %s", self.engine, dio.location(source), self.output_dir)
        try:
            if self.engine == "spark":
                state = self._spark_state(source, config)
            else:
                from airflow_agentic.data.findings import inspect_batch
                from airflow_agentic.data.steward import BatchState

                frame = dio.read_batch(source, self.fmt)
                profile = self._load_profile(frame)
                state = BatchState.from_frame(frame, profile, config, source=dio.location(source))
                state.findings = inspect_batch(state.frame, profile, config)
                self._input_frame = frame
        except StewardInputError as exc:
            self._fail(exc.path, exc.reason)
        self._agent = StewardAgent(state, engine=self.engine, outputs=outputs,
                                   validation_location=outputs["validation"] if self.validate != "none" else None)
        return self._agent

    def _spark_state(self, source: Any, config: Any) -> Any:
        from pyspark.sql import SparkSession

        from airflow_agentic.data import io as dio
        from airflow_agentic.data.spark import SparkBatchState, inspect_spark, read_spark

        builder = SparkSession.builder.appName(f"data-steward-{self.task_id}")
        for key, value in self.spark_conf.items():
            builder = builder.config(key, value)
        spark = SparkSession.getActiveSession() or builder.getOrCreate()
        sdf = read_spark(spark, source, self.fmt)
        if self.profile is None:
            self._fail(self.source, "the Spark engine needs a reference profile (.npz)")
        profile = self._load_profile(None)
        state = SparkBatchState.from_frame(sdf, profile, config, source=dio.location(source))  # persisted once
        state.findings = inspect_spark(state.sdf, profile, config, n_rows=state.n_input, sql_conf=state.sql_conf)
        self._input_frame = sdf
        return state

    # ------------------------------------------------------------------ write
    def on_finish(self, context: Context, run: AgentRun) -> Any:
        from airflow.sdk import Asset

        agent = self._agent
        assert agent is not None
        if run.status != "finished":
            self.log.warning("steward agent ended with %s; unresolved rows were quarantined", run.status)
        report = self._write_spark(agent) if self.engine == "spark" else self._write_pandas(agent)
        result = {**run.result, **report, "agent_status": run.status}
        # The trace names the outputs, the validation result and the final counts.
        context["ti"].xcom_push(key=TRACE_XCOM_KEY, value={**run.to_dict(), "result": result})
        extra = {"counts": report["counts"], "outputs": report["outputs"],
                 "validation_location": report["validation_location"],
                 "validation_success": report["validation"].get("success") if report["validation"] else None,
                 "source": report["source"]}
        for outlet in self.outlets or []:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = extra
        self.log.info("Data Steward: %s", report["counts"])
        return result

    def _validation(self, clean: Any, engine: str | None = None) -> dict:
        from airflow_agentic.data.validation import suite_from_profile, validate_frame

        if self.validate == "none":
            return {}
        state = self._agent.state
        config = state.config
        suite = self._load_suite()
        if suite is None:
            suite = suite_from_profile(state.profile, id_column=config.id_column,
                                       range_tolerance=config.range_tolerance, required=config.required,
                                       exclude=config.exclude)
        frame = clean if self.validate == "clean" else self._input_frame
        validation = validate_frame(frame, suite, engine=engine) if engine else validate_frame(frame, suite)
        validation["validated"] = self.validate
        return validation

    def _write_pandas(self, agent: StewardAgent) -> dict:
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.steward import OUTPUT_FILES, split_outputs
        from airflow_agentic.data.validation import summarise_validation

        state = agent.state
        state.check_invariant()
        clean, quarantine = split_outputs(state)
        if len(clean) + len(quarantine) != state.n_input:
            raise RuntimeError("never delete: clean + quarantine must equal the input")
        validation = self._validation(clean)
        out_dir, outputs = self._outputs()
        report = agent.report()
        report.outputs = outputs
        report.validation = summarise_validation(validation) if validation else {}
        report.validation_location = outputs["validation"] if validation else None
        files = {OUTPUT_FILES["clean"]: dio.frame_to_bytes(clean),
                 OUTPUT_FILES["quarantine"]: dio.frame_to_bytes(quarantine)}
        if validation:
            files[OUTPUT_FILES["validation"]] = dio.json_bytes(validation)
        files[OUTPUT_FILES["report"]] = dio.json_bytes(report.to_dict())
        dio.write_outputs(out_dir, files, extra={"counts": report.counts})
        return report.to_dict()

    def _write_spark(self, agent: StewardAgent) -> dict:
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.steward import OUTPUT_FILES
        from airflow_agentic.data.validation import summarise_validation

        state = agent.state
        try:
            counts = state.finish()
            to_validate, clean, quarantine = state.split()
            validation = self._validation(to_validate, engine="spark")
            out_dir, outputs = self._outputs()
            state.write(clean, quarantine, outputs)
            report = agent.report()
            report.counts = counts
            report.outputs = outputs
            report.validation = summarise_validation(validation) if validation else {}
            report.validation_location = outputs["validation"] if validation else None
            files = {OUTPUT_FILES["report"]: dio.json_bytes(report.to_dict())}
            if validation:
                files = {OUTPUT_FILES["validation"]: dio.json_bytes(validation), **files}
            dio.write_outputs(out_dir, files, extra={"counts": counts})
        finally:
            state.release()
        return report.to_dict()
