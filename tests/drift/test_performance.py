from __future__ import annotations

import json

import numpy as np

from airflow_agentic.drift import PerformanceMonitor


def test_delayed_labels_and_adwin_survives_serialisation():
    rng = np.random.default_rng(0)
    mon = PerformanceMonitor(detectors=("adwin", "page_hinkley"))
    truth = {}
    for b in range(6):
        ids = [f"{b}-{i}" for i in range(500)]
        labels = rng.integers(0, 2, 500)
        accuracy = 0.9 if b < 3 else 0.55  # the model degrades from batch 3 on
        preds = np.where(rng.random(500) < accuracy, labels, 1 - labels)
        mon.add_predictions(f"batch-{b}", ids, preds)
        truth.update(zip(ids, labels))
        # labels arrive one batch later, across a task boundary (JSON state)
        mon = PerformanceMonitor.from_dict(json.loads(json.dumps(mon.to_dict())))
        if b >= 1:
            prev = [f"{b - 1}-{i}" for i in range(500)]
            assert mon.add_labels(prev, [truth[i] for i in prev]) == 500
        report = mon.report()
        if b == 2:
            assert not report["change_detected"]
            assert 0.85 < report["accuracy"] < 0.95 and report["pending"] == 500
    report = mon.report()
    assert report["change_detected"] and report["detector"] == "adwin+page_hinkley"
    assert report["accuracy"] < 0.65 and report["baseline_accuracy"] > 0.85
    assert report["per_batch"]["batch-5"] is None  # no labels yet
    mon.acknowledge()
    assert not mon.report()["change_detected"]
    assert mon.add_labels(["unknown"], [1]) == 0 and mon.report()["unmatched_labels"] == 1
