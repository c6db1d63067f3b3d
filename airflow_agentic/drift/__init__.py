"""Drift maths: profiles, statistics, detectors, backends. No Airflow; heavy libraries load on use."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ColumnProfile": "profile",
    "ReferenceProfile": "profile",
    "PREDICTION_COLUMN": "profile",
    "ProfileCorrupted": "profile",
    "ColumnDrift": "report",
    "DriftReport": "report",
    "detect_drift": "detectors",
    "DriftInputError": "detectors",
    "PerformanceMonitor": "performance",
    "detect_drift_spark": "spark",
    "mmd_test": "multivariate",
    "classifier_test": "multivariate",
    "ks_2samp": "stats",
    "wasserstein": "stats",
    "chi2_counts": "stats",
    "adjust_pvalues": "stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
