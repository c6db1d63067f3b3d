"""The Data Steward operator: a thin Airflow shell (templates, connections, XCom, assets, approvals, journal)
around the one steward pipeline, :class:`airflow_agentic.data.pipeline.StewardPipeline`.

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
    from airflow_agentic.data.pipeline import StewardPipeline

ENGINES = ("pandas", "spark")  # as airflow_agentic.data.pipeline (not imported here: it loads numpy)
VALIDATE = ("clean", "input", "none")


class DataStewardOperator(AgentOperator):
    """Steward one batch.

    :param source: the batch (templated): a path or ObjectStoragePath URL (``file://``, ``s3://`` ...), Parquet,
        CSV or JSON lines (format from the suffix, or ``fmt``).
    :param output: folder URL for ``clean.parquet``, ``quarantine.parquet`` (the quarantined rows exactly as they
        arrived, plus ``_quarantine_reason``), ``validation.json``, ``report.json`` and ``_manifest.json`` (files,
        rows, sha256), written last: readers (``airflow_agentic.data.io.read_batch`` / ``read_output``) refuse a
        folder without a complete manifest, so a run that dies half-way never leaves a readable mix (templated).
    :param profile: a ReferenceProfile ``.npz`` path/URL (templated). Without it, ``suite`` is required and the
        batch is profiled against itself (only self-evident problems are repaired; GX does the checking).
    :param suite: a GX suite as JSON-able dict, or a path/URL of one (templated); default derived from the profile.
    :param conn_id: connection for object storage URLs (e.g. an ``aws`` connection for ``s3://``).
    :param engine: ``pandas`` or ``spark`` (the Spark session comes from Spark's own configuration:
        ``spark-defaults.conf`` / ``SPARK_CONF_DIR``, plus ``spark_conf``; its master, unless ``spark_conf`` names
        ``spark.master``, is :func:`airflow_agentic.config.spark_master`: ``[agentic] spark_master``, the
        ``spark_default`` connection, ``MASTER``, ``local[*]``).
    :param id_column: the row id column (duplicate ids, quarantine by id).
    :param config: StewardConfig fields as a dict (templated), e.g. ``{"extra_sentinels": [-1]}``. Among them
        ``max_quarantine_share`` (default 0.5): a step that would leave more than this share of the batch
        quarantined is of risk class ``destructive``, so with ``approval_for`` holding ``destructive`` (the
        default) it waits for a person; rejected, the task fails and writes nothing. Set it to 1.0 to never ask.
        (On Spark, ``quarantine_rows`` is rated when the planner picks it; the rule steps' share is checked once
        the agent is done: above it, the task fails unless ``approval_for`` leaves out ``destructive``.)
    :param validate: ``clean`` (certify what goes downstream), ``input`` or ``none``.

    Renames: columns whose names differ from the reference only in case or spacing are renamed as a repair; a
    rename by mere name similarity, or one that exchanges columns, is ``destructive`` (approval); renaming onto an
    existing column is refused with an error. Numbers stored as text are converted (the clean output has the
    reference dtypes); values that do not parse are quarantined ``type_mismatch``.

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
        self._pipeline: StewardPipeline | None = None

    # ------------------------------------------------------------------ agent
    def _fail(self, what: Any, reason: str) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        # Bad input does not heal on a retry: fail at once, naming the file.
        raise AirflowFailException(f"Data Steward cannot read {what}: {reason}. Nothing was written.")

    def _config(self) -> dict:
        config = dict(self.config or {})
        if self.id_column:
            config["id_column"] = self.id_column
        return config

    def _spark_conf(self) -> dict[str, str]:
        if self.engine != "spark" or "spark.master" in self.spark_conf:
            return self.spark_conf
        from airflow_agentic.config import spark_master

        return {"spark.master": spark_master(), **self.spark_conf}

    def build_agent(self, context: Context) -> StewardAgent:
        from airflow_agentic.data.errors import StewardInputError
        from airflow_agentic.data.pipeline import StewardPipeline

        self._pipeline = StewardPipeline(
            self.source, profile=self.profile, output=self.output_dir, engine=self.engine, config=self._config(),
            suite=self.suite, validate=self.validate, fmt=self.fmt, conn_id=self.conn_id,
            approval_for=self.approval_for, spark_conf=self._spark_conf(), name=f"data-steward-{self.task_id}")
        self.log.info("Data Steward (%s) on %s -> %s", self.engine, self.source, self.output_dir)
        try:
            return self._pipeline.prepare()
        except StewardInputError as exc:
            self._pipeline.release()
            self._fail(exc.path, exc.reason)

    # ------------------------------------------------------------------ write
    def on_finish(self, context: Context, run: AgentRun) -> Any:
        from airflow.sdk import Asset
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_agentic.data.errors import PipelineStopped

        assert self._pipeline is not None
        if run.status != "finished":
            self.log.warning("steward agent ended with %s; unresolved rows were quarantined", run.status)
        try:
            report = self._pipeline.complete(run).to_dict()
        except PipelineStopped as stop:
            raise AirflowFailException(f"Data Steward stopped: {stop.reason}. Nothing was written.") from None
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
