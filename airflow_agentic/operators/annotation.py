"""The Annotation operator: the champion model labels what it is sure of; the rest goes to Label Studio.

Auto-labels use ``models:/<name>@champion`` through MLflow pyfunc (probabilities from the underlying model's
``predict_proba``); rows whose top probability is at least ``threshold`` are labelled ``source="auto"``. The other
rows become Label Studio tasks in a project that is created once and reused by title; rows already imported are
skipped, so a retry never duplicates a task. The auto labels are written atomically to ``output`` before any
import, and the return value tells :class:`~airflow_agentic.sensors.annotation.LabelStudioAnnotationSensor` what to
wait for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

ON_UNAVAILABLE = ("wait", "auto_only")
AUTO_LABELS_FILE = "auto_labels.json"
PENDING_FILE = "pending.json"


def storage(url: Any, conn_id: str | None = None) -> Any:
    """The one path resolver (:func:`airflow_agentic.data.io.resolve_path`); kept under this name for callers."""
    from airflow_agentic.data.io import resolve_path

    return resolve_path(url, conn_id)


def load_champion(model_name: str, alias: str = "champion", tracking_uri: str | None = None) -> Any:
    """The pyfunc model behind ``models:/<name>@<alias>`` and an object with ``predict_proba`` (the raw model when
    it has one). Returns ``(pyfunc_model, proba_model, version)``."""
    import mlflow

    from airflow_agentic.config import mlflow_tracking, mlflow_tracking_uri

    tracking_uri = tracking_uri or mlflow_tracking_uri()
    with mlflow_tracking(tracking_uri):
        model = mlflow.pyfunc.load_model(f"models:/{model_name}@{alias}")
    version = None
    try:
        version = mlflow.MlflowClient(tracking_uri).get_model_version_by_alias(model_name, alias).version
    except Exception:  # noqa: BLE001 - the version only goes into the provenance
        pass
    raw = None
    try:
        raw = model.get_raw_model()
    except Exception:  # noqa: BLE001 - flavours without a raw model
        raw = None
    if raw is None or not hasattr(raw, "predict_proba"):
        raise ValueError(f"{uri} has no predict_proba: auto-labelling needs class probabilities")
    return model, raw, version


class AnnotationOperator(BaseOperator):
    """Auto-label confident rows with the champion, send the rest to Label Studio.

    :param source: rows to label (templated URL: Parquet/CSV/JSON lines), e.g. a Data Steward clean batch.
    :param output: folder URL for ``auto_labels.json`` and ``pending.json`` (templated).
    :param model_name: registered MLflow model; ``models:/<model_name>@<alias>`` is used.
    :param threshold: minimum top-class probability for an automatic label.
    :param id_column: the row id (becomes ``row_id`` in each Label Studio task: the idempotency key).
    :param feature_columns: model inputs (default: the model signature's inputs, else every column but id/target).
    :param text_column: the column shown to annotators (default: a ``name: value`` rendering of the features).
    :param labels: the classes offered in Label Studio (default: the model's ``classes_``).
    :param project_title: Label Studio project, created once and reused (templated).
    :param on_unavailable: Label Studio unreachable -> ``wait`` (the task fails with a clear message and its retry
        imports again, idempotently) or ``auto_only`` (continue with the automatic labels only).
    """

    template_fields: Sequence[str] = ("source", "output_dir", "model_name", "project_title", "conn_id",
                                      "labelstudio_conn_id", "tracking_uri", "threshold")
    ui_color = "#fdf1e6"

    def __init__(self, *, source: str, output: str, model_name: str, labelstudio_conn_id: str = "labelstudio_default",
                 project_title: str = "airflow-agentic annotation", threshold: float = 0.9,
                 id_column: str = "row_id", target: str | None = None, feature_columns: list[str] | None = None,
                 text_column: str | None = None, labels: list[Any] | None = None, label_config: str | None = None,
                 alias: str = "champion", tracking_uri: str | None = None, conn_id: str | None = None,
                 on_unavailable: str = "wait", max_tasks: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if on_unavailable not in ON_UNAVAILABLE:
            raise ValueError(f"on_unavailable must be one of {ON_UNAVAILABLE}")
        self.source = source
        self.output_dir = output
        self.model_name = model_name
        self.labelstudio_conn_id = labelstudio_conn_id
        self.project_title = project_title
        self.threshold = threshold
        self.id_column = id_column
        self.target = target
        self.feature_columns = feature_columns
        self.text_column = text_column
        self.labels = labels
        self.label_config = label_config
        self.alias = alias
        self.tracking_uri = tracking_uri
        self.conn_id = conn_id
        self.on_unavailable = on_unavailable
        self.max_tasks = max_tasks

    def _features(self, frame: Any, pyfunc_model: Any) -> list[str]:
        if self.feature_columns:
            return list(self.feature_columns)
        try:
            names = pyfunc_model.metadata.get_input_schema().input_names()
            if names and all(n in frame.columns for n in names):
                return list(names)
        except Exception:  # noqa: BLE001 - models without a signature
            pass
        skip = {self.id_column, self.target, self.text_column}
        return [c for c in frame.columns if c not in skip]

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from airflow_agentic.data import io as dio
        from airflow_agentic.data.errors import StewardInputError
        from airflow_agentic.data.labels import auto_label
        from airflow_agentic.data.labelstudio import _jsonable, choices_config
        from airflow_agentic.hooks.labelstudio import LabelStudioHook, LabelStudioUnavailable

        try:
            frame = dio.read_batch(storage(self.source, self.conn_id))
        except StewardInputError as exc:
            raise AirflowFailException(f"cannot read rows to annotate {exc.path}: {exc.reason}") from None
        if self.id_column not in frame.columns:
            raise AirflowFailException(f"{self.source} has no id column {self.id_column!r}")
        if self.target and self.target in frame.columns:
            frame = frame[frame[self.target].isna()]  # only unlabelled rows need a label
        pyfunc_model, model, version = load_champion(self.model_name, self.alias, self.tracking_uri)
        features = self._features(frame, pyfunc_model)
        ids = frame[self.id_column].tolist()
        result = auto_label(model, frame[features], threshold=float(self.threshold), row_ids=ids)
        annotator = f"{self.model_name}@{self.alias}" + (f" (v{version})" if version else "")
        auto_records = result.records(ids, annotator=annotator)
        out_dir = storage(self.output_dir, self.conn_id)
        auto_location = dio.write_bytes_atomic(dio.join(out_dir, AUTO_LABELS_FILE), dio.json_bytes(
            {"model": f"models:/{self.model_name}@{self.alias}", "version": version, "threshold": self.threshold,
             "records": auto_records}))
        self.log.info("Auto-labelled %d of %d rows with %s (threshold %.2f); %d need a person",
                      len(result.auto_rows), len(ids), annotator, self.threshold, len(result.human_rows))

        human = set(result.human_rows)
        human_frame = frame[frame[self.id_column].isin(human)]
        if self.max_tasks is not None:
            human_frame = human_frame.head(int(self.max_tasks))
        text_field = "text"
        rows = []
        for record in human_frame.to_dict(orient="records"):
            text = record.get(self.text_column) if self.text_column else \
                ", ".join(f"{c}: {_jsonable(record[c])}" for c in features)
            rows.append({"row_id": _jsonable(record[self.id_column]), text_field: str(text),
                         **{c: _jsonable(record[c]) for c in features}})
        summary: dict[str, Any] = {
            "auto": len(result.auto_rows), "needs_human": len(rows), "threshold": float(self.threshold),
            "model": f"models:/{self.model_name}@{self.alias}", "model_version": version,
            "auto_labels_location": auto_location, "source": dio.location(storage(self.source, self.conn_id)),
            "human_row_ids": [r["row_id"] for r in rows], "project_id": None, "project_title": self.project_title,
            "labelstudio": "not_needed" if not rows else "ok", "on_unavailable": self.on_unavailable,
        }
        if rows:
            labels = self.labels or [_jsonable(c) for c in getattr(model, "classes_", [])]
            config = self.label_config or choices_config(labels, text_field)
            hook = LabelStudioHook(self.labelstudio_conn_id)
            try:
                project_id = hook.call("project", self.project_title, config)
                imported = hook.call("import_rows", project_id, rows)
            except LabelStudioUnavailable as exc:
                if self.on_unavailable == "wait":
                    raise AirflowException(f"{exc}. on_unavailable='wait': this task fails and its retry imports "
                                           f"the {len(rows)} rows again (rows already imported are skipped).") from exc
                self.log.warning("%s. on_unavailable='auto_only': continuing with %d automatic labels only; %d rows "
                                 "stay unlabelled.", exc, len(result.auto_rows), len(rows))
                summary.update(labelstudio="unavailable", error=str(exc)[:500])
            else:
                summary.update(project_id=project_id, imported=imported["imported"], skipped=imported["skipped"])
                self.log.info("Label Studio project %s: %d tasks imported, %d already there", project_id,
                              imported["imported"], imported["skipped"])
        dio.write_bytes_atomic(dio.join(out_dir, PENDING_FILE), dio.json_bytes(summary))
        return summary
