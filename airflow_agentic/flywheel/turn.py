"""One turn of the flywheel, piece by piece: steward a batch, predict, score delayed labels, check drift, let the
monitoring agent decide, retrain behind a gate. The backtest calls these in-process; the Airflow operators call
the same functions from their tasks, so the two cannot drift apart.

Nothing heavy at import: pandas, sklearn and the models/data packages load inside the functions that use them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from airflow_agentic.agents.monitoring import (
    BatchPerformance,
    MonitoringAgent,
    MonitoringDecision,
    MonitoringPolicy,
    MonitoringState,
    build_signals,
    performance_evidence,
)

if TYPE_CHECKING:
    import pandas as pd

    from airflow_agentic.agents.planner import Planner
    from airflow_agentic.drift.profile import ReferenceProfile

log = logging.getLogger(__name__)

# Fixed histogram gradient boosting parameters (as in the reference baselines): a retrain takes well under a second.
DEFAULT_FAMILY = "hist_gradient_boosting"
DEFAULT_PARAMS: dict[str, Any] = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20}


# ---------------------------------------------------------------------------------------------- models
def fit_model(X: pd.DataFrame, y: Any, *, family: str = DEFAULT_FAMILY, params: dict[str, Any] | None = None,
              schema: Any = None, seed: int = 0) -> Any:
    """Fit one model of ``family`` with fixed ``params`` through the models package (sklearn directly without it)."""
    params = {**DEFAULT_PARAMS, **(params or {})} if family == DEFAULT_FAMILY else dict(params or {})
    try:
        from airflow_agentic.models.families import get_family
    except ImportError:  # the models package is optional for this function
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=seed, **params).fit(X, y)
    return get_family(family, random_state=seed).fit(X, y, params, schema)


def single_threaded() -> Any:
    """One native thread for everything inside: small fits and 1,000-row predicts are many times slower when
    OpenMP threads spin on a busy machine. The libraries are loaded first (threadpoolctl only limits loaded ones)."""
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def predict(model: Any, X: pd.DataFrame) -> np.ndarray:
    if len(X) == 0:
        return np.asarray([], dtype=object)
    return np.asarray(model.predict(X))


@dataclass
class ModelEntry:
    """A model the flywheel can serve: its version, what it was trained on and what it is expected to score."""

    version: str
    model: Any
    trained_on: list[int]
    kind: str = "initial"  # initial | drift | refit | window | reuse | rollback
    change_point: int | None = None
    fast: bool = False  # trained on little post-change data: a refit is due once a full window exists
    expected: dict[str, Any] = field(default_factory=dict)  # {"accuracy", "rows"} on held-out data
    replaced: str | None = None  # version this one took over from (the rollback target)
    profile: ReferenceProfile | None = None

    def describe(self) -> dict[str, Any]:
        return {"version": self.version, "trained_on": [min(self.trained_on), max(self.trained_on)]
                if self.trained_on else [], "kind": self.kind, "change_point": self.change_point,
                "fast": self.fast, "expected": self.expected, "replaced": self.replaced}


def drift_profile(X: pd.DataFrame, model: Any) -> ReferenceProfile:
    from airflow_agentic.drift.profile import ReferenceProfile

    return ReferenceProfile.from_frame(X, predictions=predict(model, X), sample_rows=0)


# ---------------------------------------------------------------------------------------------- steward
@dataclass
class StewardOutcome:
    clean: np.ndarray  # bool per input row
    by_reason: dict[str, int]
    schema_broken: bool = False
    findings: dict[str, Any] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return int((~self.clean).sum())

    def quality(self) -> dict[str, Any]:
        rows = len(self.clean)
        return {"rows": rows, "quarantined": self.quarantined,
                "quarantined_share": self.quarantined / rows if rows else 0.0, "by_reason": self.by_reason,
                "schema_broken": self.schema_broken}


def steward_profile(features: pd.DataFrame, id_column: str | None) -> ReferenceProfile:
    from airflow_agentic.drift.profile import ReferenceProfile

    exclude = [id_column] if id_column and id_column in features.columns else []
    return ReferenceProfile.from_frame(features, exclude=exclude, sample_rows=0)


def steward_config(id_column: str | None) -> Any:
    from airflow_agentic.data.findings import StewardConfig

    # Corruption here means nulls, sentinels and duplicates. Out-of-range is only flagged far outside the reference
    # range, because a covariate shift moves clean rows there and a clean row must never be quarantined.
    return StewardConfig(id_column=id_column, range_tolerance=3.0, drift=False)


def steward_rows(features: pd.DataFrame, profile: ReferenceProfile, *, id_column: str | None = None,
                 config: Any = None, planner: Planner | None = None) -> StewardOutcome:
    """The Data Steward agent on one batch (features only: labels are not known yet), through the agent loop with
    its rule policy (or ``planner``). Returns which rows are clean; nothing is deleted. Without the data package
    every row is clean."""
    try:
        from airflow_agentic.agents.steward import steward_with_agent
        from airflow_agentic.data.findings import inspect_batch
        from airflow_agentic.data.steward import BatchState
    except ImportError:
        return StewardOutcome(np.ones(len(features), dtype=bool), {})
    config = config or steward_config(id_column)
    state = BatchState.from_frame(features, profile, config)
    state.findings = inspect_batch(state.frame, profile, config, with_drift=False)
    agent, run = steward_with_agent(state, planner=planner)
    if run.status == "failed":
        return StewardOutcome(np.zeros(len(features), dtype=bool), {"schema_broken": len(features)},
                              schema_broken=True, findings={"stop_reason": agent.stop_reason
                                                            or run.result.get("stop_reason")})
    counts = state.counts()
    return StewardOutcome(np.asarray(state.clean, dtype=bool), counts["by_reason"],
                          findings=state.findings.summary())


# ---------------------------------------------------------------------------------------------- scoring
def score_batch(batch: int, version: str, labels: np.ndarray, predictions: dict[str, np.ndarray]) -> BatchPerformance:
    """Score the serving model's predictions and every shadow model's on the same clean labelled rows."""
    labels = np.asarray(labels)
    right = {v: np.asarray(p) == labels for v, p in predictions.items()}
    own = right[version]
    shadow = {}
    for v, r in right.items():
        if v == version:
            continue
        shadow[v] = {"correct": int(r.sum()), "only_self": int((own & ~r).sum()), "only_other": int((r & ~own).sum())}
    return BatchPerformance(batch=batch, version=version, rows=int(len(labels)), correct=int(own.sum()), shadow=shadow)


def drift_check(profile: ReferenceProfile | None, features: pd.DataFrame, predictions: np.ndarray) -> dict[str, Any]:
    """The drift report of a (clean) batch against the champion's training profile, as a dict."""
    if profile is None or len(features) == 0:
        return {"detected": False, "score": 0.0}
    from airflow_agentic.drift.detectors import detect_drift

    try:
        report = detect_drift(profile, features, prediction=predictions)
    except Exception as exc:  # noqa: BLE001 - drift is advisory: a failing test must not stop the flywheel
        log.warning("drift check failed: %s", exc)
        return {"detected": False, "score": 0.0, "error": str(exc)}
    return report.to_dict()


