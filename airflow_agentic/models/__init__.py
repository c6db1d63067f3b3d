"""Models: families, HPO, architect, training, registry (aliases), gate and serving targets.

Nothing heavy is imported here (mlflow, optuna, sklearn, pandas load inside the functions that use them); import
the submodules directly, e.g. `from airflow_agentic.models.registry import ModelRegistry`.
"""

from __future__ import annotations

__all__ = ["architect", "dataset", "families", "gate", "hpo", "registry", "serving", "training"]
