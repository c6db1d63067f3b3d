"""Annotation core: auto-labelling by confidence, label-quality checks (confident learning), label merging.

sklearn is imported inside the functions. Every label carries its provenance: ``source`` (``given``, ``auto``,
``human``), ``annotator`` and ``confidence``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

NEEDS_HUMAN = "needs_human"


@dataclass
class AutoLabelResult:
    labels: list  # predicted label where confident, None where a human is needed
    confidence: list[float]
    auto_rows: list  # row ids labelled automatically
    human_rows: list  # row ids that need a human
    threshold: float
    model: str | None = None

    def to_dict(self) -> dict:
        return {"labels": [_py(v) for v in self.labels], "confidence": [float(c) for c in self.confidence],
                "auto_rows": [_py(v) for v in self.auto_rows], "human_rows": [_py(v) for v in self.human_rows],
                "threshold": self.threshold, "model": self.model,
                "summary": {"auto": len(self.auto_rows), "needs_human": len(self.human_rows)}}

    @classmethod
    def from_dict(cls, data: dict) -> "AutoLabelResult":
        return cls(labels=list(data["labels"]), confidence=list(data["confidence"]), auto_rows=list(data["auto_rows"]),
                   human_rows=list(data["human_rows"]), threshold=float(data["threshold"]), model=data.get("model"))

    def records(self, row_ids: Iterable, annotator: str = "model") -> list[dict]:
        """Provenance records of the automatic labels (for :func:`merge_labels`)."""
        return [{"row_id": _py(r), "label": _py(label), "source": "auto", "annotator": annotator,
                 "confidence": float(c)}
                for r, label, c in zip(row_ids, self.labels, self.confidence) if label is not None]


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def auto_label(model: Any, features: Any, *, threshold: float = 0.9, row_ids: Iterable | None = None) -> AutoLabelResult:
    """Label rows whose top ``predict_proba`` is at least ``threshold``; the rest need a human."""
    proba = np.asarray(model.predict_proba(features))
    classes = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])))
    top = proba.argmax(axis=1)
    confidence = proba[np.arange(len(proba)), top]
    confident = confidence >= threshold
    ids = np.asarray(list(row_ids) if row_ids is not None else range(len(proba)), dtype=object)
    labels = [(_py(classes[t]) if ok else None) for t, ok in zip(top, confident)]
    return AutoLabelResult(labels=labels, confidence=confidence.tolist(), auto_rows=ids[confident].tolist(),
                           human_rows=ids[~confident].tolist(), threshold=threshold, model=type(model).__name__)


def out_of_fold_proba(features: Any, labels: Any, model: Any = None, cv: int = 5, random_state: int = 0):
    """Out-of-fold predicted probabilities with sklearn's cross_val_predict (classes in sorted order)."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.asarray(labels)
    counts = np.unique(labels, return_counts=True)[1]
    folds = max(2, min(cv, int(counts.min())))
    estimator = clone(model) if model is not None else LogisticRegression(max_iter=1000)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    return cross_val_predict(estimator, features, labels, cv=splitter, method="predict_proba")


def label_issues(features: Any, labels: Any, *, model: Any = None, cv: int = 5, row_ids: Iterable | None = None,
                 proba: np.ndarray | None = None, random_state: int = 0) -> "pd.DataFrame":
    """Rows whose given label disagrees strongly with out-of-fold probabilities (the confident-learning idea).

    Per class j the threshold t_j is the mean out-of-fold probability of j over rows labelled j. A row labelled i is
    an issue when p_i < t_i and another class k has p_k >= t_k (the model is confident it is k). Sorted by
    self-confidence p_i, lowest first. Columns: row_id, given, suggested, self_confidence, suggested_confidence.
    """
    import pandas as pd

    labels = np.asarray(labels)
    classes = np.unique(labels)
    if proba is None:
        proba = out_of_fold_proba(features, labels, model=model, cv=cv, random_state=random_state)
    proba = np.asarray(proba)
    index = np.searchsorted(classes, labels)
    thresholds = np.array([proba[index == j, j].mean() if (index == j).any() else 1.0 for j in range(len(classes))])
    self_conf = proba[np.arange(len(labels)), index]
    above = proba >= thresholds[None, :]
    above[np.arange(len(labels)), index] = False
    masked = np.where(above, proba, -1.0)
    suggested = masked.argmax(axis=1)
    issue = (self_conf < thresholds[index]) & above.any(axis=1)
    ids = np.asarray(list(row_ids) if row_ids is not None else range(len(labels)), dtype=object)
    out = pd.DataFrame({
        "row_id": ids[issue], "given": labels[issue], "suggested": classes[suggested[issue]],
        "self_confidence": self_conf[issue], "suggested_confidence": proba[issue, suggested[issue]],
    })
    return out.sort_values("self_confidence", kind="stable").reset_index(drop=True)


@dataclass
class MergedLabels:
    records: list[dict]  # one per row: row_id, label, source, annotator, confidence, (conflict)
    conflicts: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        by_source: dict[str, int] = {}
        for r in self.records:
            by_source[r["source"]] = by_source.get(r["source"], 0) + 1
        return {"records": self.records, "conflicts": self.conflicts, "by_source": by_source}

    @classmethod
    def from_dict(cls, data: dict) -> "MergedLabels":
        return cls(records=list(data["records"]), conflicts=list(data.get("conflicts") or []))

    def labels(self) -> dict:
        return {r["row_id"]: r["label"] for r in self.records}


SOURCE_RANK = {"human": 3, "auto": 2, "given": 1}


def merge_labels(*sources: Iterable[dict]) -> MergedLabels:
    """Merge label records ``{row_id, label, source, annotator?, confidence?}`` from several sources.

    Human beats auto beats given; among humans the majority label wins (ties: the latest record). A row whose
    sources disagree is listed in ``conflicts`` (with every candidate), so nothing silently overrides a human.
    """
    grouped: dict[Any, list[dict]] = {}
    order: list[Any] = []
    for source in sources:
        for record in source:
            if record.get("label") is None:
                continue
            key = record["row_id"]
            if key not in grouped:
                grouped[key] = []
                order.append(key)
            grouped[key].append(record)
    merged, conflicts = [], []
    for key in order:
        candidates = grouped[key]
        best_rank = max(SOURCE_RANK.get(c.get("source", "given"), 0) for c in candidates)
        top = [c for c in candidates if SOURCE_RANK.get(c.get("source", "given"), 0) == best_rank]
        votes: dict[Any, int] = {}
        for c in top:
            votes[c["label"]] = votes.get(c["label"], 0) + 1
        most = max(votes.values())
        winner_label = [c["label"] for c in reversed(top) if votes[c["label"]] == most][0]
        winner = next(c for c in reversed(top) if c["label"] == winner_label)
        record = {"row_id": key, "label": winner_label, "source": winner.get("source", "given"),
                  "annotator": winner.get("annotator"), "confidence": winner.get("confidence"),
                  "votes": most if best_rank == SOURCE_RANK["human"] else None}
        if len({c["label"] for c in candidates}) > 1:
            record["conflict"] = True
            conflicts.append({"row_id": key, "chosen": winner_label,
                              "candidates": [{k: c.get(k) for k in ("label", "source", "annotator")}
                                             for c in candidates]})
        merged.append(record)
    return MergedLabels(records=merged, conflicts=conflicts)
