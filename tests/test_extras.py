"""A missing optional extra fails with the error Airflow's providers use (AirflowOptionalProviderFeatureException,
still an ImportError) and a message that names the extra to install. Missing modules are simulated with
``sys.modules[name] = None``, which makes their import fail as if they were not installed."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _missing(monkeypatch, *modules):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _spark(monkeypatch):
    _missing(monkeypatch, "pyspark", "pyspark.sql")
    from airflow_agentic.data.pipeline import _spark_session

    _spark_session("test", {})


def _labelstudio(monkeypatch):
    _missing(monkeypatch, "label_studio_sdk", "label_studio_sdk.client")
    from airflow_agentic.data.labelstudio import LabelStudioClient

    LabelStudioClient("http://127.0.0.1:1", "token")


def _drift_backend(backend, modules):
    def run(monkeypatch):
        import numpy as np
        import pandas as pd

        from airflow_agentic.drift.detectors import detect_drift
        from airflow_agentic.drift.profile import ReferenceProfile

        _missing(monkeypatch, *modules)
        frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=200)})
        detect_drift(ReferenceProfile.from_frame(frame, sample_rows=0), frame, backend=backend, threads=1)
    return run


def _kubernetes(monkeypatch):
    _missing(monkeypatch, "kubernetes", "kubernetes.client")
    from airflow_agentic.models.serving import KubernetesServing

    KubernetesServing("m", api_client=object()).apps


def _amazon(monkeypatch):
    _missing(monkeypatch, "s3fs")
    from airflow_agentic.data.io import resolve_path

    resolve_path("s3://bucket/batch.parquet", "aws_default")


@pytest.mark.parametrize("extra, call", [
    ("spark", _spark), ("labelstudio", _labelstudio), ("alibi", _drift_backend("alibi", ["alibi_detect", "alibi_detect.cd"])),
    ("evidently", _drift_backend("evidently", ["evidently"])), ("cncf-kubernetes", _kubernetes), ("amazon", _amazon),
], ids=["spark", "labelstudio", "alibi", "evidently", "cncf-kubernetes", "amazon"])
def test_missing_extra_raises_the_providers_exception_naming_the_extra(monkeypatch, extra, call):
    from airflow.exceptions import AirflowOptionalProviderFeatureException

    with pytest.raises(AirflowOptionalProviderFeatureException) as raised:
        call(monkeypatch)
    assert isinstance(raised.value, ImportError)
    assert f"pip install 'airflow-provider-agentic[{extra}]'" in str(raised.value)
    assert raised.value.extra == extra


def test_without_airflow_the_error_is_a_plain_import_error():
    """The data, drift and agents layers import no Airflow: there the same helper raises an ImportError subclass."""
    code = """
import sys
sys.modules["pyspark"] = None
from airflow_agentic.extras import MissingExtraError, require
try:
    require("pyspark", "spark", "The Spark engine")
except MissingExtraError as exc:
    assert type(exc) is MissingExtraError and isinstance(exc, ImportError), type(exc).__mro__
    assert str(exc) == "The Spark engine needs the optional extra 'spark': pip install 'airflow-provider-agentic[spark]'"
    assert not any(m == "airflow" or m.startswith("airflow.") for m in sys.modules), "imported Airflow"
    print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
