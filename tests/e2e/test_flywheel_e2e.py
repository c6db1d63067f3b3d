"""The flywheel under the real scheduler, triggerer and DAG processor (the session's `airflow standalone`), with the
example DAGs of dags/ and a real MLflow server: a drifted batch lands -> the Data Steward publishes it -> the
champion scores it and the monitoring agent asks for retraining -> the AssetWatcher fires -> agentic_retraining runs
-> a new version holds `champion` and `previous` holds the old one. A harmless shift starts no retraining; a burst
of drift reports starts one run that sees all of them. The scenarios live in tests/flywheel_scenarios.py: the same
ones run on the production stack (tests/stack)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import flywheel_scenarios as scenarios
from airflow_agentic.flywheel import demo

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

HOME = Path(os.environ["AIRFLOW_HOME"])
DATA_ROOT = f"file://{HOME}/agentic-data"  # the example DAGs' default


@pytest.fixture(scope="module")
def flywheel(airflow_stack, mlflow_server):
    # The stack runs with [agentic] mlflow_tracking_uri = the session's MLflow server (tests/conftest.py).
    api = demo.AirflowAPI(airflow_stack.url, airflow_stack.home)
    return scenarios.prepare(api, airflow_stack.home, DATA_ROOT, mlflow_server.url)


def test_harmless_shift_starts_no_retraining(flywheel):
    scenarios.harmless_shift_starts_no_retraining(flywheel)


def test_drifted_batch_makes_a_new_champion(flywheel):
    scenarios.drifted_batch_makes_a_new_champion(flywheel)


def test_burst_of_drift_reports_starts_one_retraining(flywheel):
    scenarios.burst_of_drift_reports_starts_one_retraining(flywheel)
