from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_data import make_frame

from airflow_agentic.models.dataset import Dataset, infer_schema
from airflow_agentic.models.families import (FAMILIES, LogisticRegressionFamily, ModelFamily, available_families,
                                             get_family, register_family)


def test_schema_reads_strings_and_integer_codes_as_categorical(frame):
    X, _ = frame
    schema = infer_schema(X)
    assert schema.numeric == ("x1", "x2")
    assert schema.categorical_str == ("colour",)
    assert schema.categorical_int == ("code",)
    assert infer_schema(X, categorical=["colour"]).categorical_int == ()


@pytest.mark.parametrize("name", ["logistic_regression", "hist_gradient_boosting", "random_forest", "mlp"])
def test_builtin_family_fits_mixed_data_with_nan(name, frame):
    data = Dataset(*frame)
    family = get_family(name)
    model = family.fit(data.X.iloc[:450], data.y.iloc[:450], schema=data.schema)
    unseen = data.X.iloc[450:].copy()
    unseen.loc[unseen.index[0], "colour"] = "purple"  # a category never seen in training
    labels = family.predict(model, unseen)
    proba = family.predict_proba(model, unseen)
    assert labels.shape == (len(unseen),)
    assert proba.shape == (len(unseen), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (labels == data.y.iloc[450:].to_numpy()).mean() > 0.7


def test_staged_fit_reaches_the_full_model(frame):
    data = Dataset(*frame)
    family = get_family("hist_gradient_boosting")
    stages = [(stage, model.named_steps["model"].n_iter_)
              for stage, model in family.staged_fit({"max_iter": 100}, data.schema, data.X, data.y, 4)]
    assert stages == [(1, 25), (2, 50), (3, 75), (4, 100)]


def test_register_a_user_family():
    class Constant(ModelFamily):
        name = "test_constant"
        cost_hint = 0.01

        def default_params(self):
            return {"strategy": "prior"}

        def search_space(self, trial):
            return {"strategy": trial.suggest_categorical("strategy", ["prior", "most_frequent"])}

        def make_estimator(self, params, schema):
            from sklearn.dummy import DummyClassifier

            return DummyClassifier(strategy=params["strategy"])

    try:
        register_family(Constant)
        assert "test_constant" in available_families()
        with pytest.raises(ValueError, match="already registered"):
            register_family(type("Other", (Constant,), {}), name="test_constant")
        X, y = make_frame(100)
        model = get_family("test_constant").fit(X, y)
        assert get_family("test_constant").predict(model, X).shape == (100,)
    finally:
        FAMILIES.pop("test_constant", None)
    with pytest.raises(KeyError, match="unknown model family"):
        get_family("test_constant")
    with pytest.raises(TypeError):
        register_family(LogisticRegressionFamily())  # an instance, not a class
    assert isinstance(pd.DataFrame, type)
