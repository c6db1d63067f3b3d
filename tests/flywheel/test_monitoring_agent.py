"""The monitoring agent's rule policy on hand-made evidence: the four situations it must tell apart, the cool-down,
and the loop with its callbacks. No models, no files: milliseconds."""

from __future__ import annotations

import json

import numpy as np

from airflow_agentic.agents import AgentLoop
from airflow_agentic.agents.monitoring import (
    BatchPerformance,
    MonitoringAgent,
    MonitoringDecision,
    MonitoringState,
    build_signals,
    performance_evidence,
)


def records(accuracies, version="v1", start=5, rows=1000, shadow=None):
    out = []
    for k, acc in enumerate(accuracies):
        r = BatchPerformance(start + k, version, rows, int(round(acc * rows)))
        if shadow:
            r.shadow = {shadow[0]: dict(shadow[1])}
        out.append(r)
    return out


def decide(perf, *, drift=None, quality=None, state=None, batch=20, retraining=None, adwin=False):
    calls = {"alert": [], "retrain": [], "rollback": [], "steward": []}
    signals = build_signals(batch=batch, drift=drift, quality=quality, performance=perf,
                            monitor_report={"change_detected": adwin}, retraining=retraining)
    agent = MonitoringAgent(signals, state=state or MonitoringState(),
                            on_alert=calls["alert"].append, on_retrain=calls["retrain"].append,
                            on_rollback=calls["rollback"].append, on_steward=calls["steward"].append)
    run = AgentLoop(agent).run()
    assert run.status == "finished"
    decision = agent.decision()
    json.dumps(decision.to_dict())
    assert MonitoringDecision.from_dict(decision.to_dict()) == decision
    return decision, calls, agent.state


STEADY = [0.88, 0.89, 0.875, 0.885, 0.88, 0.882, 0.879, 0.886]


def test_covariate_shift_without_accuracy_loss_alerts_and_never_retrains():
    perf = performance_evidence(records(STEADY + [0.884]), "v1")
    drift = {"detected": True, "score": 0.75, "drifted_columns": ["x2", "x3"]}
    decision, calls, state = decide(perf, drift=drift)
    assert decision.action == "alert" and decision.retrain is None
    assert calls["alert"] and not calls["retrain"]
    assert "without a performance drop" in decision.reasons[0]
    # The same drift on the next batch does not alert again (alert_every), and still no retraining.
    decision, calls, _ = decide(perf, drift=drift, state=state, batch=21)
    assert decision.action == "ignore" and not calls["alert"] and not calls["retrain"]


def test_corrupted_batch_goes_to_the_data_steward_not_to_retraining():
    perf = performance_evidence(records(STEADY + [0.881]), "v1")  # scored on clean rows: unaffected
    quality = {"rows": 1000, "quarantined": 110, "quarantined_share": 0.11,
               "by_reason": {"null": 40, "sentinel": 40, "duplicate": 30}}
    decision, calls, _ = decide(perf, quality=quality, drift={"detected": True, "score": 0.5})
    assert decision.action == "send_to_data_steward"
    assert decision.actions == ["send_to_data_steward"]
    assert calls["steward"] and not calls["retrain"]


def test_concept_drift_requests_retraining_since_the_change_point():
    perf = performance_evidence(records(STEADY + [0.80, 0.71]), "v1")
    assert perf["change_point"] == 13 and perf["z_drop"] > 3.5
    decision, calls, state = decide(perf, batch=14)
    assert decision.action == "request_retraining"
    assert decision.retrain["kind"] == "drift" and decision.retrain["since_batch"] == 13
    assert calls["retrain"] and state.in_flight
    # Cool-down: the next batch with the same drop asks for nothing new ...
    state.in_flight = False
    decision, calls, _ = decide(perf, batch=15, state=state)
    assert decision.retrain is None and not calls["retrain"] and "cooling down" in decision.reasons[0]
    # ... unless things got clearly worse.
    worse = performance_evidence(records(STEADY + [0.80, 0.71, 0.62]), "v1")
    decision, calls, _ = decide(worse, batch=16, state=state)
    assert decision.action == "request_retraining"


def test_small_noise_is_not_a_drop():
    rng = np.random.default_rng(1)
    for trial in range(30):
        accs = list(rng.binomial(1000, 0.88, size=12) / 1000)
        perf = performance_evidence(records(accs), "v1")
        decision, calls, _ = decide(perf)
        assert not calls["retrain"], (trial, accs, perf)


def test_new_model_worse_than_the_previous_one_is_rolled_back():
    # v2 replaced v1; on the same rows v1 (shadow) is right where v2 is wrong far more often than the reverse.
    mine = records([0.80, 0.79, 0.81], version="v2", start=30,
                   shadow=("v1", {"correct": 870, "only_self": 20, "only_other": 90}))
    perf = performance_evidence(mine, "v2", previous="v1", expected={"accuracy": 0.80, "rows": 1000})
    assert perf["previous"]["z_worse"] > 2.5
    decision, calls, _ = decide(perf, batch=33)
    assert decision.action == "request_rollback" and decision.rollback_to == "v1"
    assert calls["rollback"] == [{"to_version": "v1", "reason": decision.reasons[0], "batch": 33}]
    assert not calls["retrain"]


def test_refit_once_a_full_window_of_newer_data_exists():
    perf = performance_evidence(records([0.9, 0.91, 0.9, 0.9], version="v2", start=21), "v2",
                                expected={"accuracy": 0.9, "rows": 1000})
    training = {"kind": "drift", "change_point": 20, "trained_until": 20}
    decision, calls, state = decide(perf, batch=24, retraining=training)
    assert decision.retrain == {**decision.retrain, "kind": "refit", "since_batch": 20}
    state.in_flight = False
    decision, calls, _ = decide(perf, batch=25, retraining=training, state=state)
    assert decision.retrain is None  # asked once per champion
