"""Model families as small plugins: a search space, a preprocessing pipeline and an estimator behind one interface.

A family builds a scikit-learn `Pipeline(prep -> model)`, so the logged MLflow model carries its own preprocessing and
needs nothing from this package to load (no custom functions are pickled).
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from airflow_agentic.models.dataset import FeatureSchema, infer_schema

if TYPE_CHECKING:
    import optuna
    import pandas as pd

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "airflow_agentic.model_families"
MISSING_TOKEN = "__missing__"


class ModelFamily:
    """Base class. Subclasses set `name`, implement `search_space`, `default_params` and `make_estimator`."""

    name: ClassVar[str] = ""
    # Relative fit cost per 1,000 rows and 10 features; 1.0 is a default histogram gradient boosting fit.
    cost_hint: ClassVar[float] = 1.0
    # True when the estimator reports scores per stage (boosting iterations, epochs) for pruning.
    supports_stages: ClassVar[bool] = False

    def __init__(self, random_state: int = 0, n_jobs: int = 1):
        self.random_state = random_state
        # Threads per fit (OpenMP/BLAS and n_jobs); 1 suits one HPO worker per core, None leaves the libraries' default.
        self.n_jobs = n_jobs

    def threads(self) -> Any:
        """Context manager limiting native thread pools during fit: oversubscribed OpenMP threads spin, and
        histogram boosting gets many times slower on a busy machine."""
        import contextlib

        if self.n_jobs is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.n_jobs)

    # -- to implement -------------------------------------------------------------------------------------------
    def default_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        raise NotImplementedError

    def make_estimator(self, params: dict[str, Any], schema: FeatureSchema) -> Any:
        raise NotImplementedError

    def preprocessor(self, schema: FeatureSchema) -> Any:
        return one_hot_preprocessor(schema)

    # -- shared behaviour ---------------------------------------------------------------------------------------
    def build(self, params: dict[str, Any] | None, schema: FeatureSchema) -> Any:
        from sklearn.pipeline import Pipeline

        merged = {**self.default_params(), **(params or {})}
        return Pipeline([("prep", self.preprocessor(schema)), ("model", self.make_estimator(merged, schema))])

    def fit(self, X: pd.DataFrame, y: Any, params: dict[str, Any] | None = None,
            schema: FeatureSchema | None = None) -> Any:
        model = self.build(params, schema or infer_schema(X))
        with self.threads():
            return model.fit(X, y)

    def predict(self, model: Any, X: pd.DataFrame) -> np.ndarray:
        return model.predict(X)

    def predict_proba(self, model: Any, X: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(X)

    def staged_fit(self, params: dict[str, Any] | None, schema: FeatureSchema, X: pd.DataFrame, y: Any,
                   n_stages: int) -> Iterator[tuple[int, Any]]:
        """Yield (stage, fitted model) with growing capacity; the model at the last stage equals a full fit."""
        raise NotImplementedError(f"{self.name} has no staged fit")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "cost_hint": self.cost_hint, "supports_stages": self.supports_stages,
                "default_params": self.default_params()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(random_state={self.random_state}, n_jobs={self.n_jobs})"


# -- preprocessing --------------------------------------------------------------------------------------------------
def one_hot_preprocessor(schema: FeatureSchema, max_categories: int = 30) -> Any:
    """Impute + scale numerics (with missing indicators), impute + one-hot categoricals: for linear models and MLPs."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def one_hot(fill: Any) -> Any:
        return Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value=fill)),
            ("encode", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=max_categories,
                                     sparse_output=False)),
        ])

    parts = []
    if schema.numeric:
        parts.append(("num", Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True,
                                                                keep_empty_features=True)),
                                       ("scale", StandardScaler())]), list(schema.numeric)))
    if schema.categorical_str:
        parts.append(("cat_str", one_hot(MISSING_TOKEN), list(schema.categorical_str)))
    if schema.categorical_int:
        parts.append(("cat_int", one_hot(-1.0), list(schema.categorical_int)))
    return ColumnTransformer(parts, remainder="drop")


