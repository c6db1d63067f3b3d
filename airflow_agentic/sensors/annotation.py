"""Wait for people to annotate in Label Studio, then merge every label with its provenance into the training set.

Deferrable by default (:class:`~airflow_agentic.triggers.annotation.LabelStudioAnnotationTrigger`): no worker slot
is held while people annotate. The merge is a pure function of the automatic labels written by the
:class:`~airflow_agentic.operators.annotation.AnnotationOperator` and the annotations held by Label Studio, written
atomically: a retry recomputes the same set, so a label is never lost nor counted twice (one record per row; human
beats auto beats given, disagreements are listed as conflicts).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_agentic.operators.annotation import ON_UNAVAILABLE, storage

if TYPE_CHECKING:
    from airflow.sdk import Context

LABELS_FILE = "labels.json"
TRAINING_FILE = "training.parquet"


class LabelStudioAnnotationSensor(BaseSensorOperator):
    """Wait until ``min_annotated`` tasks of the annotation project are annotated, then merge the labels.

    :param annotation_task_id: the AnnotationOperator task whose return value says what was sent (project id,
        row ids, auto-label location, source rows); or pass that dict as ``annotation``.
    :param output: folder URL for ``labels.json`` (records with provenance) and ``training.parquet`` (the rows with
        ``label``, ``label_source``, ``label_annotator``, ``label_confidence``) (templated).
    :param min_annotated: tasks that must be annotated (default: every task sent).
    :param on_unavailable: Label Studio unreachable -> ``wait`` (keep polling) or ``auto_only`` (merge the automatic
        labels only; the rows sent to people stay unlabelled).
    """

    template_fields: Sequence[str] = ("output_dir", "annotation_task_id", "labelstudio_conn_id", "conn_id", "min_annotated")
    ui_color = "#fdf1e6"

    def __init__(self, *, output: str, annotation_task_id: str | None = None, annotation: dict | None = None,
                 labelstudio_conn_id: str = "labelstudio_default", min_annotated: int | None = None,
                 on_unavailable: str = "wait", id_column: str = "row_id", label_column: str = "label",
                 from_name: str | None = None, conn_id: str | None = None, deferrable: bool = True,
                 poke_interval: float | timedelta = 30.0, **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        if on_unavailable not in ON_UNAVAILABLE:
            raise ValueError(f"on_unavailable must be one of {ON_UNAVAILABLE}")
        if annotation is None and annotation_task_id is None:
            raise ValueError("pass annotation_task_id (or the annotation summary as annotation)")
        self.output_dir = output
        self.annotation_task_id = annotation_task_id
        self.annotation = annotation
        self.labelstudio_conn_id = labelstudio_conn_id
        self.min_annotated = min_annotated
        self.on_unavailable = on_unavailable
        self.id_column = id_column
        self.label_column = label_column
        self.from_name = from_name
        self.conn_id = conn_id
        self.deferrable = deferrable

    # ------------------------------------------------------------------ helpers
    def _summary(self, context: Context) -> dict[str, Any]:
        if self.annotation is not None:
            return dict(self.annotation)
        summary = context["ti"].xcom_pull(task_ids=self.annotation_task_id)
        if not summary:
            raise ValueError(f"task {self.annotation_task_id!r} left no annotation summary in XCom")
        return dict(summary)

    def _needed(self, summary: dict[str, Any]) -> int:
        sent = len(summary.get("human_row_ids") or [])
        return sent if self.min_annotated is None else min(int(self.min_annotated), sent)

    def _wait_is_over(self, summary: dict[str, Any]) -> str | None:
        if summary.get("project_id") is None:
            return "nothing was sent to Label Studio" if summary.get("labelstudio") != "unavailable" else \
                "Label Studio was unavailable when the rows were sent (on_unavailable='auto_only')"
        if self._needed(summary) == 0:
            return "no annotation needed"
        return None

    # ------------------------------------------------------------------ entry points
    def execute(self, context: Context) -> Any:
        summary = self._summary(context)
        reason = self._wait_is_over(summary)
        if reason:
            self.log.info("Not waiting: %s", reason)
            return self.merge(summary, human=False, note=reason)
        if not self.deferrable:
            return super().execute(context)
        from airflow_agentic.triggers.annotation import LabelStudioAnnotationTrigger

        poke = self.poke_interval.total_seconds() if isinstance(self.poke_interval, timedelta) else self.poke_interval
        self.defer(trigger=LabelStudioAnnotationTrigger(
            self.labelstudio_conn_id, int(summary["project_id"]), self._needed(summary),
            row_ids=summary.get("human_row_ids"), poll_interval=float(poke), on_unavailable=self.on_unavailable),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        from airflow_agentic.hooks.labelstudio import LabelStudioUnavailable
        from airflow_agentic.triggers.annotation import annotation_progress

        summary = self._summary(context)
        try:
            progress = annotation_progress(self.labelstudio_conn_id, summary["project_id"],
                                           summary.get("human_row_ids"))
        except LabelStudioUnavailable as exc:
            if self.on_unavailable == "auto_only":
                note = f"{exc}; on_unavailable='auto_only': merging the automatic labels only"
                self.log.warning("%s", note)
                return PokeReturnValue(True, self.merge(summary, human=False, note=note))
            self.log.warning("%s; on_unavailable='wait': poking again", exc)
            return False
        self.log.info("%s/%s tasks annotated (waiting for %s)", progress["annotated"], progress["tasks"],
                      self._needed(summary))
        if progress["annotated"] < self._needed(summary):
            return False
        return PokeReturnValue(True, self.merge(summary, human=True))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        event = event or {}
        summary = self._summary(context)
        if event.get("status") == "unavailable":
            note = f"{event.get('error')}; on_unavailable='auto_only': merging the automatic labels only"
            self.log.warning("%s", note)
            return self.merge(summary, human=False, note=note)
        if event.get("status") != "done":
            raise RuntimeError(f"unexpected trigger event {event!r}")
        self.log.info("%s/%s tasks annotated", event.get("annotated"), event.get("tasks"))
        return self.merge(summary, human=True)

    # ------------------------------------------------------------------ merge
    def merge(self, summary: dict[str, Any], *, human: bool, note: str | None = None) -> dict[str, Any]:
        """Automatic + human (+ given) labels -> one record per row, written atomically with the training rows."""
        from airflow_agentic.data import io as dio
        from airflow_agentic.data.labels import merge_labels
        from airflow_agentic.hooks.labelstudio import LabelStudioHook

        auto = dio.read_json(storage(summary["auto_labels_location"], self.conn_id)).get("records", [])
        human_records: list[dict] = []
        if human:
            wanted = set(summary.get("human_row_ids") or [])
            human_records = [r for r in LabelStudioHook(self.labelstudio_conn_id).call(
                "labels", int(summary["project_id"]), from_name=self.from_name) if r["row_id"] in wanted]
            for record in human_records:  # Label Studio pads the user name (" user@example.com, 1")
                record["annotator"] = None if record.get("annotator") is None else str(record["annotator"]).strip()
        given: list[dict] = []
        rows = None
        if summary.get("source"):
            rows = dio.read_batch(storage(summary["source"], self.conn_id))
            if self.label_column in rows.columns:
                labelled = rows[rows[self.label_column].notna()]
                given = [{"row_id": dio._finite(r), "label": dio._finite(l), "source": "given"} for r, l in
                         zip(labelled[self.id_column].tolist(), labelled[self.label_column].tolist())]
        _align_label_types(human_records, [*given, *auto])
        merged = merge_labels(given, auto, human_records)
        out_dir = storage(self.output_dir, self.conn_id)
        payload = {**merged.to_dict(), "project_id": summary.get("project_id"), "note": note,
                   "auto_labels_location": summary.get("auto_labels_location")}
        files = {LABELS_FILE: dio.json_bytes(payload)}
        training_rows = 0
        if rows is not None:
            import pandas as pd

            table = pd.DataFrame(merged.records)
            if len(table):
                table = table.rename(columns={"row_id": self.id_column, "label": self.label_column,
                                              "source": "label_source", "annotator": "label_annotator",
                                              "confidence": "label_confidence"})
                keep = [self.id_column, self.label_column, "label_source", "label_annotator", "label_confidence"]
                base = rows.drop(columns=[self.label_column], errors="ignore")
                training = base.merge(table[keep], on=self.id_column, how="inner", validate="one_to_one")
                training["label_annotator"] = training["label_annotator"].astype(object).map(
                    lambda v: None if v is None or v != v else str(v))
                training_rows = len(training)
                files[TRAINING_FILE] = dio.frame_to_bytes(training)
        dio.write_outputs(out_dir, files, extra={"by_source": payload["by_source"]})
        result = {"by_source": payload["by_source"], "labelled_rows": len(merged.records),
                  "conflicts": len(merged.conflicts), "training_rows": training_rows, "note": note,
                  "labels_location": dio.location(dio.join(out_dir, LABELS_FILE)),
                  "training_location": dio.location(dio.join(out_dir, TRAINING_FILE)) if training_rows else None,
                  "human_labels": human, "project_id": summary.get("project_id")}
        self.log.info("Merged labels: %s (%d conflicts)%s", result["by_source"], result["conflicts"],
                      f"; {note}" if note else "")
        return result


def _align_label_types(records: list[dict], like: list[dict]) -> None:
    """Label Studio hands choices back as strings: give them the type of the model's classes (ints stay ints)."""
    kinds = {type(r["label"]) for r in like if r.get("label") is not None}
    if not kinds or kinds - {int, float}:
        return
    cast = int if kinds == {int} else float
    for record in records:
        try:
            record["label"] = cast(record["label"])
        except (TypeError, ValueError):
            pass  # a class the model does not know stays as the person wrote it
