"""The alarm scoring of benchmarks/drift_detection.py on toy inputs (the benchmark itself is too slow for CI)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "drift_detection.py"


@pytest.fixture(scope="module")
def score_alarms():
    spec = importlib.util.spec_from_file_location("drift_detection_benchmark", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.score_alarms


def test_detection_delay_repeats_and_false_alarms(score_alarms):
    s = score_alarms([8, 21, 23, 26, 40], [20, 30], max_delay=5)
    assert s.detections == {20: 21, 30: None}  # 40 is more than 5 batches after 30
    assert s.delays == [1] and s.missed == 1
    assert s.repeats == [23] and s.false_alarms == [8, 26, 40]


def test_window_ends_at_the_next_drift(score_alarms):
    s = score_alarms([24, 25], [20, 25], max_delay=10)
    assert s.detections == {20: 24, 25: 25} and s.delays == [4, 0] and not s.repeats and not s.false_alarms


def test_no_drift_stream_every_alarm_is_false(score_alarms):
    s = score_alarms([7, 7, 12], [], max_delay=10)
    assert s.false_alarms == [7, 12] and s.missed == 0 and s.delays == []
