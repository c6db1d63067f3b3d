"""The deployment gate: challenger vs champion on recent labelled data that neither was trained on."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_agentic.models.dataset import content_hash

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class GateVerdict:
    passed: bool
    reasons: list[str]
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateVerdict:
        return cls(**data)


@dataclass
class GatePolicy:
    metric: str = "roc_auc"  # roc_auc | average_precision | accuracy | f1 (higher is better)
    margin: float = 0.0  # challenger must beat champion by at least this
    max_latency_ms_per_1k: float | None = None  # absolute limit
    max_latency_ratio: float | None = 3.0  # challenger latency / champion latency
    max_class_share: float = 0.95  # a predicted class above this share fails ...
    label_share_slack: float = 0.05  # ... unless the labels hold that class at least (share - slack)
    require_signature_match: bool = True
    min_rows: int = 50

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GatePolicy:
        return cls(**data)


def _metric(metric: str, y: Any, labels: np.ndarray, proba: np.ndarray | None) -> float:
    from sklearn import metrics

    if metric in ("roc_auc", "average_precision"):
        if proba is None:
            raise ValueError(f"{metric} needs predict_proba")
        if proba.ndim == 2 and proba.shape[1] == 2:
            proba = proba[:, 1]
        if metric == "roc_auc":
            return float(metrics.roc_auc_score(y, proba, multi_class="ovr") if np.ndim(proba) == 2
                         else metrics.roc_auc_score(y, proba))
        return float(metrics.average_precision_score(y, proba))
    if metric == "accuracy":
        return float(metrics.accuracy_score(y, labels))
    if metric == "f1":
        return float(metrics.f1_score(y, labels, average="binary" if len(np.unique(y)) == 2 else "macro"))
    raise ValueError(f"unknown gate metric {metric!r}")


def _timed_predictions(model: Any, X: pd.DataFrame, repeats: int = 3) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Labels, probabilities and predict latency in ms per 1,000 rows (best of `repeats` after a warm-up call, so
    one-off costs such as lazy imports do not count)."""
    model.predict(X.head(5))
    best = float("inf")
    labels = None
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        labels = np.asarray(model.predict(X))
        best = min(best, time.perf_counter() - started)
    proba = np.asarray(model.predict_proba(X)) if hasattr(model, "predict_proba") else None
    if labels.ndim > 1:
        labels = labels.reshape(len(X), -1)[:, 0]
    return labels, proba, best * 1000 * 1000 / len(X)


def _schema_dict(signature: Any) -> list[dict[str, Any]] | None:
    if signature is None or signature.inputs is None:
        return None
    return [{k: v for k, v in col.items() if k in ("name", "type")} for col in signature.inputs.to_dict()]


