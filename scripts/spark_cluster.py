"""A Spark standalone cluster from the ``pyspark`` package alone: one master and N workers on loopback.

Started with the package's own ``bin/spark-class`` (``org.apache.spark.deploy.master.Master`` and
``org.apache.spark.deploy.worker.Worker``), no separate Spark download. Every process gets free ports and a process
group of its own, so :meth:`SparkCluster.stop` ends exactly what :meth:`SparkCluster.start` started (JVMs and the
executors they launched) and nothing else. Used by the tests (``tests/stack/test_spark_cluster.py``) and by the stack
script; from a shell::

    python scripts/spark_cluster.py            # start, print the master URL, stop on Ctrl-C / SIGTERM
    python scripts/spark_cluster.py --workers 2 --cores 1 --memory 1g --dir /tmp/spark

Point the Data Steward at it with ``AIRFLOW__AGENTIC__SPARK_MASTER=spark://127.0.0.1:<port>`` (or a ``spark``
connection whose host is that URL).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
HOST = "127.0.0.1"


def spark_home() -> Path:
    """The ``pyspark`` package directory: it carries ``bin/spark-class`` and the jars."""
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.origin:
        raise RuntimeError("pyspark is not installed in this Python")
    home = Path(spec.origin).parent
    if not (home / "bin" / "spark-class").exists():
        raise RuntimeError(f"{home} has no bin/spark-class")
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class SparkCluster:
    """``start()`` -> master URL (``spark://127.0.0.1:<port>``); ``stop()`` ends every process it started."""

    def __init__(self, workers: int = 2, cores: int = 1, memory: str = "1g", root: str | Path | None = None,
                 daemon_memory: str = "256m"):
        if workers < 1 or cores < 1:
            raise ValueError("a cluster needs at least one worker with at least one core")
        self.n_workers, self.cores, self.memory, self.daemon_memory = workers, cores, memory, daemon_memory
        self._own_root = root is None
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="agentic-spark-"))
        self.port = self.ui_port = 0
        self.procs: list[subprocess.Popen] = []

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    def _env(self) -> dict[str, str]:
        home = spark_home()
        return {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": HOST, "SPARK_LOG_DIR": str(self.root / "logs"),
                "SPARK_DAEMON_MEMORY": self.daemon_memory, "SPARK_NO_DAEMONIZE": "1",
                # The daemons only coordinate: the quick C1 compiler and the serial GC start them with less CPU.
                "SPARK_DAEMON_JAVA_OPTS": os.environ.get("SPARK_DAEMON_JAVA_OPTS",
                                                         "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"),
                # Executors start Python workers with this interpreter (the driver's), not whatever python3 is first
                # on PATH, so the steward's code and pyspark's own Python match the driver's exactly.
                "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable)}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], stdout=log,
                                    stderr=subprocess.STDOUT, env=self._env(), cwd=self.root,
                                    start_new_session=True)  # own process group: stop() kills it and its children
        finally:
            log.close()
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 120.0) -> str:
        """Start the master, then the workers; return once every worker is registered ALIVE with the master."""
        if self.procs:
            raise RuntimeError("cluster already started")
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise RuntimeError("Spark needs Java (apt-get install openjdk-17-jre-headless)")
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.port, self.ui_port = free_port(), free_port()
        try:
            self._spawn("master", [MASTER_CLASS, "--host", HOST, "--port", str(self.port),
                                   "--webui-port", str(self.ui_port)])
            self._wait(lambda state: state is not None, timeout, "master")
            for i in range(self.n_workers):
                work = self.root / f"worker-{i}"
                work.mkdir(exist_ok=True)
                self._spawn(f"worker-{i}", [WORKER_CLASS, "--host", HOST, "--port", str(free_port()),
                                            "--webui-port", str(free_port()), "--cores", str(self.cores),
                                            "--memory", self.memory, "--work-dir", str(work), self.master_url])
            self._wait(lambda state: state is not None and self.alive_workers(state) >= self.n_workers, timeout,
                       f"{self.n_workers} workers")
        except BaseException:
            self.stop()
            raise
        return self.master_url

    def state(self) -> dict | None:
        """The master's status JSON (``/json/``), or None while it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=2) as response:
                return json.load(response)
        except Exception:  # noqa: BLE001 - not up yet
            return None

    @staticmethod
    def alive_workers(state: dict) -> int:
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Spark process exited with {proc.returncode} while waiting for {what}; "
                                       f"logs in {self.root}")
            if ready(self.state()):
                return
            time.sleep(0.5)
        raise TimeoutError(f"Spark {what} not ready after {timeout:.0f}s; logs in {self.root}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM each process group (workers first, so they do not try to reconnect), SIGKILL what remains."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # executors of a worker live in its group; make sure none survives its worker
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        self.procs.clear()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SparkCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_CLUSTER: SparkCluster | None = None


def start(workers: int = 2, cores: int = 1, memory: str = "1g", root: str | Path | None = None,
          timeout: float = 120.0) -> SparkCluster:
    """Start the module's cluster (one per process) and return it; ``cluster.master_url`` is what to configure."""
    global _CLUSTER
    if _CLUSTER is not None:
        raise RuntimeError(f"a cluster is already running at {_CLUSTER.master_url}")
    cluster = SparkCluster(workers, cores, memory, root)
    cluster.start(timeout)
    _CLUSTER = cluster
    return cluster


def stop() -> None:
    global _CLUSTER
    if _CLUSTER is not None:
        _CLUSTER.stop()
        _CLUSTER = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="1g", help="memory per worker (executors share it)")
    parser.add_argument("--dir", default=None, help="logs and work folders (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    cluster = start(args.workers, args.cores, args.memory, args.dir)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    print(f"Spark master {cluster.master_url} (UI {cluster.ui_url}), {args.workers} workers x {args.cores} core "
          f"x {args.memory}; logs in {cluster.root}", flush=True)
    print(f"  AIRFLOW__AGENTIC__SPARK_MASTER={cluster.master_url}", flush=True)
    try:
        while all(p.poll() is None for p in cluster.procs):
            time.sleep(1)
        print("a Spark process exited; stopping the cluster", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
