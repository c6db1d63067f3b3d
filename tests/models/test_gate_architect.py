from __future__ import annotations

import numpy as np
import pytest
from model_data import make_frame

from airflow_agentic.models.architect import (ExperimentPlan, FamilyHistory, PlanItem, plan_experiments,
                                              plan_options)
from airflow_agentic.models.dataset import DataStats, Dataset
from airflow_agentic.models.families import get_family
from airflow_agentic.models.gate import GatePolicy, GateVerdict, evaluate_gate


@pytest.fixture(scope="module")
def models():
    train = Dataset(*make_frame(600, seed=0))
    family = get_family("logistic_regression")
    good = family.fit(train.X, train.y, {"C": 1.0, "class_weight": "none"}, train.schema)
    weak = family.fit(train.X[["x2", "code"]], train.y, {"C": 1.0, "class_weight": "none"})
    holdout = Dataset(*make_frame(500, seed=5))
    return good, weak, holdout


class Constant:
    def predict(self, X):
        return np.ones(len(X), dtype=int)

    def predict_proba(self, X):
        return np.tile([0.2, 0.8], (len(X), 1))


def test_gate_passes_a_better_challenger_and_fails_a_worse_one(models):
    good, weak, holdout = models

    class Columns:  # the weak model needs its own columns
        def __init__(self, model):
            self.model = model

        def predict(self, X):
            return self.model.predict(X[["x2", "code"]])

        def predict_proba(self, X):
            return self.model.predict_proba(X[["x2", "code"]])

    policy = GatePolicy(margin=0.01, max_latency_ratio=None)
    passed = evaluate_gate(good, Columns(weak), holdout.X, holdout.y, policy=policy)
    assert passed.passed, passed.reasons
    assert passed.numbers["improvement"] > 0.01
    assert passed.numbers["challenger_latency_ms_per_1k"] > 0
    failed = evaluate_gate(Columns(weak), good, holdout.X, holdout.y, policy=policy)
    assert not failed.passed and any("does not beat" in r for r in failed.reasons)
    assert GateVerdict.from_dict(failed.to_dict()) == failed


def test_gate_catches_collapsed_predictions_signature_change_and_latency(models):
    from mlflow.models import infer_signature

    good, _, holdout = models
    collapsed = evaluate_gate(Constant(), None, holdout.X, holdout.y)
    assert not collapsed.passed and any("predicts class 1" in r for r in collapsed.reasons)
    # ... unless the labels say so
    ones = np.ones(len(holdout.y), dtype=int)
    ones[:10] = 0
    assert evaluate_gate(Constant(), None, holdout.X, ones, policy=GatePolicy(metric="accuracy")).passed

    old_sig = infer_signature(holdout.X, good.predict(holdout.X))
    new_sig = infer_signature(holdout.X.drop(columns=["code"]), good.predict(holdout.X))
    changed = evaluate_gate(good, good, holdout.X, holdout.y, challenger_signature=new_sig,
                            champion_signature=old_sig)
    assert not changed.passed and any("signature changed" in r for r in changed.reasons)
    slow = evaluate_gate(good, None, holdout.X, holdout.y, policy=GatePolicy(max_latency_ms_per_1k=1e-6))
    assert not slow.passed and any("latency" in r for r in slow.reasons)
    assert not evaluate_gate(good, None, holdout.X.head(10), holdout.y.head(10)).passed  # too few rows


def stats(**overrides):
    base = dict(rows=5000, n_features=12, categorical_share=0.1, n_classes=2, minority_share=0.4,
                missing_share=0.0)
    return DataStats(**{**base, **overrides})


def test_architect_rules_are_deterministic_and_explained():
    plan = plan_experiments(stats(), budget_trials=40)
    assert plan == plan_experiments(stats(), budget_trials=40)
    assert set(plan.families()) == {"logistic_regression", "hist_gradient_boosting", "random_forest", "mlp"}
    assert all(item.reason for item in plan.items)

    small = plan_experiments(stats(rows=500), budget_trials=20)
    assert "mlp" not in small.families() and "only 500 rows" in small.notes[0]
    categorical = plan_experiments(stats(categorical_share=0.6), budget_trials=40)
    assert categorical.items[0].family in ("hist_gradient_boosting", "logistic_regression")
    hgb = next(i for i in categorical.items if i.family == "hist_gradient_boosting")
    assert "categorical" in hgb.reason
    assert plan_experiments(stats(minority_share=0.05)).metric == "average_precision"


def test_architect_uses_history_and_warm_starts():
    history = {
        "hist_gradient_boosting": FamilyHistory("hist_gradient_boosting", 0.91, 30, {"learning_rate": 0.05}),
        "mlp": FamilyHistory("mlp", 0.85, 20),
        "random_forest": FamilyHistory("random_forest", 0.90, 4),
    }
    plan = plan_experiments(stats(), history, budget_trials=30)
    assert "mlp" not in plan.families() and any("lags the best" in n for n in plan.notes)
    by_family = {item.family: item for item in plan.items}
    hgb = by_family["hist_gradient_boosting"]
    assert "best so far" in hgb.reason and hgb.n_trials > by_family["random_forest"].n_trials
    assert hgb.warm_start_params == [{"learning_rate": 0.05}]
    assert "random_forest" in plan.families()  # too few trials to judge
    assert ExperimentPlan.from_dict(plan.to_dict()) == plan
    with pytest.raises(ValueError, match="unknown family"):
        ExperimentPlan([PlanItem("xgboost", 3, "llm said so")]).validate()
    assert {o["name"] for o in plan_options()} >= {"mlp", "random_forest"}
