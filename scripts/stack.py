"""``./run stack``: the production topology of docker-compose.yaml, from native processes, on one machine.

Started from packages only, each in a process group of its own, state under ``.stack/`` (wiped at every start):

- PostgreSQL (Debian's binaries, a fresh cluster in ``.stack/postgres``): Airflow's metadata database, MLflow's
  backend store and Optuna's study storage;
- Redis (Debian's ``redis-server``, no persistence): the Celery broker;
- moto's S3 server, the stand-in for S3/MinIO (the only stand-in), with the data and MLflow buckets;
- an MLflow tracking server on PostgreSQL with its artifacts on S3;
- Airflow 3 with the CeleryExecutor: ``db migrate``, then api-server, scheduler, dag-processor, triggerer and two
  ``celery worker`` s (distinct hostnames), with the example DAGs of ``dags/`` and the flywheel's data on S3
  (``aws_default`` connection to the S3 store).

The settings that do not depend on where a service runs come from ``stack.env``, which docker-compose.yaml reads
too. Ports are free loopback ports. It waits for the health checks (pg_isready, Redis PING, the S3 endpoint,
MLflow ``/health``, the API server's ``/api/v2/monitor/health`` with its components healthy, both workers ready),
writes ``.stack/stack.json`` (URLs, login, process ids, the client environment) and prints the URLs, then keeps the
stack up until Ctrl-C, SIGTERM or ``--stop`` (which stops every process it started, restarted ones included).

Restart policy, as docker-compose.yaml's ``restart: unless-stopped``: a component that exits while the stack is up
(a crash, a SIGKILL; not a stop) is said and started again with the same command, environment and log file
(appended), after a backoff of 1 s that doubles on each quick death up to 30 s and is reset once it has stayed up
for a minute. ``stack.json`` is rewritten (atomically) with the new pid in ``processes`` and the count in
``restarts``. A killed PostgreSQL restarts the same way (it removes its stale ``postmaster.pid`` and recovers).

    python scripts/stack.py [--root DIR] [--detach]      start (``--detach``: in the background, return when up)
    python scripts/stack.py --stop [--root DIR]          stop a running stack
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
ENV_FILE = REPO / "stack.env"
BIN = Path(sys.executable).parent
MARKER = ".agentic-stack"
WORKERS = ("worker1", "worker2")
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0  # seconds before a restart: doubles on each quick death, up to the max
STABLE_AFTER = 60.0  # seconds up after which a death counts as a first one again (backoff reset)


def say(message: str) -> None:
    print(f"[stack {time.strftime('%H:%M:%S')}] {message}", flush=True)


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``KEY=VALUE`` lines as docker compose's ``env_file`` reads them (comments and blank lines skipped)."""
    settings: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: not KEY=VALUE: {line!r}")
        settings[key.strip()] = value.strip()
    return settings


# ---------------------------------------------------------------------------------------------- PostgreSQL
def postgres_bindir() -> Path | None:
    """The folder of Debian's (or any) PostgreSQL server binaries: ``pg_ctl`` on PATH, else the newest
    ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


class Postgres:
    """A fresh PostgreSQL cluster in a folder, run in the foreground (``command``) so that it is a child process
    like the other servers. As root it runs as the ``postgres`` user: the server refuses to run as root."""

    def __init__(self, root: Path, port: int, bindir: Path | None = None):
        self.root, self.port = Path(root), port
        self.data = self.root / "data"
        found = bindir or postgres_bindir()
        if found is None:
            raise FileNotFoundError("PostgreSQL binaries (initdb, postgres) not found: apt-get install postgresql")
        self.bindir = found
        self.prefix: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def init(self) -> Postgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.prefix:
            shutil.chown(self.root, "postgres", "postgres")
        done = subprocess.run(self.prefix + [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                                             "--auth=trust", "--no-sync"], capture_output=True, text=True)
        if done.returncode:
            who = "the postgres user (every folder above it must be searchable by it)" if self.prefix else "us"
            raise RuntimeError(f"initdb in {self.data} failed as {who}: {done.stderr.strip()[-800:]}")
        return self

    def command(self) -> list[str]:
        # -F: no fsync (a scratch cluster); -k: the socket in our folder, not /var/run/postgresql
        return self.prefix + [str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
                              "-p", str(self.port), "-k", str(self.root), "-F"]

    def ready(self) -> bool:
        isready = self.bindir / "pg_isready"
        cmd = [str(isready) if isready.exists() else "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def wait_ready(self, timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres not ready on port {self.port} after {timeout:.0f}s")
            time.sleep(0.3)

    def stop(self, proc: subprocess.Popen | None = None) -> None:
        """Fast shutdown (open client connections are closed; a plain SIGTERM would wait for them), then the
        process group of ``proc``."""
        from airflow_agentic.flywheel.demo import stop_process

        subprocess.run(self.prefix + [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                                      "-t", "30", "stop"], capture_output=True)
        stop_process(proc)

    def held(self) -> bool:
        """Whether the postmaster named in ``postmaster.pid`` still exists (even as a zombie not yet reaped): a new
        one refuses to start until it is gone, and removes the stale file itself after that."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        return _alive(pid)

    def create_databases(self, names: list[str], owner: str = "postgres", password: str | None = None) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            if owner != "postgres":
                cur.execute(f'CREATE ROLE "{owner}" LOGIN PASSWORD %s', (password or owner,))
            for name in names:
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        conn.close()

    def url(self, db: str, user: str = "postgres", password: str | None = None, scheme: str = "postgresql") -> str:
        login = f"{user}:{password}" if password else user
        return f"{scheme}://{login}@127.0.0.1:{self.port}/{db}"