def evaluate_gate(challenger: Any, champion: Any | None, X: pd.DataFrame, y: Any, *,
                  policy: GatePolicy | None = None, challenger_signature: Any = None,
                  champion_signature: Any = None, training_hashes: dict[str, str] | None = None) -> GateVerdict:
    """Compare two fitted models (anything with predict, ideally predict_proba) on held-out labelled data.

    `training_hashes` ({"challenger": hash, "champion": hash}) lets the gate refuse data either model trained on.
    """
    import pandas as pd

    policy = policy or GatePolicy()
    y = np.asarray(y)
    reasons: list[str] = []
    numbers: dict[str, Any] = {"rows": int(len(X)), "metric": policy.metric, "margin": policy.margin}
    passed = True

    if len(X) < policy.min_rows:
        return GateVerdict(False, [f"only {len(X)} labelled rows (< {policy.min_rows})"], numbers)
    if training_hashes:
        eval_hash = content_hash(X, pd.Series(y))
        numbers["eval_data_hash"] = eval_hash
        for who, trained_on in training_hashes.items():
            if trained_on and trained_on == eval_hash:
                return GateVerdict(False, [f"evaluation data is the {who}'s training data"], numbers)

    if champion is not None and policy.require_signature_match:
        new_schema, old_schema = _schema_dict(challenger_signature), _schema_dict(champion_signature)
        if new_schema is None and old_schema is None:
            reasons.append("no signatures given: not compared")
        elif new_schema is None:
            passed = False
            reasons.append("challenger has no input signature")
        elif old_schema is not None and new_schema != old_schema:
            passed = False
            reasons.append(f"input signature changed: {old_schema} -> {new_schema}")
        else:
            reasons.append("signature matches")

    labels, proba, latency = _timed_predictions(challenger, X)
    score = _metric(policy.metric, y, labels, proba)
    numbers.update(challenger_score=score, challenger_latency_ms_per_1k=latency)

    # Prediction distribution: one class swallowing everything is a broken model unless the labels do the same.
    classes, counts = np.unique(labels, return_counts=True)
    top = int(np.argmax(counts))
    top_share = float(counts[top] / len(labels))
    label_share = float(np.mean(y == classes[top]))
    numbers.update(top_predicted_class=str(classes[top]), top_predicted_share=top_share,
                   top_class_label_share=label_share)
    if top_share > policy.max_class_share and label_share < top_share - policy.label_share_slack:
        passed = False
        reasons.append(f"challenger predicts class {classes[top]} for {top_share:.1%} of rows but labels hold "
                       f"{label_share:.1%}")

    if policy.max_latency_ms_per_1k is not None and latency > policy.max_latency_ms_per_1k:
        passed = False
        reasons.append(f"latency {latency:.1f} ms per 1,000 rows > {policy.max_latency_ms_per_1k}")

    if champion is None:
        reasons.append(f"no champion: challenger {policy.metric} {score:.4f}")
    else:
        old_labels, old_proba, old_latency = _timed_predictions(champion, X)
        old_score = _metric(policy.metric, y, old_labels, old_proba)
        numbers.update(champion_score=old_score, champion_latency_ms_per_1k=old_latency,
                       improvement=score - old_score)
        if score < old_score + policy.margin:
            passed = False
            reasons.append(f"{policy.metric} {score:.4f} does not beat champion {old_score:.4f} + margin "
                           f"{policy.margin}")
        else:
            reasons.append(f"{policy.metric} {score:.4f} beats champion {old_score:.4f} + margin {policy.margin}")
        if policy.max_latency_ratio is not None and old_latency > 0 and \
                latency > policy.max_latency_ratio * old_latency:
            passed = False
            reasons.append(f"latency {latency:.1f} ms/1k is over {policy.max_latency_ratio}x the champion's "
                           f"{old_latency:.1f}")
    return GateVerdict(passed, reasons, numbers)


def gate_from_registry(model_name: str, X: pd.DataFrame, y: Any, *, policy: GatePolicy | None = None,
                       tracking_uri: str | None = None, challenger_alias: str = "challenger",
                       champion_alias: str = "champion") -> GateVerdict:
    """Load `models:/<name>@challenger` and `@champion` (the sklearn flavour, for probabilities) and gate them."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri)

    def load(alias: str) -> tuple[Any, Any, str | None, str | None]:
        try:
            version = client.get_model_version_by_alias(model_name, alias)
        except MlflowException:
            return None, None, None, None
        uri = f"models:/{model_name}/{version.version}"
        try:
            model = mlflow.sklearn.load_model(uri)
        except Exception:  # noqa: BLE001 - not a sklearn model: fall back to pyfunc (labels only)
            model = mlflow.pyfunc.load_model(uri)
        signature = mlflow.models.get_model_info(uri).signature
        return model, signature, version.tags.get("agentic.data.hash"), str(version.version)

    challenger, new_sig, new_hash, new_version = load(challenger_alias)
    if challenger is None:
        return GateVerdict(False, [f"{model_name} has no '{challenger_alias}' version"], {})
    champion, old_sig, old_hash, old_version = load(champion_alias)
    verdict = evaluate_gate(challenger, champion, X, y, policy=policy, challenger_signature=new_sig,
                            champion_signature=old_sig,
                            training_hashes={"challenger": new_hash or "", "champion": old_hash or ""})
    verdict.numbers.update(challenger_version=new_version, champion_version=old_version)
    return verdict
