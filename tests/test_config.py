"""One configuration order for every part: with nothing configured, the operators, the example DAGs' tasks, the
HPO storage and the UI resolve the same registry, study storage and data root; an `[agentic]` option wins over a
connection and the environment; a task's MLflow URI never leaks into the next task of the same worker."""

from __future__ import annotations

import os

import pytest

from airflow_agentic import config


@pytest.fixture()
def nothing_configured(monkeypatch, tmp_path):
    for name in ("AIRFLOW__AGENTIC__MLFLOW_TRACKING_URI", "AIRFLOW__AGENTIC__OPTUNA_STORAGE",
                 "AIRFLOW__AGENTIC__DATA_ROOT", "MLFLOW_TRACKING_URI", "AIRFLOW_CONN_MLFLOW_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_with_nothing_configured_every_part_uses_the_same_registry_and_storage(nothing_configured):
    from airflow_agentic.hooks.mlflow import MLflowHook
    from airflow_agentic.plugins.ui.data import tracking_uri as ui_tracking_uri

    home = config.airflow_home()
    expected = f"sqlite:///{home / 'agentic' / 'mlflow.db'}"
    assert config.mlflow_tracking_uri() == expected  # ContinuousLearningOperator, MonitorBatchOperator
    assert MLflowHook().tracking_uri() == expected  # Training, HPO, Deployment, watch operators
    assert ui_tracking_uri() == expected  # the UI plugin
    assert config.optuna_storage() == f"sqlite:///{home / 'agentic' / 'optuna.db'}"
    assert config.data_root() == f"file://{home / 'agentic-data'}"
    assert config.profile_dir() == f"file://{home / 'agentic-data'}/profiles"


def test_resolve_storage_defaults_to_the_configured_study_storage(nothing_configured, monkeypatch):
    from airflow_agentic.models.hpo import resolve_storage

    monkeypatch.setenv("AIRFLOW__AGENTIC__OPTUNA_STORAGE", f"sqlite:///{nothing_configured / 'studies.db'}")
    storage = resolve_storage(None)
    assert str(nothing_configured / "studies.db") in str(storage.url if hasattr(storage, "url") else storage)


def test_the_agentic_option_wins_over_the_connection_and_the_environment(nothing_configured, monkeypatch):
    from airflow_agentic.hooks.mlflow import MLflowHook

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", '{"conn_type": "mlflow", "host": "http://conn:5000"}')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert config.mlflow_tracking_uri() == "http://conn:5000" == MLflowHook().tracking_uri()
    monkeypatch.setenv("AIRFLOW__AGENTIC__MLFLOW_TRACKING_URI", "http://option:5000")
    assert config.mlflow_tracking_uri() == "http://option:5000" == MLflowHook().tracking_uri()
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT")
    monkeypatch.delenv("AIRFLOW__AGENTIC__MLFLOW_TRACKING_URI")
    assert config.mlflow_tracking_uri() == "http://env:5000"


def test_a_tasks_tracking_uri_does_not_leak_into_the_next_task(nothing_configured, monkeypatch):
    import mlflow

    mlflow.set_tracking_uri(None)  # (this also unsets MLFLOW_TRACKING_URI when another test had set a URI)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://worker-default:5000")
    with config.mlflow_tracking("http://task-registry:5000"):
        assert mlflow.get_tracking_uri() == "http://task-registry:5000"
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://worker-default:5000"
    assert mlflow.get_tracking_uri() == "http://worker-default:5000"
