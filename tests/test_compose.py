"""docker-compose.yaml cannot run here (no Docker engine): check that it agrees with the code instead."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def _env(service: dict) -> dict:
    env = service.get("environment", {})
    return dict(env) if isinstance(env, dict) else dict(e.split("=", 1) for e in env)


def test_the_full_stack_is_there():
    services = _compose()["services"]
    for name in ("postgres", "redis", "minio", "minio-init", "mlflow", "airflow-init", "airflow-apiserver",
                 "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"):
        assert name in services, name
    commands = {n: s.get("command") for n, s in services.items() if n.startswith("airflow-")}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert "3.3" in services["airflow-scheduler"]["build"]["dockerfile_inline"]
    assert "/opt/airflow-agentic" in services["airflow-scheduler"]["build"]["dockerfile_inline"]


def test_names_agree_with_the_code():
    from airflow_agentic.get_provider_info import get_provider_info

    services = _compose()["services"]
    env = _env(services["airflow-scheduler"])
    # Every AIRFLOW__AGENTIC__* option is one the provider declares.
    options = get_provider_info()["config"]["agentic"]["options"]
    for key in env:
        if key.startswith("AIRFLOW__AGENTIC__"):
            assert key.removeprefix("AIRFLOW__AGENTIC__").lower() in options, key
    # Buckets named in URLs exist: minio-init creates them.
    init = services["minio-init"]["entrypoint"]
    created = set(re.findall(r"mc mb --ignore-existing local/([a-z0-9-]+)", init))
    urls = [v for v in env.values() if isinstance(v, str) and v.startswith("s3://")]
    urls.append(services["mlflow"]["command"])
    for url in urls:
        for conn, bucket in re.findall(r"s3://(?:([a-z_]+)@)?([a-z0-9-]+)/", url):
            assert bucket in created, url
            if conn:
                assert f"AIRFLOW_CONN_{conn.upper()}" in env, f"connection {conn} used in {url} is not defined"
    # The connections are well formed for their hooks.
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["conn_type"] == "aws" and aws["extra"]["endpoint_url"] == "http://minio:9000"
    minio_env = _env(services["minio"])
    assert aws["login"] == minio_env["MINIO_ROOT_USER"] and aws["password"] == minio_env["MINIO_ROOT_PASSWORD"]
    # Ports: the API server and MLflow answer where the environment says.
    assert "8080:8080" in services["airflow-apiserver"]["ports"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert "--port 5000" in services["mlflow"]["command"] and "5000:5000" in services["mlflow"]["ports"]
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # Databases for MLflow and Optuna are created next to Airflow's.
    sql = (REPO / "docker" / "postgres-init.sql").read_text()
    assert "postgres:5432/mlflow" in services["mlflow"]["command"] and "CREATE DATABASE mlflow" in sql
    assert "CREATE DATABASE optuna" in sql
