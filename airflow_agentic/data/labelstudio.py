"""A thin Label Studio client over ``label_studio_sdk.client.LabelStudio`` (SDK 1.0.x).

Idempotent by design: a project is reused by title, and rows already imported (matched on ``data[row_id_key]``) are
skipped, so a retried task never duplicates work for the annotators. Labels come back with provenance.
"""

from __future__ import annotations

from typing import Any, Iterable

DEFAULT_LABEL_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text" choice="single">{choices}</Choices>
</View>"""


def choices_config(labels: Iterable[Any], text_field: str = "text") -> str:
    choices = "".join(f'<Choice value="{label}"/>' for label in labels)
    return DEFAULT_LABEL_CONFIG.replace("$text", f"${text_field}").format(choices=choices)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def label_from_result(result: Any, from_name: str | None = None) -> Any:
    """The first choice / label value of an annotation ``result`` list (optionally for one control)."""
    for item in result or []:
        if from_name and _get(item, "from_name") != from_name:
            continue
        value = _get(item, "value") or {}
        for key in ("choices", "labels", "taxonomy", "rating", "number", "text"):
            if key in value:
                v = value[key]
                if isinstance(v, list):
                    if not v:
                        continue
                    v = v[0]
                    if isinstance(v, list):  # taxonomy paths
                        v = v[-1] if v else None
                return v
    return None


def annotations_to_records(tasks: Iterable[Any], annotations_by_task: dict[Any, list[Any]], *,
                           row_id_key: str = "row_id", from_name: str | None = None) -> list[dict]:
    """Label records with provenance (``source="human"``, annotator, annotation id) from plain task/annotation data.

    Cancelled (skipped) annotations and annotations without a label are ignored. Pure function: unit-testable.
    """
    records = []
    for task in tasks:
        task_id = _get(task, "id")
        data = _get(task, "data") or {}
        row_id = data.get(row_id_key)
        for ann in annotations_by_task.get(task_id, []) or []:
            if _get(ann, "was_cancelled"):
                continue
            label = label_from_result(_get(ann, "result"), from_name)
            if label is None:
                continue
            annotator = _get(ann, "created_username") or _get(ann, "completed_by")
            records.append({"row_id": row_id, "label": label, "source": "human", "annotator": annotator,
                            "confidence": None, "task_id": task_id, "annotation_id": _get(ann, "id"),
                            "ground_truth": bool(_get(ann, "ground_truth") or False),
                            "updated_at": str(_get(ann, "updated_at") or _get(ann, "created_at") or "")})
    return records


class LabelStudioClient:
    """Create or reuse a project, import rows as tasks once, count and fetch human labels."""

    def __init__(self, base_url: str, api_key: str, *, client: Any = None, row_id_key: str = "row_id"):
        if client is None:
            from airflow_agentic.extras import require

            require("label_studio_sdk.client", "labelstudio", "Label Studio annotation")
            from label_studio_sdk.client import LabelStudio

            client = LabelStudio(base_url=base_url, api_key=api_key)
        self.client = client
        self.row_id_key = row_id_key

    # ------------------------------------------------------------------ projects
    def project(self, title: str, label_config: str) -> int:
        """Id of the project called ``title``, created when it does not exist."""
        for project in self.client.projects.list(title=title):
            if _get(project, "title") == title:
                return int(_get(project, "id"))
        created = self.client.projects.create(title=title, label_config=label_config)
        return int(_get(created, "id"))

    # ------------------------------------------------------------------ tasks
    def tasks(self, project_id: int) -> list[Any]:
        return list(self.client.tasks.list(project=project_id, fields="all"))

    def imported_row_ids(self, project_id: int) -> set:
        return {(_get(t, "data") or {}).get(self.row_id_key) for t in self.tasks(project_id)} - {None}

    def import_rows(self, project_id: int, rows: Iterable[dict]) -> dict:
        """Import rows (dicts holding ``row_id_key``) as tasks, skipping rows already in the project."""
        rows = list(rows)
        missing_id = [r for r in rows if self.row_id_key not in r]
        if missing_id:
            raise ValueError(f"{len(missing_id)} rows have no {self.row_id_key!r}")
        seen = self.imported_row_ids(project_id)
        new, batch_ids = [], set()
        for row in rows:
            key = row[self.row_id_key]
            if key in seen or key in batch_ids:
                continue
            batch_ids.add(key)
            new.append({"data": {k: _jsonable(v) for k, v in row.items()}})
        task_ids: list = []
        if new:
            response = self.client.projects.import_tasks(id=project_id, request=new, return_task_ids=True)
            task_ids = list(_get(response, "task_ids") or [])
        return {"imported": len(new), "skipped": len(rows) - len(new), "task_ids": task_ids}

    # ------------------------------------------------------------------ annotations
    def annotated_count(self, project_id: int) -> int:
        count = 0
        for task in self.tasks(project_id):
            n = _get(task, "total_annotations")
            if n is None:
                n = len(_get(task, "annotations") or [])
            count += int(bool(n) and n - int(_get(task, "cancelled_annotations") or 0) > 0)
        return count

    def labels(self, project_id: int, from_name: str | None = None) -> list[dict]:
        tasks = self.tasks(project_id)
        by_task = {}
        for task in tasks:
            if not (_get(task, "total_annotations") or _get(task, "annotations")):
                continue
            by_task[_get(task, "id")] = list(self.client.annotations.list(id=_get(task, "id")))
        return annotations_to_records(tasks, by_task, row_id_key=self.row_id_key, from_name=from_name)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