# ---------------------------------------------------------------------------------------------- monitoring
@dataclass
class MonitoringTurn:
    decision: MonitoringDecision
    llm_calls: int = 0
    fallback: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


def monitoring_turn(signals: dict[str, Any], *, state: MonitoringState, policy: MonitoringPolicy | None = None,
                    planner: Planner | None = None, callbacks: dict[str, Callable[[dict], Any]] | None = None,
                    llm_when: str = "interesting") -> MonitoringTurn:
    """Run the monitoring agent for one batch through the agent loop. With an LLM planner, the model is asked only
    when the evidence is not plainly "nothing to do" (``llm_when="interesting"``) or always (``"always"``)."""
    from airflow_agentic.agents.loop import AgentLoop

    callbacks = callbacks or {}
    agent = MonitoringAgent(signals, policy=policy, state=state, on_alert=callbacks.get("alert"),
                            on_retrain=callbacks.get("retrain"), on_rollback=callbacks.get("rollback"),
                            on_steward=callbacks.get("steward"))
    use = planner
    if planner is not None and llm_when == "interesting":
        first = agent.assess()[0][0]
        perf = signals.get("performance", {})
        if first == "ignore" and not signals.get("drift", {}).get("detected") and (perf.get("z_drop") or 0) < 2.0:
            use = None
    # The planner's own counter also sees the calls of an answer that was thrown away (garbage, then fallback).
    calls_before = getattr(getattr(use, "usage", None), "calls", None)
    run = AgentLoop(agent, planner=use, budget={"max_steps": 6}).run()
    llm_calls = int(run.usage.get("llm_calls", 0))
    if calls_before is not None:
        llm_calls = max(llm_calls, use.usage.calls - calls_before)
    if run.status != "finished":
        log.warning("monitoring loop ended with %s: %s", run.status, run.result)
    kind = "llm" if use is not None and run.fallback_reason is None else "rule"
    decision = agent.decision(planner=kind)
    return MonitoringTurn(decision=decision, llm_calls=llm_calls,
                          fallback=run.fallback_reason, steps=[s.compact() for s in run.steps])