# ---------------------------------------------------------------------------------------------- checks
def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(check: Any, what: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(0.5)


def airflow_healthy(url: str) -> bool:
    """The API server answers and reports the metadatabase, scheduler, triggerer and dag-processor healthy."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=3) as response:
            health = json.loads(response.read())
    except Exception:  # noqa: BLE001 - not up yet
        return False
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((health.get(p) or {}).get("status") == "healthy" for p in parts)


def log_has(path: Path, needle: str) -> bool:
    return path.exists() and needle in path.read_text(errors="replace")


# ---------------------------------------------------------------------------------------------- the stack
class Stack:
    """Ports, URLs and environments of one stack under ``root``."""

    def __init__(self, root: Path, settings: dict[str, str] | None = None):
        from airflow_agentic.flywheel.demo import free_port

        self.root = Path(root)
        self.settings = settings if settings is not None else read_env_file()
        self.ports = {name: free_port() for name in ("postgres", "redis", "s3", "mlflow", "api",
                                                     "triggerer_logs", *(f"{w}_logs" for w in WORKERS))}
        self.postgres = Postgres(self.root / "postgres", self.ports["postgres"])
        self.home = self.root / "airflow-home"
        self.logs = self.root / "logs"

    # -- URLs built from stack.env and our ports
    def db_url(self, db: str, scheme: str = "postgresql") -> str:
        s = self.settings
        return self.postgres.url(s[db], s["POSTGRES_USER"], s["POSTGRES_PASSWORD"], scheme)

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def aws_connection(self) -> str:
        s = self.settings
        return json.dumps({"conn_type": "aws", "login": s["AWS_ACCESS_KEY_ID"], "password": s["AWS_SECRET_ACCESS_KEY"],
                           "extra": {"endpoint_url": self.s3_url, "region_name": s["AWS_DEFAULT_REGION"]}})

    def client_env(self) -> dict[str, str]:
        """What a process talking to the stack needs (the Airflow components, a test, a landing system)."""
        return {
            **self.settings,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url("POSTGRES_DB", "postgresql+psycopg2"),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": self.db_url("POSTGRES_DB", "db+postgresql+psycopg2"),
            "AIRFLOW_CONN_AWS_DEFAULT": self.aws_connection(),
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http", "host": self.mlflow_url}),
            "AIRFLOW__AGENTIC__MLFLOW_TRACKING_URI": self.mlflow_url,
            "AIRFLOW__AGENTIC__OPTUNA_STORAGE": self.db_url("OPTUNA_DB", "postgresql+psycopg2"),
            "MLFLOW_TRACKING_URI": self.mlflow_url,
        }

    def mlflow_command(self) -> list[str]:
        return [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.ports["mlflow"]),
                "--backend-store-uri", self.db_url("MLFLOW_DB", "postgresql+psycopg2"),
                "--artifacts-destination", f"s3://{self.settings['MLFLOW_BUCKET']}/artifacts", "--workers", "1"]

    def airflow_env(self, fernet_key: str) -> dict[str, str]:
        from airflow_agentic.flywheel.demo import airflow_env

        env = airflow_env(self.home, REPO / "dags", self.ports["api"], self.settings["AIRFLOW__AGENTIC__DATA_ROOT"],
                          {**self.client_env(), "AIRFLOW__CORE__FERNET_KEY": fernet_key,
                           "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports["triggerer_logs"]),
                           # A killed worker's task is failed and retried after this long without a heartbeat
                           # (default 5 minutes).
                           "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
                           "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5"})
        for key in ("AIRFLOW__CORE__UNIT_TEST_MODE", "AIRFLOW__CORE__DAGS_FOLDER_OVERRIDE"):
            env.pop(key, None)
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
        return env


def missing_packages() -> list[str]:
    """What the environment lacks for this topology, said up front rather than in a component's log."""
    problems = []
    try:
        import asyncpg  # noqa: F401 - Airflow's async metadata engine on PostgreSQL (API server, state stores)
    except ImportError:
        problems.append("asyncpg (Airflow's async engine on PostgreSQL)")
    try:
        import airflow.providers.celery.executors.celery_executor_utils  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - e.g. celery 5.7 dropped what the provider imports
        problems.append(f"a Celery that apache-airflow-providers-celery can import ({type(exc).__name__}: {exc})")
    return problems


def start(root: Path) -> int:
    from airflow_agentic.flywheel.demo import ProcessGroups

    missing = missing_packages()
    if missing:
        say("the environment cannot run the stack: " + "; ".join(missing))
        return 2
    root = root.resolve()
    state = root / "stack.json"
    if _running(state):
        say(f"a stack is already running from {root}: ./run stack --stop")
        return 2
    if root.exists():
        if any(root.iterdir()) and not (root / MARKER).exists():
            say(f"{root} exists and is not a stack folder: not wiping it; pass another --root")
            return 2
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by scripts/stack.py; wiped at the next start\n")
    begun = time.monotonic()
    specs: dict[str, Component] = {}
    with ProcessGroups() as groups:
        try:
            info = _start(groups, Stack(root), begun, specs)
        except KeyboardInterrupt:
            say("interrupted: stopping")
            return 130
        except Exception as exc:  # noqa: BLE001 - said, then every process started so far is stopped
            say(f"start-up failed: {type(exc).__name__}: {exc} (logs in {root / 'logs'})")
            return 1
        info["restarts"] = {name: 0 for name in specs}
        _write_state(state, info)
        _print(info)
        _supervise(groups, info, specs, state)
        say("stopping every process of the stack")
    state.unlink(missing_ok=True)
    say("stopped")
    return 0


class Component:
    """How one component is started (again): its command, environment, log file and working folder."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path, cwd: Path,
                 busy: Callable[[], bool] | None = None):
        self.name, self.cmd, self.env, self.log, self.cwd = name, cmd, env, log, cwd
        self.busy = busy or (lambda: False)  # True while a start would fail (the old one not gone yet)

    def start(self, groups: Any) -> subprocess.Popen:
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            return groups.start(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd)


def _start(groups: Any, stack: Stack, begun: float, specs: dict[str, Component]) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    from airflow_agentic.flywheel.demo import wait_http

    s, logs = stack.settings, stack.logs
    logs.mkdir(parents=True)
    stack.home.mkdir(parents=True)
    procs: dict[str, subprocess.Popen] = {}

    def run(name: str, cmd: list[str], env: dict[str, str] | None = None, busy: Any = None) -> subprocess.Popen:
        specs[name] = Component(name, cmd, env or os.environ.copy(), logs / f"{name}.log", stack.root, busy)
        procs[name] = specs[name].start(groups)
        return procs[name]

    say(f"PostgreSQL, Redis and the S3 stand-in (moto) in {stack.root}")
    stack.postgres.init()
    run("postgres", stack.postgres.command(), busy=stack.postgres.held)
    redis_dir = stack.root / "redis"
    redis_dir.mkdir()
    run("redis", ["redis-server", "--port", str(stack.ports["redis"]), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--daemonize", "no", "--dir", str(redis_dir)])
    run("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(stack.ports["s3"])])
    stack.postgres.wait_ready(60, procs["postgres"])
    stack.postgres.create_databases([s["POSTGRES_DB"], s["MLFLOW_DB"], s["OPTUNA_DB"]], s["POSTGRES_USER"],
                                    s["POSTGRES_PASSWORD"])
    wait_for(lambda: redis_ping(stack.ports["redis"]), "redis", 30, procs["redis"])
    wait_http(f"{stack.s3_url}/moto-api/", 60, procs["s3"])
    _make_buckets(stack)

    say("MLflow on PostgreSQL + S3; Airflow's database migration")
    mlflow_env = {**os.environ, "MLFLOW_S3_ENDPOINT_URL": stack.s3_url, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                  **{k: s[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}}
    run("mlflow", stack.mlflow_command(), mlflow_env)
    env = stack.airflow_env(Fernet.generate_key().decode())
    with open(logs / "db-migrate.log", "ab") as log:
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT,
                       check=True, cwd=stack.root)

    say("Airflow: api-server, scheduler, dag-processor, triggerer and two Celery workers")
    run("api-server", [str(BIN / "airflow"), "api-server"], env)
    for component in ("scheduler", "dag-processor", "triggerer"):
        run(component, [str(BIN / "airflow"), component], env)
    for worker in WORKERS:
        worker_env = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(stack.ports[f"{worker}_logs"])}
        run(worker, [str(BIN / "airflow"), "celery", "worker", "--celery-hostname", f"{worker}@%h",
                     "--concurrency", s.get("AIRFLOW__CELERY__WORKER_CONCURRENCY", "2")], worker_env)

    wait_http(f"{stack.mlflow_url}/health", 180, procs["mlflow"])
    wait_for(lambda: airflow_healthy(stack.api_url), "Airflow (api-server, scheduler, triggerer, dag-processor)",
             240, procs["api-server"])
    for worker in WORKERS:
        wait_for(lambda w=worker: log_has(logs / f"{w}.log", " ready."), f"celery {worker}", 120, procs[worker])

    user = s["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(":")[0]
    passwords = stack.home / "simple_auth_manager_passwords.json.generated"
    return {
        "pid": os.getpid(), "root": str(stack.root), "home": str(stack.home), "logs": str(logs),
        "started_seconds": round(time.monotonic() - begun, 1),
        "urls": {"airflow": stack.api_url, "mlflow": stack.mlflow_url, "s3": stack.s3_url,
                 "postgres": stack.db_url("POSTGRES_DB"), "redis": f"redis://127.0.0.1:{stack.ports['redis']}/0"},
        "login": {"user": user, "password": json.loads(passwords.read_text())[user]},
        "processes": {name: proc.pid for name, proc in procs.items()},
        "commands": {name: spec.cmd for name, spec in specs.items()},  # what the supervisor restarts
        "ports": stack.ports,
        "env": {k: v for k, v in env.items() if k.startswith(("AIRFLOW", "AWS_", "MLFLOW_TRACKING"))
                or k in stack.settings},
    }


def _make_buckets(stack: Stack) -> None:
    import boto3

    s = stack.settings
    client = boto3.client("s3", endpoint_url=stack.s3_url, aws_access_key_id=s["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=s["AWS_SECRET_ACCESS_KEY"], region_name=s["AWS_DEFAULT_REGION"])
    for bucket in (s["DATA_BUCKET"], s["MLFLOW_BUCKET"]):
        client.create_bucket(Bucket=bucket)


def _print(info: dict[str, Any]) -> None:
    urls, login = info["urls"], info["login"]
    say(f"up in {info['started_seconds']} s")
    say(f"  Airflow UI/API  {urls['airflow']}   (login {login['user']} / {login['password']})")
    say(f"  MLflow          {urls['mlflow']}")
    say(f"  S3 (moto)       {urls['s3']}   (keys in stack.env; data {info['env']['AIRFLOW__AGENTIC__DATA_ROOT']})")
    say(f"  PostgreSQL      {urls['postgres']}")
    say(f"  Redis           {urls['redis']}")
    say(f"  logs            {info['logs']}/<component>.log; state {info['root']}/stack.json")
    say("Ctrl-C or ./run stack --stop stops it")


def _write_state(state: Path, info: dict[str, Any]) -> None:
    """Readers (``--stop``, ``--detach``, tests) never see half a file: a temporary file renamed over it."""
    scratch = state.with_name(state.name + ".tmp")
    scratch.write_text(json.dumps(info, indent=2))
    os.replace(scratch, state)


def _supervise(groups: Any, info: dict[str, Any], specs: dict[str, Component], state: Path) -> None:
    """Keep the stack up until Ctrl-C, SIGTERM or SIGHUP, restarting a component that exits (the policy in the
    module docstring). The signals only set a flag, checked between restarts: a signal can no longer land between
    starting a replacement and recording it, so ``stop_all`` afterwards stops every process, restarted ones too."""
    stopping: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        stopping.append(signum)

    signals = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    for sig in signals:
        signal.signal(sig, on_signal)
    procs = {name: next(p for p in groups.procs if p.pid == pid) for name, pid in info["processes"].items()}
    started = dict.fromkeys(procs, time.monotonic())
    backoff = dict.fromkeys(procs, BACKOFF_FIRST)
    due: dict[str, float] = {}  # name -> when to start it again
    try:
        while not stopping:
            now = time.monotonic()
            for name, proc in procs.items():
                if name in due or proc.poll() is None:
                    continue
                try:  # what is left of its process group goes with it, as with a container
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                up = now - started[name]
                if up >= STABLE_AFTER:
                    backoff[name] = BACKOFF_FIRST
                delay = backoff[name]
                backoff[name] = min(delay * 2, BACKOFF_MAX)
                due[name] = now + delay
                say(f"{name} exited with {proc.returncode} after {up:.0f} s up: restarting it in {delay:.0f} s")
            for name in [n for n, when in due.items() if when <= now and not specs[n].busy()]:
                del due[name]
                old = procs[name]
                try:
                    new = specs[name].start(groups)
                except OSError as exc:  # e.g. the binary is gone: try again later, with the backoff
                    say(f"{name} could not be started again: {exc}")
                    started[name] = time.monotonic()
                    continue
                # In the place of the old one: stop_all stops newest first (Airflow before PostgreSQL)
                groups.procs.remove(new)
                groups.procs[groups.procs.index(old)] = new
                procs[name], started[name] = new, time.monotonic()
                info["processes"][name] = new.pid
                info["restarts"][name] += 1
                _write_state(state, info)
                say(f"{name} restarted (pid {new.pid}, restart {info['restarts'][name]})")
            time.sleep(0.5)
    finally:
        for sig in signals:  # a second signal must not interrupt stopping
            signal.signal(sig, signal.SIG_IGN)
    say(f"{signal.Signals(stopping[0]).name}: stopping")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running(state: Path) -> bool:
    if not state.exists():
        return False
    try:
        return _alive(int(json.loads(state.read_text())["pid"]))
    except (ValueError, KeyError, OSError):
        return False


def stop(root: Path, timeout: float = 120) -> int:
    """SIGTERM to the stack's supervisor, which stops its process groups; then whatever is left of them."""
    state = root.resolve() / "stack.json"
    if not state.exists():
        say(f"no stack running from {root} (no {state})")
        return 0
    info = json.loads(state.read_text())
    pid = int(info["pid"])
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.3)
    if state.exists():  # the latest pids (restarts rewrite the file); gone when the supervisor stopped them all
        info = json.loads(state.read_text())
    else:
        info = {}
    for name, child in info.get("processes", {}).items():  # a supervisor killed hard leaves its groups
        try:
            os.killpg(child, signal.SIGKILL)
            say(f"{name} was still running: killed")
        except (ProcessLookupError, PermissionError):
            pass
    state.unlink(missing_ok=True)
    say("stopped")
    return 0


def detach(root: Path, timeout: float = 600) -> int:
    """Start in the background (its own session, output in ``<root>.log``) and return once it is up."""
    root = root.resolve()
    state = root / "stack.json"
    if _running(state):
        say(f"a stack is already running from {root}")
        return 2
    root.parent.mkdir(parents=True, exist_ok=True)
    log = root.with_name(root.name + ".log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, __file__, "--root", str(root)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            say(f"the stack did not start (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
            return 1
        if state.exists() and _running(state):
            info = json.loads(state.read_text())
            if info.get("pid") == proc.pid:
                _print(info)
                return 0
        time.sleep(0.5)
    say(f"not up after {timeout:.0f}s: stopping it (see {log})")
    os.kill(proc.pid, signal.SIGTERM)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stop", action="store_true", help="stop the stack running from --root")
    parser.add_argument("--detach", action="store_true", help="start in the background and return once it is up")
    parser.add_argument("--root", type=Path, default=REPO / ".stack", help="state folder (default .stack/)")
    args = parser.parse_args(argv)
    if args.stop:
        return stop(args.root)
    if args.detach:
        return detach(args.root)
    return start(args.root)


if __name__ == "__main__":
    sys.exit(main())