def ordinal_preprocessor(schema: FeatureSchema) -> Any:
    """Categoricals first as ordinal codes (unknown -> -1, missing -> NaN), numerics passed through with NaN kept.

    Histogram gradient boosting treats negative/NaN categories as missing; random forests split on NaN natively.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    parts = []
    if schema.categorical:
        parts.append(("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                            encoded_missing_value=np.nan, max_categories=250),
                      list(schema.categorical)))
    if schema.numeric:
        parts.append(("num", "passthrough", list(schema.numeric)))
    return ColumnTransformer(parts, remainder="drop")


# -- built-in families ----------------------------------------------------------------------------------------------
class LogisticRegressionFamily(ModelFamily):
    name = "logistic_regression"
    cost_hint = 0.2

    def default_params(self) -> dict[str, Any]:
        return {"C": 1.0, "class_weight": "none"}

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True),
                "class_weight": trial.suggest_categorical("class_weight", ["none", "balanced"])}

    def make_estimator(self, params: dict[str, Any], schema: FeatureSchema) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=float(params["C"]), max_iter=1000,
                                  class_weight=None if params["class_weight"] == "none" else params["class_weight"])


class HistGradientBoostingFamily(ModelFamily):
    name = "hist_gradient_boosting"
    cost_hint = 1.0
    supports_stages = True

    def default_params(self) -> dict[str, Any]:
        return {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                "l2_regularization": 1e-6, "max_features": 1.0}

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_iter": trial.suggest_int("max_iter", 50, 400, step=25),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
            "max_features": trial.suggest_float("max_features", 0.3, 1.0),
        }

    def preprocessor(self, schema: FeatureSchema) -> Any:
        return ordinal_preprocessor(schema)

    def make_estimator(self, params: dict[str, Any], schema: FeatureSchema) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        mask = [True] * len(schema.categorical) + [False] * len(schema.numeric)
        return HistGradientBoostingClassifier(
            learning_rate=float(params["learning_rate"]), max_iter=int(params["max_iter"]),
            max_leaf_nodes=int(params["max_leaf_nodes"]), min_samples_leaf=int(params["min_samples_leaf"]),
            l2_regularization=float(params["l2_regularization"]), max_features=float(params["max_features"]),
            categorical_features=mask if any(mask) else None, early_stopping=False,
            random_state=self.random_state,
        )

    def staged_fit(self, params: dict[str, Any] | None, schema: FeatureSchema, X: pd.DataFrame, y: Any,
                   n_stages: int) -> Iterator[tuple[int, Any]]:
        # warm_start adds boosting iterations to the fitted trees instead of refitting from scratch.
        model = self.build(params, schema)
        total = int(model.named_steps["model"].max_iter)
        prep = model.named_steps["prep"].fit(X, y)
        Xt = prep.transform(X)
        booster = model.named_steps["model"].set_params(warm_start=True)
        for stage in range(1, n_stages + 1):
            booster.set_params(max_iter=max(1, round(total * stage / n_stages)))
            with self.threads():
                booster.fit(Xt, y)
            yield stage, model


class RandomForestFamily(ModelFamily):
    name = "random_forest"
    cost_hint = 1.5

    def default_params(self) -> dict[str, Any]:
        return {"n_estimators": 200, "max_depth": 0, "min_samples_leaf": 1, "max_features": 0.5,
                "class_weight": "none"}

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=25),
            "max_depth": trial.suggest_int("max_depth", 0, 24),  # 0 means unlimited
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_float("max_features", 0.1, 1.0),
            "class_weight": trial.suggest_categorical("class_weight", ["none", "balanced"]),
        }

    def preprocessor(self, schema: FeatureSchema) -> Any:
        return ordinal_preprocessor(schema)

    def make_estimator(self, params: dict[str, Any], schema: FeatureSchema) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=int(params["n_estimators"]), max_depth=int(params["max_depth"]) or None,
            min_samples_leaf=int(params["min_samples_leaf"]), max_features=float(params["max_features"]),
            class_weight=None if params["class_weight"] == "none" else params["class_weight"],
            n_jobs=self.n_jobs or None, random_state=self.random_state,
        )


class MLPFamily(ModelFamily):
    name = "mlp"
    cost_hint = 3.0

    def default_params(self) -> dict[str, Any]:
        return {"n_layers": 1, "units": 64, "alpha": 1e-4, "learning_rate_init": 1e-3}

    def search_space(self, trial: optuna.Trial) -> dict[str, Any]:
        return {
            "n_layers": trial.suggest_int("n_layers", 1, 2),
            "units": trial.suggest_int("units", 16, 128, log=True),
            "alpha": trial.suggest_float("alpha", 1e-6, 1e-1, log=True),
            "learning_rate_init": trial.suggest_float("learning_rate_init", 1e-4, 1e-2, log=True),
        }

    def make_estimator(self, params: dict[str, Any], schema: FeatureSchema) -> Any:
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=(int(params["units"]),) * int(params["n_layers"]), alpha=float(params["alpha"]),
            learning_rate_init=float(params["learning_rate_init"]), max_iter=200, early_stopping=True,
            n_iter_no_change=8, random_state=self.random_state,
        )


# -- registry -------------------------------------------------------------------------------------------------------
FAMILIES: dict[str, type[ModelFamily]] = {}
_entry_points_loaded = False


def register_family(family: type[ModelFamily], name: str | None = None, replace: bool = False) -> type[ModelFamily]:
    """Add a family class; usable as a decorator. Entry points in group `airflow_agentic.model_families` are
    registered the same way on first lookup."""
    if not (isinstance(family, type) and issubclass(family, ModelFamily)):
        raise TypeError(f"{family!r} is not a ModelFamily subclass")
    key = name or family.name
    if not key:
        raise ValueError(f"{family.__name__} has no name")
    if key in FAMILIES and FAMILIES[key] is not family and not replace:
        raise ValueError(f"model family {key!r} is already registered ({FAMILIES[key].__name__})")
    FAMILIES[key] = family
    return family


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_family(entry_point.load(), name=entry_point.name)
        except Exception:  # noqa: BLE001 - a broken third-party plugin must not hide the built-ins
            log.exception("could not load model family entry point %s", entry_point.name)


def available_families() -> list[str]:
    _load_entry_points()
    return sorted(FAMILIES)


def get_family(family: str | ModelFamily, **kwargs: Any) -> ModelFamily:
    if isinstance(family, ModelFamily):
        return family
    _load_entry_points()
    try:
        return FAMILIES[family](**kwargs)
    except KeyError:
        raise KeyError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}") from None


for _builtin in (LogisticRegressionFamily, HistGradientBoostingFamily, RandomForestFamily, MLPFamily):
    register_family(_builtin)
