"""docker-compose.yaml cannot run here (no Docker engine): check that it agrees with the code instead."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _stack_script():
    from servers import stack_script

    return stack_script()


def _settings() -> dict[str, str]:
    return _stack_script().read_env_file(REPO / "stack.env")


def _compose() -> dict:
    """The compose file as `docker compose --env-file stack.env` reads it: ${VAR} from stack.env."""
    settings = _settings()

    def value(match: re.Match) -> str:
        assert match.group(1) in settings, f"docker-compose.yaml uses ${{{match.group(1)}}}, not in stack.env"
        return settings[match.group(1)]

    return yaml.safe_load(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value, (REPO / "docker-compose.yaml").read_text()))


def _env(service: dict) -> dict:
    """A service's environment: its env_file(s), then its environment entries."""
    files = service.get("env_file") or []
    merged: dict = {}
    for name in [files] if isinstance(files, str) else files:
        merged.update(_stack_script().read_env_file(REPO / name))
    env = service.get("environment", {})
    merged.update(dict(env) if isinstance(env, dict) else dict(e.split("=", 1) for e in env))
    return merged


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


def test_long_running_services_restart_unless_stopped():
    """The policy `./run stack`'s supervisor applies too; the one-shot init services run once."""
    services = _compose()["services"]
    for name, service in services.items():
        expected = "no" if name.endswith("-init") else "unless-stopped"
        assert service.get("restart", "no") == expected, name


def test_names_agree_with_the_code():
    from airflow_agentic.get_provider_info import get_provider_info

    services = _compose()["services"]
    env = _env(services["airflow-scheduler"])
    # Every AIRFLOW__AGENTIC__* option is one the provider declares or airflow_agentic.config reads.
    options = set(get_provider_info()["config"]["agentic"]["options"])
    for module in (REPO / "airflow_agentic").rglob("*.py"):
        options.update(re.findall(r"""option\(["']([a-z_]+)["']""", module.read_text()))
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


def _hosts_out(value):
    """A setting with the host:port of every URL in it replaced: compose names services, the stack uses loopback."""
    value = re.sub(r"(//(?:[^@/\s\"]*@)?)[A-Za-z0-9.-]+:\d+", r"\1HOST", str(value))
    try:
        return json.loads(value)
    except ValueError:
        return value


def test_compose_and_the_stack_script_read_the_same_settings(tmp_path):
    """docker-compose.yaml and `./run stack` read one stack.env: compose keeps only what names another service, the
    script builds the same settings for loopback, and the two agree on everything but hosts and ports."""
    stack_script = _stack_script()
    settings = _settings()
    services = _compose()["services"]
    raw = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    # Compose reads the file and repeats none of it.
    for name in ("postgres", "mlflow", *(n for n in services if n.startswith("airflow-"))):
        assert services[name].get("env_file") == "stack.env", name
    own = raw["x-airflow-common"]["environment"]
    assert not set(own) & set(settings), "set in both docker-compose.yaml and stack.env"
    text = (REPO / "docker-compose.yaml").read_text()
    for secret in (settings["AWS_SECRET_ACCESS_KEY"], settings["AIRFLOW__API_AUTH__JWT_SECRET"],
                   f"{settings['POSTGRES_USER']}:{settings['POSTGRES_PASSWORD']}@"):
        assert secret not in text, f"{secret} is written out in docker-compose.yaml"
    # The script's Airflow environment: every stack.env setting as it is, and compose's own settings for loopback.
    stack = stack_script.Stack(tmp_path, settings)
    env = stack.airflow_env(fernet_key="k")
    for key, value in settings.items():
        assert env[key] == value, key
    compose_env = _env(services["airflow-scheduler"])
    for key, value in compose_env.items():
        assert key in env, f"{key} is set by docker-compose.yaml, not by scripts/stack.py"
        if key == "AIRFLOW__API__PORT":  # compose's port inside its network, the script's a free one
            continue
        assert _hosts_out(env[key]) == _hosts_out(value), key
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__AGENTIC__DATA_ROOT"].startswith("s3://aws_default@")
    # MLflow: the same backend store and artifact destination.
    compose_mlflow = " ".join(services["mlflow"]["command"].split())
    script_mlflow = stack.mlflow_command()
    for flag in ("--backend-store-uri", "--artifacts-destination"):
        ours = script_mlflow[script_mlflow.index(flag) + 1]
        theirs = compose_mlflow.split(flag, 1)[1].split()[0].rstrip('"')
        assert _hosts_out(ours) == _hosts_out(theirs), flag
    # The databases and buckets the script creates are the ones compose's init creates.
    sql = (REPO / "docker" / "postgres-init.sql").read_text()
    for key in ("MLFLOW_DB", "OPTUNA_DB"):
        assert f"CREATE DATABASE {settings[key]}" in sql
    init = services["minio-init"]["entrypoint"]
    assert set(re.findall(r"local/([a-z0-9-]+)", init)) == {settings["DATA_BUCKET"], settings["MLFLOW_BUCKET"]}