# ---------------------------------------------------------------------------------------------- retraining
@dataclass
class RetrainOutcome:
    promoted: ModelEntry | None
    verdict: dict[str, Any]


def _mcnemar(champion_right: np.ndarray, challenger_right: np.ndarray) -> float:
    gain = int((challenger_right & ~champion_right).sum())
    loss = int((champion_right & ~challenger_right).sum())
    return (gain - loss) / math.sqrt(gain + loss) if gain + loss else 0.0


def gate(challenger: Any, champion: Any, X: pd.DataFrame, y: np.ndarray, *, min_gain: float, min_z: float,
         challenger_right: np.ndarray, champion_right: np.ndarray) -> dict[str, Any]:
    """The deployment gate on held-out labelled rows: the models package's gate (accuracy, class-collapse checks)
    when it is there, and a paired McNemar test so that a lucky holdout does not promote a model."""
    z = _mcnemar(champion_right, challenger_right)
    gain = float(challenger_right.mean() - champion_right.mean())
    verdict: dict[str, Any] = {"rows": int(len(y)), "challenger_accuracy": round(float(challenger_right.mean()), 4),
                               "champion_accuracy": round(float(champion_right.mean()), 4),
                               "gain": round(gain, 4), "mcnemar_z": round(z, 3)}
    passed = gain >= min_gain and z >= min_z
    reasons = [f"gain {gain:.4f} (min {min_gain}), McNemar z {z:.2f} (min {min_z})"]
    try:
        from airflow_agentic.models.gate import GatePolicy, evaluate_gate
    except ImportError:
        evaluate_gate = None  # type: ignore[assignment]
    if evaluate_gate is not None and passed:
        models_verdict = evaluate_gate(challenger, champion, X, y, policy=GatePolicy(
            metric="accuracy", margin=min_gain, max_latency_ratio=None, require_signature_match=False, min_rows=50))
        passed = passed and models_verdict.passed
        reasons.extend(models_verdict.reasons)
    verdict.update(passed=bool(passed), reasons=reasons)
    return verdict


