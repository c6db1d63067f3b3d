"""The architect: decide which model families to search, with how many trials, from data stats and past trials.

Deterministic rules with a reason per decision. An LLM planner can later pick among the same `plan_options()` and
return the same `ExperimentPlan`; `ExperimentPlan.validate()` keeps either inside the allowed families and budget.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_agentic.models.dataset import DataStats
from airflow_agentic.models.families import available_families, get_family

DEFAULT_FAMILIES = ("logistic_regression", "hist_gradient_boosting", "random_forest", "mlp")


@dataclass(frozen=True)
class FamilyHistory:
    """Best past result of one family in the experiment."""

    family: str
    best_score: float
    n_trials: int
    best_params: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PlanItem:
    family: str
    n_trials: int
    reason: str
    timeout_seconds: float | None = None
    warm_start_params: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ExperimentPlan:
    items: list[PlanItem]
    metric: str = "roc_auc"
    total_trials: int = 0
    notes: list[str] = field(default_factory=list)
    planner: str = "rules"

    def families(self) -> list[str]:
        return [item.family for item in self.items]

    def validate(self, allowed: list[str] | None = None, max_total_trials: int | None = None) -> None:
        allowed = allowed or available_families()
        for item in self.items:
            if item.family not in allowed:
                raise ValueError(f"plan names unknown family {item.family!r}; allowed: {allowed}")
            if item.n_trials < 1:
                raise ValueError(f"plan gives {item.family} {item.n_trials} trials")
        if max_total_trials is not None and sum(i.n_trials for i in self.items) > max_total_trials:
            raise ValueError(f"plan exceeds the budget of {max_total_trials} trials")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentPlan:
        data = dict(data)
        data["items"] = [PlanItem(**item) for item in data.get("items", [])]
        return cls(**data)


def plan_options(families: tuple[str, ...] | list[str] | None = None) -> list[dict[str, Any]]:
    """What a planner may choose from: family names with their cost hints."""
    return [get_family(name).describe() for name in (families or available_families())]


def history_from_mlflow(experiment_name: str, tracking_uri: str | None = None,
                        max_runs: int = 5000) -> dict[str, FamilyHistory]:
    """Best completed trial score per family in an experiment, from the trial runs that `run_trials` logs."""
    import json

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return {}
    runs = client.search_runs([experiment.experiment_id],
                              filter_string="tags.`agentic.trial_state` = 'COMPLETE'",
                              order_by=["metrics.score DESC"], max_results=max_runs)
    history: dict[str, FamilyHistory] = {}
    counts: dict[str, int] = {}
    for run in runs:
        family = run.data.tags.get("agentic.family")
        score = run.data.metrics.get("score")
        if family is None or score is None:
            continue
        counts[family] = counts.get(family, 0) + 1
        if family not in history:
            params = run.data.tags.get("agentic.params")
            history[family] = FamilyHistory(family, float(score), 0, json.loads(params) if params else None)
    return {f: FamilyHistory(h.family, h.best_score, counts[f], h.best_params) for f, h in history.items()}


def plan_experiments(stats: DataStats, history: dict[str, FamilyHistory] | None = None, *,
                     budget_trials: int = 40, families: tuple[str, ...] | list[str] = DEFAULT_FAMILIES,
                     min_trials: int = 4, lagging_margin: float = 0.02, settled_after: int = 10,
                     champion_params: dict[str, dict[str, Any]] | None = None) -> ExperimentPlan:
    """Weight each family by rules on the data and the history, then split `budget_trials` by weight.

    Rules, in order: cost vs size (MLPs and forests get expensive on large data, MLPs overfit small data), categorical
    share (native categorical handling of HGB), width (regularised linear models for wide, short data), history
    (families that lag the best by more than `lagging_margin` after `settled_after` trials are dropped, the best gets
    more). `champion_params` ({family: params}) become warm starts.
    """
    history = history or {}
    weights: dict[str, float] = {f: 1.0 for f in families}
    reasons: dict[str, list[str]] = {f: [] for f in families}
    notes: list[str] = []

    def adjust(family: str, factor: float, why: str) -> None:
        if family in weights:
            weights[family] *= factor
            reasons[family].append(why)

    if stats.rows < 1000:
        adjust("mlp", 0.0, f"only {stats.rows} rows: an MLP would overfit")
        adjust("logistic_regression", 1.5, "small data favours a simple model")
    if stats.rows > 200_000:
        adjust("mlp", 0.3, f"{stats.rows} rows: MLP fits are expensive")
        adjust("random_forest", 0.3, f"{stats.rows} rows: forest fits are expensive")
        adjust("hist_gradient_boosting", 1.5, "histogram boosting scales to many rows")
    if stats.categorical_share >= 0.3:
        adjust("hist_gradient_boosting", 1.5, f"{stats.categorical_share:.0%} categorical: native categorical splits")
        adjust("mlp", 0.5, "many one-hot columns for an MLP")
    if stats.n_features > 100 and stats.rows < 10 * stats.n_features:
        adjust("logistic_regression", 1.5, f"{stats.n_features} features for {stats.rows} rows: regularised linear")
    if stats.missing_share > 0.05:
        adjust("hist_gradient_boosting", 1.2, f"{stats.missing_share:.0%} missing: HGB handles NaN natively")
    metric = "roc_auc"
    if stats.n_classes == 2 and stats.minority_share < 0.1:
        metric = "average_precision"
        notes.append(f"minority class at {stats.minority_share:.1%}: scoring by average precision")

    scored = {f: h for f, h in history.items() if f in weights}
    if scored:
        leader = max(scored.values(), key=lambda h: h.best_score)
        for family, past in scored.items():
            if family == leader.family:
                adjust(family, 1.5, f"best so far ({past.best_score:.4f} after {past.n_trials} trials)")
            elif past.n_trials >= settled_after and past.best_score < leader.best_score - lagging_margin:
                adjust(family, 0.0, f"lags the best by {leader.best_score - past.best_score:.4f} after "
                                    f"{past.n_trials} trials")
        for family in weights:
            if family not in scored:
                reasons[family].append("no past trials: explore")

    active = {f: w for f, w in weights.items() if w > 0}
    if not active:
        raise ValueError("every family was ruled out; widen `families`")
    cost = {f: get_family(f).cost_hint for f in active}
    # Families that cost more per trial get somewhat fewer trials (square root keeps them in the race).
    shares = {f: w / math.sqrt(cost[f]) for f, w in active.items()}
    total_share = sum(shares.values())
    budget = max(budget_trials, min_trials * len(active))
    items = []
    for family in sorted(active, key=lambda f: -shares[f]):
        n_trials = max(min_trials, round(budget * shares[family] / total_share))
        warm = [champion_params[family]] if champion_params and family in champion_params else []
        if family in history and history[family].best_params and not warm:
            warm = [history[family].best_params]
        reason = "; ".join(reasons[family]) or "default share"
        items.append(PlanItem(family, n_trials, reason, warm_start_params=warm))
    dropped = [f for f in weights if f not in active]
    if dropped:
        notes.append("dropped: " + ", ".join(f"{f} ({'; '.join(reasons[f])})" for f in dropped))
    plan = ExperimentPlan(items, metric=metric, total_trials=sum(i.n_trials for i in items), notes=notes)
    plan.validate(list(families))
    return plan
