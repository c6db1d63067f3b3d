"""Optional extras: the one place that turns a missing optional dependency into an error that says what to install.

``require(module, extra, feature)`` imports ``module`` or raises :class:`MissingExtraError` with the message
``<feature> needs the optional extra '<extra>': pip install 'airflow-provider-agentic[<extra>]'``.

The error is always an ``ImportError``. Inside Airflow (any task, trigger or DAG-processor process, where Airflow's
exceptions module is loaded) it is also an ``AirflowOptionalProviderFeatureException``, the exception Airflow's own
providers raise for a missing optional feature. This module imports no Airflow itself, so ``agents/``, ``drift/`` and
``data/`` can use it and stay importable without Airflow.

Only optional extras go through here; internal imports fail loudly as they are.
"""

from __future__ import annotations

import functools
import importlib
import sys
from types import ModuleType

DISTRIBUTION = "airflow-provider-agentic"

# The extras of pyproject.toml a module belongs to (documentation for callers and tests; `require` takes the extra).
EXTRAS = {
    "amazon": "s3fs / apache-airflow-providers-amazon (s3:// paths through an Airflow aws connection)",
    "cncf-kubernetes": "apache-airflow-providers-cncf-kubernetes (model serving on Kubernetes)",
    "spark": "pyspark (the Spark engine of the Data Steward and drift statistics)",
    "labelstudio": "label-studio-sdk (human labels in Label Studio)",
    "alibi": "alibi-detect (the alibi drift backend)",
    "evidently": "evidently (the evidently drift backend)",
}


class MissingExtraError(ImportError):
    """An optional extra of the package is not installed."""

    def __init__(self, message: str, *, extra: str, module: str) -> None:
        super().__init__(message, name=module)
        self.extra = extra


def install_hint(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def _airflow_feature_exception() -> type[Exception] | None:
    # Looked up, never imported: present whenever Airflow is running this code.
    for name in ("airflow.sdk.exceptions", "airflow.exceptions"):
        cls = getattr(sys.modules.get(name), "AirflowOptionalProviderFeatureException", None)
        if isinstance(cls, type):
            return cls
    return None


@functools.lru_cache(maxsize=None)
def _with_airflow_base(base: type[Exception]) -> type[MissingExtraError]:
    return type("MissingExtraError", (MissingExtraError, base), {"__module__": __name__})


def missing_extra(extra: str, feature: str, module: str) -> MissingExtraError:
    """The error for ``feature`` needing ``extra`` (whose ``module`` is missing); raise it ``from`` the cause."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {sorted(EXTRAS)}")
    message = f"{feature} needs the optional extra '{extra}': {install_hint(extra)}"
    base = _airflow_feature_exception()
    cls = _with_airflow_base(base) if base is not None else MissingExtraError
    return cls(message, extra=extra, module=module)


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``module``, imported; a :class:`MissingExtraError` naming ``extra`` when it (or a dependency) is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(extra, feature, module) from exc
