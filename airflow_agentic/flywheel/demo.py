"""``airflow-agentic demo``: the flywheel end to end on the embedded defaults, in ``<checkout>/.demo/``.

It starts an MLflow tracking server (SQLite, local artifacts, loopback) and ``airflow standalone`` with the example
DAGs of ``dags/``, trains the first champion on a generated stable batch, unpauses the DAGs and feeds batches through
``agentic_ingest`` (the REST API, as a landing system would): first stable ones, then a drifted one. The monitoring
agent asks for retraining, the drift Asset's watcher fires, Airflow schedules ``agentic_retraining``, the new model
passes the gate and becomes ``champion`` (the old one ``previous``). It prints what happened and the seconds from
the drifted batch landing to the new champion serving, then keeps the servers up until Ctrl-C (``--once``: stops
after one turn and exits non-zero when the turn did not complete).

No Airflow import here: the stack runs in subprocesses and is driven over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
MODEL_NAME = "flywheel"
DAG_IDS = ("agentic_ingest", "agentic_monitoring", "agentic_retraining")


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def checkout_root() -> Path:
    here = Path(__file__).resolve().parents[2]
    return here if (here / "dags").is_dir() else Path.cwd()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server behind {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s")


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing or the process gone: the process group kill still runs
        return []


def _prctl() -> Any:
    """libc's prctl, looked up in the parent (the child between fork and exec should only call it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except Exception:  # noqa: BLE001 - best effort; the signal handlers and atexit still stop the group
        return None


def _child_setup(prctl: Any) -> Any:
    """Runs in the child before exec: its own session (a process group the demo can kill as one) and, on Linux,
    SIGTERM when the demo dies, even by SIGKILL (PR_SET_PDEATHSIG)."""

    def setup() -> None:
        os.setsid()
        if prctl is not None:
            prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG

    return setup


