"""``LabelStudioAnnotationTrigger``: wait in the triggerer until a Label Studio project has enough annotated tasks.

The SDK is synchronous: every call runs in a worker thread (``asyncio.to_thread``) so the triggerer's shared event
loop never blocks. Only the connection id is serialised, never the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


def annotation_progress(conn_id: str, project_id: int, row_ids: list | None = None) -> dict[str, Any]:
    """``{"annotated", "tasks"}`` of the project (only tasks of ``row_ids`` when given). Blocking."""
    from airflow_agentic.data.labelstudio import _get
    from airflow_agentic.hooks.labelstudio import LabelStudioHook

    tasks = LabelStudioHook(conn_id).call("tasks", int(project_id))
    wanted = set(row_ids) if row_ids else None
    annotated = total = 0
    for task in tasks:
        if wanted is not None and (_get(task, "data") or {}).get("row_id") not in wanted:
            continue
        total += 1
        n = _get(task, "total_annotations")
        if n is None:
            n = len(_get(task, "annotations") or [])
        if int(n or 0) - int(_get(task, "cancelled_annotations") or 0) > 0:
            annotated += 1
    return {"annotated": annotated, "tasks": total}


class LabelStudioAnnotationTrigger(BaseTrigger):
    """Fires ``{"status": "done", ...}`` once ``min_annotated`` tasks are annotated, or ``{"status":
    "unavailable", ...}`` when Label Studio is unreachable and ``on_unavailable="auto_only"``. With ``"wait"`` an
    unreachable Label Studio is logged and polled again."""

    def __init__(self, conn_id: str, project_id: int, min_annotated: int, *, row_ids: list | None = None,
                 poll_interval: float = 30.0, on_unavailable: str = "wait"):
        super().__init__()
        self.conn_id = conn_id
        self.project_id = int(project_id)
        self.min_annotated = int(min_annotated)
        self.row_ids = list(row_ids) if row_ids else None
        self.poll_interval = float(poll_interval)
        self.on_unavailable = on_unavailable

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "conn_id": self.conn_id, "project_id": self.project_id, "min_annotated": self.min_annotated,
            "row_ids": self.row_ids, "poll_interval": self.poll_interval, "on_unavailable": self.on_unavailable})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_agentic.hooks.labelstudio import LabelStudioUnavailable

        started = time.monotonic()
        while True:
            try:
                progress = await asyncio.to_thread(annotation_progress, self.conn_id, self.project_id, self.row_ids)
            except LabelStudioUnavailable as exc:
                if self.on_unavailable == "auto_only":
                    yield TriggerEvent({"status": "unavailable", "error": str(exc)[:1000],
                                        "project_id": self.project_id})
                    return
                self.log.warning("%s; on_unavailable='wait': polling again in %.0f s", exc, self.poll_interval)
            else:
                self.log.info("Label Studio project %s: %s/%s tasks annotated (waiting for %s)", self.project_id,
                              progress["annotated"], progress["tasks"], self.min_annotated)
                if progress["annotated"] >= self.min_annotated:
                    yield TriggerEvent({"status": "done", "project_id": self.project_id, **progress,
                                        "waited_seconds": round(time.monotonic() - started, 1)})
                    return
            await asyncio.sleep(self.poll_interval)
