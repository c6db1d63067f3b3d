"""Tiny labelled Parquet data and registered models for the training / deployment tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(0, 1, n), rng.normal(0, 1, n), rng.normal(0, 1, n)
    y = (1.8 * x1 - 1.2 * x2 + 0.5 * x3 + rng.normal(0, 0.5, n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "label": y})


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("training-data")
    (root / "train").mkdir()
    make_frame(300, 1).iloc[:150].to_parquet(root / "train" / "batch_001.parquet")
    make_frame(300, 1).iloc[150:].to_parquet(root / "train" / "batch_002.parquet")
    make_frame(300, 2).to_parquet(root / "holdout.parquet")
    make_frame(300, 3).to_parquet(root / "batch.parquet")
    return root


def register(model_name: str, model, frame: pd.DataFrame, alias: str | None = None) -> str:
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    X = frame.drop(columns=["label"])
    mlflow.set_experiment(f"{model_name}-setup")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)),
                                        registered_model_name=model_name,
                                        serialization_format="cloudpickle")
    version = str(info.registered_model_version)
    if alias:
        MlflowClient().set_registered_model_alias(model_name, alias, version)
    return version


def good_model(frame: pd.DataFrame):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(frame.drop(columns=["label"]), frame["label"])


def weak_model(frame: pd.DataFrame):
    """Uses one weak feature only: clearly worse, but not a constant predictor."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(ColumnTransformer([("x3", "passthrough", ["x3"])]), LogisticRegression())
    return model.fit(frame.drop(columns=["label"]), frame["label"])
