"""The Data Steward on a Spark standalone cluster (a master and two workers from the pyspark package's own
``spark-class``, scripts/spark_cluster.py) puts exactly the same rows in clean and in quarantine, with the same
reasons, as pandas and as Spark's local mode; the master is chosen by ``[agentic] spark_master``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from airflow_agentic.data.findings import StewardConfig
from airflow_agentic.data.pipeline import run_steward
from airflow_agentic.data.steward import QUARANTINE_REASON_COLUMN

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DATA_TESTS = REPO / "tests" / "data"
sys.path[:0] = [str(REPO / "scripts"), str(DATA_TESTS)]

from helpers import make_profile, spark_batch  # noqa: E402

CONFIG = StewardConfig(id_column="row_id", drift=False)
# Small on purpose (2 cores): one core and 512 MB per executor, one executor per worker, few shuffle partitions.
CLUSTER_CONF = {"spark.executor.cores": "1", "spark.executor.memory": "512m", "spark.cores.max": "2",
                "spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false", "spark.driver.memory": "1g",
                "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                # Short jobs on fresh JVMs: the C1 compiler alone compiles Spark's generated code much sooner.
                "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
                "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1"}


@pytest.fixture(scope="module")
def spark_cluster():
    pytest.importorskip("pyspark")
    import spark_cluster as cluster_script

    cluster = cluster_script.SparkCluster(workers=2, cores=1, memory="1g")
    cluster.start(timeout=180)
    yield cluster
    cluster.stop()


# The standalone run is a driver of its own (one SparkContext per process; the session's `spark` fixture is local
# mode), as a Celery worker's task process would be: the master comes from the configuration, nothing else.
DRIVER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {data_tests!r})
    from helpers import make_profile
    from airflow_agentic.config import spark_master
    from airflow_agentic.data.findings import StewardConfig
    from airflow_agentic.data.pipeline import run_steward
    from pyspark.sql import SparkSession

    conf = {{"spark.master": spark_master(), **json.loads(sys.argv[3])}}
    report = run_steward(sys.argv[1], make_profile(), sys.argv[2], engine="spark", spark_conf=conf,
                         config=StewardConfig(id_column="row_id", drift=False), validate="none")
    spark = SparkSession.getActiveSession()
    executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
    print("RESULT", json.dumps({{"master": spark.sparkContext.master, "executors": executors, "counts": report.counts,
                      "actions": [a["action"] for a in report.actions]}}))
    spark.stop()
""")


def _place(directory: Path) -> tuple[list, list]:
    clean = pd.read_parquet(directory / "clean.parquet")
    quarantine = pd.read_parquet(directory / "quarantine.parquet")
    return (sorted(clean["row_id"].tolist()),
            sorted(zip(quarantine["row_id"].tolist(), quarantine[QUARANTINE_REASON_COLUMN].tolist())))


def test_standalone_cluster_matches_pandas_and_local_mode(spark_cluster, spark, tmp_path):
    profile = make_profile()
    batch, path = spark_batch(tmp_path)

    on_pandas = run_steward(batch, profile, tmp_path / "pandas", config=CONFIG, validate="none")
    on_local = run_steward(str(path), profile, tmp_path / "local", engine="spark", spark=spark, config=CONFIG,
                           validate="none")

    env = {**os.environ, "AIRFLOW__AGENTIC__SPARK_MASTER": spark_cluster.master_url}
    done = subprocess.run([sys.executable, "-c", DRIVER.format(data_tests=str(DATA_TESTS)), str(path),
                           str(tmp_path / "cluster"), json.dumps(CLUSTER_CONF)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    on_cluster = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert on_cluster["master"] == spark_cluster.master_url and on_cluster["executors"] >= 1

    assert on_cluster["counts"] == on_local.counts == on_pandas.counts
    assert on_cluster["actions"] == [a["action"] for a in on_local.actions] == [a["action"] for a in on_pandas.actions]
    placed = _place(tmp_path / "pandas")
    assert placed[1]  # the batch really has quarantined rows, with several reasons
    assert len({reason for _, reason in placed[1]}) >= 4
    assert _place(tmp_path / "cluster") == _place(tmp_path / "local") == placed

    apps = spark_cluster.state()["completedapps"] + spark_cluster.state()["activeapps"]
    assert apps, "the job did not run on the standalone cluster"


def test_the_operator_takes_the_configured_master(monkeypatch):
    from airflow_agentic.operators.steward import DataStewardOperator

    for name in ("AIRFLOW__AGENTIC__SPARK_MASTER", "AIRFLOW_CONN_SPARK_DEFAULT", "MASTER"):
        monkeypatch.delenv(name, raising=False)

    def master(**kwargs):
        op = DataStewardOperator(task_id="steward", source="s", output="o", profile="p.npz", engine="spark",
                                 **kwargs)
        return op._spark_conf().get("spark.master")

    assert master() == "local[*]"
    monkeypatch.setenv("MASTER", "local[1]")
    assert master() == "local[1]"
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", "spark://10.0.0.5:7077")
    assert master() == "spark://10.0.0.5:7077"
    monkeypatch.setenv("AIRFLOW__AGENTIC__SPARK_MASTER", "spark://127.0.0.1:7078")
    assert master() == "spark://127.0.0.1:7078"  # the [agentic] option wins
    assert master(spark_conf={"spark.master": "local[2]"}) == "local[2]"  # an explicit spark_conf wins over all
    pandas_op = DataStewardOperator(task_id="p", source="s", output="o", profile="p.npz")
    assert "spark.master" not in pandas_op._spark_conf()