def stop_process(proc: subprocess.Popen | None, timeout: float = 30) -> None:
    """Stop a child started by ``ProcessGroups`` and everything it started: SIGTERM to its process group (and to
    any descendant that moved to a group of its own), SIGKILL to whatever is left after ``timeout``."""
    if proc is None:
        return
    family = _descendants(proc.pid)  # taken first: once the leader is gone its children are re-parented
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for child in family:
        try:
            child.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass
    deadline = time.monotonic() + timeout
    try:
        proc.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, the leader included
    except (ProcessLookupError, PermissionError):
        pass
    try:
        import psutil

        _, alive = psutil.wait_procs(family, timeout=max(0.1, deadline - time.monotonic()))
        for child in alive:
            child.kill()
        psutil.wait_procs(alive, timeout=5)
    except Exception:  # noqa: BLE001
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class ProcessGroups:
    """The demo's children, each in a process group of its own, stopped together on every way out: a normal
    return, an exception, Ctrl-C, SIGTERM (a supervisor, ``timeout``), SIGHUP (a closed terminal) and interpreter
    exit. A signal stops the children, then exits with ``128 + signal``."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self._previous: dict[int, Any] = {}
        self._stopping = False

    def __enter__(self) -> ProcessGroups:
        import atexit

        try:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: no signal handlers, atexit and __exit__ still stop the children
            pass
        atexit.register(self.stop_all)
        return self

    def __exit__(self, *exc: Any) -> None:
        import atexit

        self.stop_all()
        atexit.unregister(self.stop_all)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def start(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, preexec_fn=_child_setup(_prctl()), **kwargs)  # noqa: PLW1509
        self.procs.append(proc)
        return proc

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and not self._stopping:
            raise KeyboardInterrupt  # Ctrl-C keeps its meaning: the demo reports, then stops the servers
        for sig in self.SIGNALS:  # a second signal must not interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        say(f"{signal.Signals(signum).name}: stopping the servers")
        self.stop_all()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)  # at once: nothing of the demo may run on against stopped servers

    def stop_all(self) -> None:
        self._stopping = True
        while self.procs:
            stop_process(self.procs.pop())  # newest first: Airflow before the MLflow it talks to


# ---------------------------------------------------------------------------------------------- servers
def start_mlflow(groups: ProcessGroups, root: Path, port: int) -> subprocess.Popen:
    root.mkdir(parents=True, exist_ok=True)
    log = open(root / "server.log", "ab")  # noqa: SIM115 - lives as long as the process
    cmd = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
           "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return groups.start(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def airflow_env(home: Path, dags: Path, port: int, data_root: str, extra: dict[str, str] | None = None) -> dict:
    url = f"http://127.0.0.1:{port}"
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # Re-parse soon after an unpause, so the drift Asset's watcher starts in seconds rather than half a minute.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
        # A laptop running MLflow, four Airflow components and a training at once answers slowly now and then.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__AGENTIC__DATA_ROOT": data_root,
        "AIRFLOW__AGENTIC__MODEL_NAME": MODEL_NAME,
        "GX_ANALYTICS_ENABLED": "False",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        # Offline, MLflow's telemetry thread races requests over os.environ ("... '_MLFLOW_TELEMETRY_SESSION_ID'").
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **(extra or {}),
    }


def start_airflow(groups: ProcessGroups, home: Path, env: dict[str, str]) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "standalone.log", "ab")  # noqa: SIM115
    return groups.start([str(BIN / "airflow"), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT)


class AirflowAPI:
    """The public REST API of a running Airflow (SimpleAuthManager login from the generated passwords file)."""

    def __init__(self, url: str, home: Path, username: str = "admin"):
        self.url, self.home, self.username = url.rstrip("/"), Path(home), username
        self._token: str | None = None

    @property
    def password(self) -> str:
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())[self.username]

    def token(self) -> str:
        import httpx

        if self._token is None:
            r = httpx.post(f"{self.url}/auth/token", json={"username": self.username, "password": self.password},
                           timeout=30)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def call(self, method: str, path: str, *, prefix: str = "/api/v2", **kw: Any) -> Any:
        import httpx

        for attempt in range(3):  # the API server shares the machine with the scheduler and the tasks
            try:
                r = httpx.request(method, f"{self.url}{prefix}{path}", timeout=60,
                                  headers={"Authorization": f"Bearer {self.token()}"}, **kw)
                break
            except (httpx.ReadTimeout, httpx.ConnectError):
                if attempt == 2:
                    raise
                time.sleep(2)
        r.raise_for_status()
        return r.json() if r.content else None

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.call("GET", f"/dags/{dag_id}")
                return
            except httpx.HTTPStatusError:
                time.sleep(1)
        errors = self.call("GET", "/importErrors")
        raise TimeoutError(f"DAG {dag_id} not parsed after {timeout:.0f}s; import errors: {errors}")

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after", "limit": 100})["dag_runs"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise TimeoutError(f"{dag_id} {run_id} not done after {timeout:.0f}s")

    def wait_runs(self, dag_id: str, count: int, timeout: float = 300) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs(dag_id)
            if len(runs) >= count:
                return runs
            time.sleep(1)
        raise TimeoutError(f"{dag_id}: fewer than {count} run(s) after {timeout:.0f}s")

    def deadlines(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG's deadline alerts and the run's open or missed deadlines, as the UI shows them (Airflow 3.3 serves
        them on its UI API only). A deadline met by a successful run is pruned, so a finished run lists none."""
        return {"alerts": self.call("GET", f"/dags/{dag_id}/deadlineAlerts", prefix="/ui")["deadline_alerts"],
                "deadlines": self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/deadlines", prefix="/ui")["deadlines"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                         params={"deserialize": True, "stringify": False})["value"]


# ---------------------------------------------------------------------------------------------- the flywheel
def data_paths(data_root: str) -> dict[str, Any]:
    """The flywheel's folders under ``data_root`` (a local folder or an object store URL such as
    ``s3://aws_default@bucket/data``), as paths of ``data.io`` (the one path resolver)."""
    from airflow_agentic.data import io as dio

    root = dio.resolve_path(data_root.rstrip("/"))
    return {"root": root, "landing": root / "landing", "reports": root / "reports",
            "reference": root / "reference" / "profile.npz", "profiles": root / "profiles"}


def bootstrap(data_root: str, tracking_uri: str, *, seed: int = 0, warmup: int = 2,
              model_name: str = MODEL_NAME) -> dict[str, Any]:
    """The steward's reference profile and the first champion, trained on generated stable batches through the
    flywheel's own first turn (``flywheel.turn.first_champion``) into the MLflow registry."""
    from airflow_agentic.drift.profile import ReferenceProfile
    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.streams import ID_COLUMN, TARGET, make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch, first_champion

    from airflow_agentic.data import io as dio

    paths = data_paths(data_root)
    if dio.local_path(paths["root"]) is not None:  # an object store has no folders to make
        for key in ("landing", "reports", "profiles"):
            paths[key].mkdir(parents=True, exist_ok=True)
        paths["reference"].parent.mkdir(parents=True, exist_ok=True)
    frames = [make_batch("stable", seed=seed + 1000 * k, start_id=10_000_000 + 100_000 * k) for k in range(warmup)]
    dio.write_bytes_atomic(paths["reference"],
                           ReferenceProfile.from_frame(frames[0], exclude=[ID_COLUMN], sample_rows=0).to_bytes())
    # Negative numbers: the warm-up batches come before the first landed batch (0001).
    batches = {k - warmup: LabelledBatch.from_frame(f, target=TARGET, id_column=ID_COLUMN)
               for k, f in enumerate(frames)}
    store = MlflowStore(model_name, tracking_uri, profile_dir=str(paths["profiles"]))
    turn = first_champion(batches, store, run_key=f"{model_name}-first-version", lineage={"data": "generated:stable"})
    if turn.status != "initial":
        raise RuntimeError(f"the first champion was not promoted: {turn.to_dict()}")
    return turn.to_dict()


def land(api: AirflowAPI, data_root: str, name: str, frame: Any, dag_id: str = "agentic_ingest") -> tuple[str, float]:
    """Write a batch into the landing folder (atomically) and tell Airflow (``dag_id``, the flywheel's ingest DAG),
    as a landing system would."""
    from airflow_agentic.data import io as dio

    target = data_paths(data_root)["landing"] / f"{name}.parquet"
    dio.write_frame(frame, target)
    landed = time.monotonic()
    run_id = api.trigger(dag_id, {"source": str(target), "batch": name})
    return run_id, landed


def aliases(tracking_uri: str, model_name: str = MODEL_NAME) -> dict[str, str]:
    from mlflow import MlflowClient

    model = MlflowClient(tracking_uri=tracking_uri).get_registered_model(model_name)
    return {k: str(v) for k, v in (model.aliases or {}).items()}


def wait_champion_change(tracking_uri: str, old: str, timeout: float) -> tuple[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        champion = aliases(tracking_uri).get("champion")
        if champion and champion != old:
            return champion, time.monotonic()
        time.sleep(0.5)
    raise TimeoutError(f"champion still v{old} after {timeout:.0f}s")


def wait_watcher(home: Path, data_root: str, timeout: float = 180, log: Path | None = None) -> None:
    """Until the triggerer's log (``log``, default ``airflow standalone`` 's) shows the drift watcher running."""
    needle = f"DriftEventTrigger watching {data_root.rstrip('/')}/reports"
    log = log or home / "standalone.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_text(errors="replace"):
            time.sleep(1.5)  # its first listing is the baseline
            return
        time.sleep(0.5)
    raise TimeoutError(f"the drift watcher did not start within {timeout:.0f}s (see {log})")


@dataclass
class DemoResult:
    ok: bool = False
    first_champion: str | None = None
    new_champion: str | None = None
    previous: str | None = None
    drift_to_champion_seconds: float | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    retraining: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def monitoring_decision(api: AirflowAPI, run_count: int, timeout: float = 240) -> tuple[dict, dict]:
    runs = api.wait_runs("agentic_monitoring", run_count, timeout)
    run = runs[run_count - 1]
    state = api.wait_run("agentic_monitoring", run["dag_run_id"], timeout)
    if state != "success":
        raise RuntimeError(f"agentic_monitoring run {run['dag_run_id']} ended {state}")
    decision = api.xcom("agentic_monitoring", run["dag_run_id"], "monitor") or {}
    accuracy = api.xcom("agentic_monitoring", run["dag_run_id"], "monitor", "accuracy")
    return decision, {"accuracy": accuracy}


def run_flywheel(api: AirflowAPI, home: Path, data_root: str, tracking_uri: str, *, stable_batches: int = 2,
                 seed: int = 0, timeout: float = 300) -> DemoResult:
    """Unpause, feed stable batches then a drifted one, and follow the turn to the new champion."""
    from airflow_agentic.flywheel.streams import make_batch

    result = DemoResult(first_champion=aliases(tracking_uri).get("champion"))
    for dag_id in DAG_IDS:
        api.wait_dag(dag_id)
        api.unpause(dag_id)
    say("DAGs unpaused; waiting for the drift Asset's watcher to start")
    wait_watcher(home, data_root)
    monitoring_runs = len(api.runs("agentic_monitoring"))
    retraining_runs = len(api.runs("agentic_retraining"))
    for i in range(1, stable_batches + 1):
        name = f"{i:04d}"
        run_id, _ = land(api, data_root, name, make_batch("stable", seed=seed + i, start_id=i * 100_000))
        if api.wait_run("agentic_ingest", run_id, timeout) != "success":
            raise RuntimeError(f"agentic_ingest {run_id} failed")
        monitoring_runs += 1
        decision, numbers = monitoring_decision(api, monitoring_runs, timeout)
        result.decisions.append({"batch": name, "kind": "stable", "action": decision.get("action"),
                                 "accuracy": numbers["accuracy"], "reasons": decision.get("reasons")})
        say(f"batch {name} (stable): accuracy {numbers['accuracy']}, monitoring agent: {decision.get('action')}")

    name = f"{stable_batches + 1:04d}"
    say(f"batch {name} lands with a drift (the decision boundary moved)")
    run_id, landed = land(api, data_root, name, make_batch("drifted", seed=seed + 100, start_id=999_000))
    champion, serving_at = wait_champion_change(tracking_uri, result.first_champion or "", timeout)
    result.drift_to_champion_seconds = round(serving_at - landed, 1)
    monitoring_runs += 1
    decision, numbers = monitoring_decision(api, monitoring_runs, timeout)
    result.decisions.append({"batch": name, "kind": "drifted", "action": decision.get("action"),
                             "accuracy": numbers["accuracy"], "reasons": decision.get("reasons")})
    runs = api.wait_runs("agentic_retraining", retraining_runs + 1, timeout)
    run = runs[retraining_runs]
    state = api.wait_run("agentic_retraining", run["dag_run_id"], timeout)
    turn = api.xcom("agentic_retraining", run["dag_run_id"], "continuous_learning") if state == "success" else {}
    result.retraining = {"run_id": run["dag_run_id"], "state": state, "request": (turn or {}).get("request"),
                         "status": (turn or {}).get("status"), "steps": [
                             {"agent": s.get("agent"), "action": s.get("tool"), "reason": s.get("rationale")}
                             for s in (turn or {}).get("steps", [])]}
    try:
        result.retraining["deadline"] = api.deadlines("agentic_retraining", run["dag_run_id"])
    except Exception as exc:  # noqa: BLE001 - a private UI route: the demo goes on without it
        result.retraining["deadline"] = {"error": str(exc)[:200]}
    now = aliases(tracking_uri)
    result.new_champion, result.previous = now.get("champion"), now.get("previous")
    result.ok = (state == "success" and result.new_champion == champion != result.first_champion
                 and result.previous == result.first_champion)
    return result


def report(result: DemoResult, *, airflow_url: str, mlflow_url: str, password: str) -> None:
    say("-" * 72)
    say(f"first champion: {MODEL_NAME} v{result.first_champion}")
    for d in result.decisions:
        say(f"  batch {d['batch']} ({d['kind']}): accuracy {d['accuracy']} -> {d['action']}"
            + (f" ({'; '.join(d['reasons'] or [])[:140]})" if d["action"] != "ignore" else ""))
    r = result.retraining
    if r:
        request = r.get("request") or {}
        say(f"drift event -> agentic_retraining {r['run_id']}: {r['state']}, {request.get('kind')} turn since batch "
            f"{request.get('since_batch')}: {r.get('status')}")
        for s in r.get("steps", []):
            say(f"    {s['agent']:<12} {s['action']:<16} {str(s['reason'])[:110]}")
        say(deadline_line(r.get("deadline") or {}, r["state"]))
    say(f"champion now: v{result.new_champion}, previous: v{result.previous}")
    if result.drift_to_champion_seconds is not None:
        say(f"drifted batch landed -> new champion serving: {result.drift_to_champion_seconds} s "
            f"({'within' if result.drift_to_champion_seconds < 120 else 'over'} the 2-minute goal)")
    say(f"Airflow UI: {airflow_url}  (login admin / {password})")
    say(f"MLflow UI:  {mlflow_url}/#/models/{MODEL_NAME}")
    say("turn complete" if result.ok else f"turn NOT complete{': ' + result.error if result.error else ''}")


def deadline_line(deadline: dict[str, Any], state: str) -> str:
    """What the retraining run's DeadlineAlert says: declared, met, or missed (and so notified)."""
    if "error" in deadline:
        return f"deadline alert not readable: {deadline['error']}"
    alerts = deadline.get("alerts") or []
    if not alerts:
        return "no deadline alert declared on agentic_retraining"
    alert = alerts[0]
    declared = (f"deadline alert {alert.get('name') or ''}: {(alert.get('interval') or 0) / 60:.0f} min after "
                f"{alert.get('reference_type')}").replace("  ", " ")
    missed = [d for d in deadline.get("deadlines") or [] if d.get("missed")]
    if missed:
        return f"{declared}: MISSED at {missed[0]['deadline_time']} (notified through [agentic] approval_notifier)"
    if state == "success":
        return f"{declared}: met (Airflow prunes a met deadline when the run succeeds)"
    return f"{declared}: open until {(deadline.get('deadlines') or [{}])[0].get('deadline_time')}"


def quiet_libraries() -> None:
    """The trial-by-trial chatter of Optuna and MLflow would bury what the demo prints."""
    import logging

    from airflow_agentic.hooks.mlflow import quiet_mlflow

    quiet_mlflow()  # no progress bar per model load, no "View run" line per run
    for name in ("mlflow", "optuna", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        pass


def run_demo(*, once: bool = False, port: int = 8080, mlflow_port: int = 0, root: Path | None = None,
             keep: bool = False) -> int:
    root = Path(root or checkout_root() / ".demo").resolve()
    dags = checkout_root() / "dags"
    if port == 0:
        port = free_port()
    elif port_busy(port):
        say(f"port {port} is in use: pass --port (0 picks a free one)")
        return 2
    mlflow_port = mlflow_port or free_port()
    if root.exists() and not keep:
        if any(root.iterdir()) and not (root / ".agentic-demo").exists():
            say(f"{root} exists and is not a demo folder: not wiping it; pass another --root")
            return 2
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / ".agentic-demo").write_text("made by airflow-agentic demo; wiped at the next start\n")
    home, data_root = root / "airflow-home", f"file://{root / 'data'}"
    mlflow_url, airflow_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{port}"
    (home / "agentic").mkdir(parents=True, exist_ok=True)
    with ProcessGroups() as groups:
        return _run_demo(groups, once=once, root=root, home=home, dags=dags, data_root=data_root,
                         port=port, mlflow_port=mlflow_port, mlflow_url=mlflow_url, airflow_url=airflow_url)


def _run_demo(groups: ProcessGroups, *, once: bool, root: Path, home: Path, dags: Path, data_root: str, port: int,
              mlflow_port: int, mlflow_url: str, airflow_url: str) -> int:
    procs = groups.procs
    result = DemoResult()
    try:
        say(f"starting MLflow on {mlflow_url} and airflow standalone on {airflow_url} in {root}")
        mlflow_proc = start_mlflow(groups, root / "mlflow", mlflow_port)
        env = airflow_env(home, dags, port, data_root, {"AIRFLOW__AGENTIC__MLFLOW_TRACKING_URI": mlflow_url})
        airflow_proc = start_airflow(groups, home, env)
        wait_http(f"{mlflow_url}/health", 180, mlflow_proc)
        say("MLflow is up; training the first champion on a stable batch")
        quiet_libraries()
        first = bootstrap(data_root, mlflow_url)
        say(f"first champion: v{first['champion_after']} ({first['seconds']} s)")
        wait_http(f"{airflow_url}/api/v2/monitor/health", 240, airflow_proc)
        say("Airflow is up")
        api = AirflowAPI(airflow_url, home)
        result = run_flywheel(api, home, data_root, mlflow_url)
    except KeyboardInterrupt:
        result.error = "interrupted"
    except Exception as exc:  # noqa: BLE001 - reported, then the servers are stopped or kept for a look
        result.error = f"{type(exc).__name__}: {exc}"
    password = ""
    try:
        password = AirflowAPI(airflow_url, home).password
    except Exception:  # noqa: BLE001
        pass
    report(result, airflow_url=airflow_url, mlflow_url=mlflow_url, password=password)
    (root / "result.json").write_text(json.dumps(result.__dict__, indent=2, default=str))
    try:
        if not once and result.error != "interrupted":
            say("servers stay up; Ctrl-C stops them")
            while procs and all(p.poll() is None for p in procs):
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        say("stopping the servers")
        groups.stop_all()
    return 0 if result.ok else 1
