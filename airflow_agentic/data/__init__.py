"""Data Steward core: one pipeline (read, inspect, agent, validate with GX, split, write: ``pipeline``), its tools
(pandas ``steward``, PySpark ``spark``), paths and atomic outputs (``io``); annotation and synthesis helpers.

No Airflow here, and nothing heavy at import: names are resolved lazily from their modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StewardInputError": "errors",
    "PipelineStopped": "errors",
    "InvariantViolation": "errors",
    "QuarantineNotApproved": "errors",
    "resolve_path": "io",
    "read_batch": "io",
    "read_output": "io",
    "read_manifest": "io",
    "IncompleteOutput": "io",
    "write_outputs": "io",
    "write_bytes_atomic": "io",
    "write_frame": "io",
    "StewardConfig": "findings",
    "Finding": "findings",
    "Findings": "findings",
    "inspect_batch": "findings",
    "BatchState": "steward",
    "StewardReport": "steward",
    "TOOLS": "steward",
    "rule_policy": "steward",
    "StewardPipeline": "pipeline",
    "StewardOutcome": "pipeline",
    "run_steward": "pipeline",
    "steward_features": "pipeline",
    "steward_profile": "pipeline",
    "steward_config": "pipeline",
    "deduplicate": "steward",
    "coerce_types": "steward",
    "normalise_categories": "steward",
    "replace_sentinels": "steward",
    "quarantine_rows": "steward",
    "quarantine_invalid": "steward",
    "rename_columns": "steward",
    "stop_pipeline": "steward",
    "accept": "steward",
    "suite_from_profile": "validation",
    "validate_frame": "validation",
    "SparkBatchState": "spark",
    "inspect_spark": "spark",
    "auto_label": "labels",
    "label_issues": "labels",
    "merge_labels": "labels",
    "synthesize_minority": "synthesis",
    "Generator": "synthesis",
    "CallableGenerator": "synthesis",
    "generate_text_rows": "synthesis",
    "LLMTextGenerator": "synthesis",
    "SynthesisError": "synthesis",
    "LabelStudioClient": "labelstudio",
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