def retrain_turn(request: dict[str, Any], *, data: dict[int, tuple[pd.DataFrame, np.ndarray]], labelled_upto: int,
                 champion: ModelEntry, pool: list[ModelEntry], new_version: str, window: int = 5,
                 min_gain: float = 0.005, min_z: float = 2.0, refit_min_z: float = 1.0, seed: int = 0,
                 schema: Any = None, fit: Callable[..., Any] = fit_model) -> RetrainOutcome:
    """Continuous learning for one request: candidates trained on data since the change point, on the last window,
    and earlier champions (a recurring concept); the best on held-out recent rows must beat the champion at the
    gate. Fresh winners are then refit on all their rows, holdout included."""
    import pandas as pd

    j = labelled_upto
    kind = request.get("kind", "drift")
    since = request.get("since_batch")
    since = j if since is None else int(min(max(int(since), j - 2 * window + 1), j))
    available = [b for b in range(since, j + 1) if b in data and len(data[b][1])]
    if j not in data or not len(data[j][1]):
        return RetrainOutcome(None, {"passed": False, "reasons": [f"no labelled clean rows in batch {j}"]})
    recipes: dict[str, list[int]] = {}
    if kind == "refit":
        recipes["since_change"] = available[-window:]
    else:
        recipes["since_change"] = available
        last_window = [b for b in range(j - window + 1, j + 1) if b in data and len(data[b][1])]
        if last_window != recipes["since_change"]:
            recipes["window"] = last_window

    Xj, yj = data[j]
    # Held-out rows: the newest batch when the recipes have older post-change batches to train on; otherwise the
    # single post-change batch is cross-fitted (k folds), so that every one of its rows is scored out of fold.
    if len(recipes["since_change"]) >= 2:
        folds = np.zeros(len(yj), dtype=int)
        k = 1
    else:
        k = 3
        folds = np.random.default_rng(seed + j).permutation(len(yj)) % k

    def rows(batches: list[int], exclude_fold: int | None) -> tuple[pd.DataFrame, np.ndarray]:
        xs, ys = [], []
        for b in batches:
            X, y = data[b]
            if b == j and exclude_fold is not None:
                keep = folds != exclude_fold if k > 1 else np.zeros(len(y), dtype=bool)
                X, y = X[keep], y[keep]
            xs.append(X)
            ys.append(y)
        return pd.concat(xs, ignore_index=True), np.concatenate(ys)

    champion_right = predict(champion.model, Xj) == yj
    candidates: list[tuple[str, Any, np.ndarray]] = []
    for name, batches in recipes.items():
        right = np.zeros(len(yj), dtype=bool)
        model = None
        for f in range(k):
            X, y = rows(batches, exclude_fold=f)
            if len(y) < 50 or len(np.unique(y)) < 2:
                model = None
                break
            model = fit(X, y, schema=schema, seed=seed)
            held = folds == f
            right[held] = predict(model, Xj[held]) == yj[held]
        if model is not None:
            candidates.append((name, model, right))
    if kind != "refit":
        for entry in pool:
            if entry.version != champion.version:
                candidates.append((f"reuse:{entry.version}", entry.model, predict(entry.model, Xj) == yj))
    if not candidates:
        return RetrainOutcome(None, {"passed": False, "reasons": ["no usable training data"]})
    # Best out of sample; on a tie an earlier model wins (nothing to train, and it saw more data).
    name, model, right = max(candidates, key=lambda c: (c[2].mean(), c[0].startswith("reuse")))
    # The last fold's model on its own rows feeds the models package's checks (class collapse, metric).
    check = folds == (k - 1) if not name.startswith("reuse:") else np.ones(len(yj), dtype=bool)
    verdict = gate(model, champion.model, Xj[check], yj[check], min_gain=min_gain if kind != "refit" else 0.003,
                   min_z=min_z if kind != "refit" else refit_min_z, challenger_right=right,
                   champion_right=champion_right)
    verdict.update(kind=kind, since_batch=since, candidate=name,
                   candidates={n: round(float(r.mean()), 4) for n, _, r in candidates})
    if not verdict["passed"]:
        return RetrainOutcome(None, verdict)
    expected = {"accuracy": float(right.mean()), "rows": int(len(yj))}
    if name.startswith("reuse:"):
        version = name.split(":", 1)[1]
        entry = next(e for e in pool if e.version == version)
        reused = ModelEntry(version=entry.version, model=entry.model, trained_on=entry.trained_on, kind="reuse",
                            change_point=since, fast=False, expected=expected, replaced=champion.version,
                            profile=entry.profile)
        return RetrainOutcome(reused, verdict)
    batches = recipes[name]
    X, y = rows(batches, exclude_fold=None)
    final = fit(X, y, schema=schema, seed=seed)
    entry = ModelEntry(version=new_version, model=final, trained_on=list(batches),
                       kind="refit" if kind == "refit" else ("drift" if name == "since_change" else "window"),
                       change_point=since, fast=kind != "refit" and name == "since_change" and len(batches) < window,
                       expected=expected, replaced=champion.version, profile=drift_profile(X, final))
    return RetrainOutcome(entry, verdict)


def evidence_for(records: list[BatchPerformance], champion: ModelEntry, policy: MonitoringPolicy) -> dict[str, Any]:
    return performance_evidence(records, champion.version, previous=champion.replaced, expected=champion.expected,
                                policy=policy)


__all__ = [
    "DEFAULT_FAMILY", "DEFAULT_PARAMS", "ModelEntry", "MonitoringTurn", "RetrainOutcome", "StewardOutcome",
    "build_signals", "drift_check", "drift_profile", "evidence_for", "fit_model", "gate", "monitoring_turn",
    "predict", "retrain_turn", "score_batch", "steward_config", "steward_profile", "steward_rows",
]
