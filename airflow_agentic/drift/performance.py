"""Performance monitoring on delayed labels.

Predictions are kept by row id (with the batch they belong to) until their labels arrive, possibly several tasks
later. Every joined row adds a 0/1 error to a stream watched by river's ADWIN (optionally PageHinkley too).

State survives between Airflow tasks through ``to_dict()`` / ``from_dict()`` (JSON). ADWIN itself is not
serialised: the last ``max_history`` errors are, and the detector is rebuilt by replaying them (ADWIN is
deterministic, so the rebuilt state is identical while the history is not truncated). Pending predictions are
capped at ``max_pending`` (oldest dropped, counted in ``dropped_predictions``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable

import numpy as np

from airflow_agentic.drift.columns import check_positive_int, check_probability


def row_key(value: Any) -> str:
    """The key a row id or a label is matched by (numpy scalars and Python values alike)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    return str(value)


_key = row_key  # the old private name, still imported by estimation.py


class PerformanceMonitor:
    def __init__(self, *, detectors: Iterable[str] = ("adwin",), delta: float = 0.002,
                 baseline_accuracy: float | None = None, max_history: int = 10_000, max_pending: int = 1_000_000,
                 page_hinkley_threshold: float = 50.0):
        if isinstance(detectors, str):
            detectors = (detectors,)
        detectors = tuple(detectors)
        unknown = set(detectors) - {"adwin", "page_hinkley"}
        if unknown or not detectors:
            raise ValueError(f"unknown detector(s) {sorted(unknown)} (adwin, page_hinkley)" if unknown
                             else "detectors is empty: name adwin and/or page_hinkley")
        delta = check_probability("delta", delta)
        if baseline_accuracy is not None and not (isinstance(baseline_accuracy, (int, float))
                                                  and 0.0 <= float(baseline_accuracy) <= 1.0):
            raise ValueError(f"baseline_accuracy must be between 0 and 1, got {baseline_accuracy!r}")
        check_positive_int("max_history", max_history)
        check_positive_int("max_pending", max_pending)
        if isinstance(page_hinkley_threshold, bool) or not isinstance(page_hinkley_threshold, (int, float)) or not (
                0 < float(page_hinkley_threshold) < float("inf")):
            raise ValueError(f"page_hinkley_threshold must be a positive number, got {page_hinkley_threshold!r}")
        self.detectors = detectors
        self.delta = delta
        self.page_hinkley_threshold = page_hinkley_threshold
        self.baseline_accuracy = baseline_accuracy
        self.max_history = max_history
        self.max_pending = max_pending
        self.pending: OrderedDict[str, tuple[str, str]] = OrderedDict()  # row_id -> (batch, prediction)
        self.batches: dict[str, dict[str, int]] = {}  # batch -> {"n": labelled, "correct": ..., "predicted": ...}
        self.batch_order: list[str] = []
        self.errors: list[int] = []  # recent error stream (bounded)
        self.n_errors_total = 0  # length of the full stream, for positions
        self.changes: dict[str, list[int]] = {name: [] for name in detectors}  # stream positions of detections
        self.acknowledged_at = -1
        self.dropped_predictions = 0
        self.unmatched_labels = 0
        self._detectors: dict[str, Any] | None = None

    # ------------------------------------------------------------------ detectors
    def _new_detectors(self) -> dict[str, Any]:
        from river.drift import ADWIN, PageHinkley

        out: dict[str, Any] = {}
        if "adwin" in self.detectors:
            out["adwin"] = ADWIN(delta=self.delta)
        if "page_hinkley" in self.detectors:
            out["page_hinkley"] = PageHinkley(threshold=self.page_hinkley_threshold, mode="up")
        return out

    def _ensure_detectors(self) -> dict[str, Any]:
        if self._detectors is None:
            self._detectors = self._new_detectors()
            for err in self.errors:  # replay: rebuild the same state, detections already recorded
                for det in self._detectors.values():
                    det.update(err)
        return self._detectors

    # ------------------------------------------------------------------ feeding
    def add_predictions(self, batch: str, row_ids: Iterable[Any], preds: Iterable[Any]) -> None:
        row_ids = [row_key(r) for r in row_ids]
        preds = [row_key(p) for p in preds]
        if len(row_ids) != len(preds):
            raise ValueError(f"{len(row_ids)} row ids but {len(preds)} predictions")
        batch = str(batch)
        if batch not in self.batches:
            self.batches[batch] = {"n": 0, "correct": 0, "predicted": 0}
            self.batch_order.append(batch)
        self.batches[batch]["predicted"] += len(preds)
        for rid, pred in zip(row_ids, preds):
            self.pending[rid] = (batch, pred)
            self.pending.move_to_end(rid)
        while len(self.pending) > self.max_pending:
            self.pending.popitem(last=False)
            self.dropped_predictions += 1

    def add_labels(self, row_ids: Iterable[Any], labels: Iterable[Any]) -> int:
        """Join labels to stored predictions; returns how many rows joined. Unknown row ids are counted."""
        detectors = self._ensure_detectors()
        joined = 0
        for rid, label in zip(row_ids, labels):
            entry = self.pending.pop(row_key(rid), None)
            if entry is None:
                self.unmatched_labels += 1
                continue
            batch, pred = entry
            err = int(pred != row_key(label))
            stats = self.batches[batch]
            stats["n"] += 1
            stats["correct"] += 1 - err
            position = self.n_errors_total
            self.n_errors_total += 1
            self.errors.append(err)
            for name, det in detectors.items():
                det.update(err)
                if det.drift_detected:
                    self.changes[name].append(position)
            joined += 1
        if len(self.errors) > self.max_history:
            del self.errors[: len(self.errors) - self.max_history]
        if self.baseline_accuracy is None:
            first = self.batches[self.batch_order[0]] if self.batch_order else None
            if first and first["n"] and first["n"] == first["predicted"]:
                self.baseline_accuracy = first["correct"] / first["n"]
        return joined

    def acknowledge(self) -> None:
        """Mark the detections so far as handled (e.g. after retraining)."""
        self.acknowledged_at = self.n_errors_total - 1

    # ------------------------------------------------------------------ reading
    def batch_accuracy(self) -> dict[str, float | None]:
        return {b: (s["correct"] / s["n"] if s["n"] else None) for b, s in
                ((b, self.batches[b]) for b in self.batch_order)}

    def report(self) -> dict[str, Any]:
        detectors = self._ensure_detectors()
        per_batch = self.batch_accuracy()
        labelled = [b for b in self.batch_order if self.batches[b]["n"]]
        latest = labelled[-1] if labelled else None
        baseline = self.baseline_accuracy
        if baseline is None and labelled:
            baseline = per_batch[labelled[0]]
        new_changes = {n: [p for p in pos if p > self.acknowledged_at] for n, pos in self.changes.items()}
        adwin = detectors.get("adwin")
        return {
            "accuracy": per_batch[latest] if latest else None,
            "latest_batch": latest,
            "baseline_accuracy": baseline,
            "window_accuracy": (1.0 - float(adwin.estimation)) if adwin is not None and adwin.width else None,
            "change_detected": any(new_changes.values()),
            "detector": "+".join(self.detectors),
            "change_positions": new_changes,
            "per_batch": per_batch,
            "labelled": int(sum(s["n"] for s in self.batches.values())),
            "pending": len(self.pending),
            "unmatched_labels": self.unmatched_labels,
            "dropped_predictions": self.dropped_predictions,
        }

    # ------------------------------------------------------------------ state
    def to_dict(self) -> dict[str, Any]:
        return {
            "detectors": list(self.detectors), "delta": self.delta, "baseline_accuracy": self.baseline_accuracy,
            "page_hinkley_threshold": self.page_hinkley_threshold,
            "max_history": self.max_history, "max_pending": self.max_pending,
            "pending": [[rid, b, p] for rid, (b, p) in self.pending.items()],
            "batches": self.batches, "batch_order": self.batch_order, "errors": list(self.errors),
            "n_errors_total": self.n_errors_total, "changes": self.changes, "acknowledged_at": self.acknowledged_at,
            "dropped_predictions": self.dropped_predictions, "unmatched_labels": self.unmatched_labels,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerformanceMonitor:
        mon = cls(detectors=data["detectors"], delta=data["delta"], baseline_accuracy=data["baseline_accuracy"],
                  max_history=data["max_history"], max_pending=data["max_pending"],
                  page_hinkley_threshold=data.get("page_hinkley_threshold", 50.0))
        mon.pending = OrderedDict((rid, (b, p)) for rid, b, p in data["pending"])
        mon.batches = {b: dict(s) for b, s in data["batches"].items()}
        mon.batch_order = list(data["batch_order"])
        mon.errors = list(data["errors"])
        mon.n_errors_total = data["n_errors_total"]
        mon.changes = {k: list(v) for k, v in data["changes"].items()}
        mon.acknowledged_at = data["acknowledged_at"]
        mon.dropped_predictions = data["dropped_predictions"]
        mon.unmatched_labels = data["unmatched_labels"]
        return mon
