"""Shared fixtures. Airflow reads its configuration at import, so the environment is set here, first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tempfile

REPO = Path(__file__).resolve().parent.parent
# One scratch root per test session, so that parallel sessions never share an Airflow database or dags folder.
CACHE = Path(tempfile.mkdtemp(prefix="agentic-tests-"))
AIRFLOW_HOME = CACHE / "airflow-home"

os.environ.setdefault("AIRFLOW_HOME", str(AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
TEST_DAGS = CACHE / "dags"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(TEST_DAGS))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
# One Fernet key for this process and every Airflow process the tests start on the same database. Without it each
# process makes up its own key: the AssetWatcher triggers that the session's `airflow standalone` stores (encrypted)
# are then unreadable here, and every later dag.test() fails while syncing the DAG folder with a JSONDecodeError.
if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
    from cryptography.fernet import Fernet

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()
os.environ.setdefault("AGENTIC_HOME", str(CACHE / "agentic-home"))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# No internet here: MLflow's telemetry thread would race MLflow's requests over os.environ (see stack.env).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _fill_dags_folder() -> None:
    """dag.test() looks DAGs up in the dags folder: the example DAGs and the test DAGs both go there."""
    if TEST_DAGS.exists():
        shutil.rmtree(TEST_DAGS)
    TEST_DAGS.mkdir(parents=True)
    for src in [*sorted((REPO / "dags").glob("*.py")), *sorted((REPO / "tests" / "dags").glob("*.py"))]:
        shutil.copy(src, TEST_DAGS / src.name)


_fill_dags_folder()

from servers import MLflowServer  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on loopback (SQLite + local artifacts), one per test session. It is the
    session's configured registry (``[agentic] mlflow_tracking_uri``), for this process and every Airflow process
    started after it, as a deployment configures it."""
    server = MLflowServer(tmp_path_factory.mktemp("mlflow")).start()
    os.environ["AIRFLOW__AGENTIC__MLFLOW_TRACKING_URI"] = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scripted_llm():
    """One scripted OpenAI-compatible server for the session; the real Airflow stack reads its URL from env."""
    from llm_server import ScriptedLLM

    with ScriptedLLM() as server:
        yield server


@pytest.fixture(scope="session")
def airflow_stack(airflow_db, scripted_llm, mlflow_server):
    """`airflow standalone` with the test dags folder: the real scheduler, dag-processor, triggerer and API server."""
    import json

    from airflow_stack import AirflowStack

    llm_conn = json.dumps({"conn_type": "agentic_llm", "host": scripted_llm.base_url,
                           "extra": {"model": "scripted-model", "max_retries": 0, "timeout": 10}})
    stack = AirflowStack(AIRFLOW_HOME, TEST_DAGS, extra_env={"AIRFLOW_CONN_TEST_LLM": llm_conn}).start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session", autouse=True)
def _cleanup_scratch():
    yield
    shutil.rmtree(CACHE, ignore_errors=True)


@pytest.fixture()
def mlflow_uri(mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    import mlflow

    mlflow.set_tracking_uri(mlflow_server.url)
    yield mlflow_server.url


@pytest.fixture(scope="session")
def airflow_db():
    """A real Airflow metadata database (SQLite), migrated once per test session."""
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    db = AIRFLOW_HOME / "airflow.db"
    done = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                          capture_output=True, text=True, env=os.environ.copy())
    if done.returncode:
        raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    yield db


@pytest.fixture(scope="session")
def s3():
    """A local moto S3 server with a bucket ``steward``, reached through the Airflow ``aws`` connection
    ``aws_test`` (an ``AIRFLOW_CONN_*`` variable, as a deployment would define it). Yields a boto3 client."""
    import json

    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    from servers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket="steward")
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    old = os.environ.get("AIRFLOW_CONN_AWS_TEST")
    os.environ["AIRFLOW_CONN_AWS_TEST"] = json.dumps(conn)
    yield client
    if old is None:
        os.environ.pop("AIRFLOW_CONN_AWS_TEST", None)
    server.stop()


@pytest.fixture(scope="session")
def spark():
    """Real Spark in local mode."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("airflow-agentic-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    yield session
    session.stop()

