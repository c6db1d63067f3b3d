"""The monitoring step of the flywheel, batch by batch: predict with the champion (and shadow-score the earlier
champions on the same rows), join labels when they arrive, check drift, and build the monitoring agent's evidence.

The backtest keeps a :class:`Watch` in memory; the monitoring DAG (``MonitorBatchOperator``) loads it before a batch
and saves it after, so both feed the monitoring agent the same observation from the same code. No Airflow here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.agents.monitoring import (
    BatchPerformance,
    MonitoringPolicy,
    MonitoringState,
    build_signals,
    performance_evidence,
)

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.drift.performance import PerformanceMonitor
    from airflow_agentic.drift.profile import ReferenceProfile
    from airflow_agentic.flywheel.store import ModelEntry

log = logging.getLogger(__name__)

MAX_RECORDS = 500  # labelled batches kept; the agent looks at the champion's first and last few
MAX_ESTIMATES = 200


def predict_with_estimate(champion: ModelEntry, X: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any] | None]:
    """The champion's predictions on a batch, and its estimated accuracy there with the batch's estimated class
    priors, from the calibration fitted when the version was trained (CBPE corrected for label shift; None without
    a calibration). One pass over the rows: the predictions are the probabilities' top class, as ``predict``'s."""
    if not champion.calibration or len(X) == 0 or not hasattr(champion.model, "predict_proba"):
        return predict(champion.model, X), None
    from airflow_agentic.drift.estimation import Calibration, estimate_performance, estimate_priors, prior_corrected

    proba = np.asarray(champion.model.predict_proba(X))
    predictions = np.asarray(champion.model.classes_)[proba.argmax(axis=1)]
    try:
        calibration = Calibration.from_dict(champion.calibration)
        priors = estimate_priors(calibration, proba)
        estimate = estimate_performance(calibration, proba, priors, predicted=predictions)
        label_shift = bool(priors.significant and priors.consistent)
        corrected_accuracy = None
        if label_shift:  # what the champion with its class priors re-weighted would score here
            corrected = np.asarray(calibration.classes, dtype=object)[
                prior_corrected(proba, calibration, priors.priors).argmax(axis=1)]
            corrected_accuracy = estimate_performance(calibration, proba, priors, predicted=corrected).accuracy
    except ValueError as exc:  # estimation is advisory: the realised accuracy still decides
        log.warning("no performance estimate for this batch: %s", exc)
        return predictions, None
    return predictions, {
        "accuracy": round(estimate.accuracy, 4), "std_error": round(estimate.std_error, 4),
        "reference_accuracy": round(estimate.reference_accuracy, 4), "drop": round(estimate.drop, 4),
        "p_value": float(f"{estimate.p_value:.3g}"),
        "priors": {str(c): round(float(v), 4) for c, v in zip(calibration.classes, priors.priors)},
        "prior_shift": round(priors.shift, 4), "prior_shift_p": float(f"{priors.p_value:.3g}"),
        "label_shift": label_shift, "realised_accuracy": None,
        "corrected_accuracy": None if corrected_accuracy is None else round(corrected_accuracy, 4)}


def predict(model: Any, X: pd.DataFrame) -> np.ndarray:
    if len(X) == 0:
        return np.asarray([], dtype=object)
    return np.asarray(model.predict(X)).reshape(len(X), -1)[:, 0]


def _json_values(values: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


@dataclass
class Watch:
    """What the monitoring step remembers between batches (JSON through ``to_dict`` / ``from_dict``).

    ``pending`` holds, per batch still waiting for its labels, the row ids of its clean rows, which version served
    it and every kept version's predictions on those rows (so that labels can compare the champion with the model
    it replaced on the same rows, the evidence for a rollback).
    """

    records: list[BatchPerformance] = field(default_factory=list)
    state: MonitoringState = field(default_factory=MonitoringState)
    monitor: PerformanceMonitor | None = None
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    # batch -> the champion's accuracy and the batch's class priors estimated from its calibrated probabilities,
    # before any label (kept for the batches not labelled yet and the last few labelled ones, next to realised)
    estimates: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.monitor is None:
            from airflow_agentic.drift.performance import PerformanceMonitor

            self.monitor = PerformanceMonitor()

    # -- the three moves of a batch -------------------------------------------------------------------------------
    def score(self, batch: int, X: pd.DataFrame, ids: np.ndarray, champion: ModelEntry,
              earlier: list[ModelEntry] = ()) -> np.ndarray:
        """The champion's predictions on a batch's clean rows; every earlier version is scored on them too, and the
        champion's accuracy on the batch is estimated from its calibrated probabilities (``drift.estimation``)."""
        predictions, estimate = predict_with_estimate(champion, X)
        if any(r.batch == int(batch) for r in self.records):
            # Delivered again (a re-run steward emits its event again): its labels are already in the records and
            # the error stream; scoring it again would count every row twice.
            log.warning("batch %s was already scored and labelled: not scored again", batch)
            return predictions
        if estimate is not None:
            self.estimates[int(batch)] = estimate
            self.estimates = dict(sorted(self.estimates.items())[-MAX_ESTIMATES:])
        shadows = {e.version: _json_values(predict(e.model, X)) for e in earlier if e.version != champion.version}
        self.pending[int(batch)] = {"version": champion.version, "ids": _json_values(ids),
                                    "predictions": {champion.version: _json_values(predictions), **shadows}}
        self.monitor.add_predictions(str(batch), ids, predictions)
        return predictions

    def label(self, batch: int, labels: np.ndarray) -> BatchPerformance | None:
        """Labels of a scored batch's clean rows (in the order they were scored) arrive: score every version."""
        waiting = self.pending.pop(int(batch), None)
        if waiting is None:
            log.warning("labels for batch %s, which was never scored (or already labelled): ignored", batch)
            return None
        labels = np.asarray(labels)
        if len(labels) != len(waiting["ids"]):
            raise ValueError(f"batch {batch}: {len(labels)} labels for {len(waiting['ids'])} scored rows")
        predictions = {v: np.asarray(p, dtype=object) for v, p in waiting["predictions"].items()}
        record = score_batch(int(batch), waiting["version"], labels, predictions)
        # A retried task labels the same batch again: the new record replaces the first instead of counting twice.
        self.records = [r for r in self.records if (r.batch, r.version) != (record.batch, record.version)]
        self.records = [*self.records, record][-MAX_RECORDS:]
        self.monitor.add_labels(waiting["ids"], labels)
        if int(batch) in self.estimates:
            self.estimates[int(batch)]["realised_accuracy"] = round(float(record.accuracy or 0.0), 4)
        return record

    def signals(self, *, batch: int, drift: dict[str, Any], quality: dict[str, Any], champion: ModelEntry,
                labelled_upto: int | None, policy: MonitoringPolicy | None = None) -> dict[str, Any]:
        """The monitoring agent's observation of this batch."""
        policy = policy or MonitoringPolicy()
        report = self.monitor.report()
        report.pop("per_batch", None)
        performance = performance_evidence(self.records, champion.version, previous=champion.replaced,
                                           expected=champion.expected, policy=policy)
        signals = build_signals(
            batch=batch, drift=drift, quality=quality, performance=performance, monitor_report=report,
            retraining={"kind": champion.kind, "change_point": champion.change_point,
                        "trained_until": max(champion.trained_on) if champion.trained_on else None,
                        "labelled_upto": labelled_upto})
        signals["estimation"] = self.estimates.get(int(batch))
        return signals

    def acknowledge(self) -> None:
        """A new champion serves: the error stream's earlier changes are handled."""
        self.monitor.acknowledge()

    # -- JSON -----------------------------------------------------------------------------------------------------
    # -- two writers -------------------------------------------------------------------------------------------------
    def newest_batch(self) -> int:
        return max([r.batch for r in self.records] + list(self.pending) + list(self.estimates), default=-1)

    def merged_with(self, other: Watch) -> Watch:
        """This watch and one another writer saved meanwhile (two monitoring runs, a backfill), as one.

        Nothing scored is lost: records, predictions waiting for labels and estimates are per batch, so both writers'
        batches are kept (a batch labelled in either is no longer pending). The agent's memory and the ADWIN error
        stream are sequential and cannot be added up: they are those of the watch that saw the newest batch."""
        later, earlier = (self, other) if self.newest_batch() >= other.newest_batch() else (other, self)
        records = {(r.batch, r.version): r for r in [*earlier.records, *later.records]}
        labelled = {batch for batch, _ in records}
        pending = {b: p for b, p in {**earlier.pending, **later.pending}.items() if b not in labelled}
        estimates = {b: {**earlier.estimates.get(b, {}), **later.estimates.get(b, {})}
                     for b in sorted({*earlier.estimates, *later.estimates})}
        return Watch(records=sorted(records.values(), key=lambda r: r.batch)[-MAX_RECORDS:], state=later.state,
                     monitor=later.monitor, pending=dict(sorted(pending.items())),
                     estimates=dict(list(estimates.items())[-MAX_ESTIMATES:]))

    def to_dict(self) -> dict[str, Any]:
        return {"records": [r.to_dict() for r in self.records], "state": self.state.to_dict(),
                "monitor": self.monitor.to_dict(), "pending": {str(b): p for b, p in self.pending.items()},
                "estimates": {str(b): e for b, e in self.estimates.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Watch:
        from airflow_agentic.drift.performance import PerformanceMonitor

        data = data or {}
        if not isinstance(data, dict):
            raise ValueError(f"a monitoring watch is a JSON object, not {type(data).__name__}")
        return cls(records=[BatchPerformance.from_dict(r) for r in data.get("records") or []],
                   state=MonitoringState.from_dict(data.get("state")),
                   monitor=PerformanceMonitor.from_dict(data["monitor"]) if data.get("monitor") else None,
                   pending={int(b): p for b, p in (data.get("pending") or {}).items()},
                   estimates={int(b): e for b, e in (data.get("estimates") or {}).items()})


def score_batch(batch: int, version: str, labels: np.ndarray, predictions: dict[str, np.ndarray]) -> BatchPerformance:
    """Score the serving model's predictions and every shadow model's on the same clean labelled rows."""
    labels = np.asarray(labels)
    right = {v: _same(np.asarray(p), labels) for v, p in predictions.items()}
    own = right[version]
    shadow = {}
    for v, r in right.items():
        if v == version:
            continue
        shadow[v] = {"correct": int(r.sum()), "only_self": int((own & ~r).sum()), "only_other": int((r & ~own).sum())}
    return BatchPerformance(batch=batch, version=version, rows=int(len(labels)), correct=int(own.sum()), shadow=shadow,
                            labels=class_counts(labels))


def class_counts(labels: np.ndarray) -> dict[str, int]:
    """How many rows of each class (keys as text, the same in JSON, in records and in a model's priors)."""
    values, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


def _same(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Elementwise equality of predictions and labels, also when one side went through JSON (1 vs "1" vs 1.0)."""
    try:
        return predictions.astype(float) == labels.astype(float)
    except (TypeError, ValueError):
        return predictions.astype(str) == labels.astype(str)


def drift_check(profile: ReferenceProfile | None, features: pd.DataFrame, predictions: np.ndarray) -> dict[str, Any]:
    """The drift report of a (clean) batch against the champion's training profile, as a dict; the champion's
    outputs are tested against its reference outputs too (prediction drift needs no labels)."""
    if profile is None or len(features) == 0:
        return {"detected": False, "score": 0.0}
    from airflow_agentic.drift.detectors import detect_drift

    with_predictions = getattr(profile, "prediction", None) is not None and len(predictions) > 0
    try:
        report = detect_drift(profile, features, prediction=predictions if with_predictions else None)
    except Exception as exc:  # noqa: BLE001 - drift is advisory: a failing test must not stop the flywheel
        log.warning("drift check failed: %s", exc)
        return {"detected": False, "score": 0.0, "error": str(exc)}
    return report.to_dict()


__all__ = ["MAX_RECORDS", "Watch", "drift_check", "predict", "score_batch"]
