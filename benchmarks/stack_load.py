"""Many flywheels on one Airflow: 20 models fed at once, on the production stack and on the embedded defaults.

The flywheels are the example DAGs' fleet (``[agentic] fleet``, ``config.flywheels()``): ``lf01`` ... ``lf20``, each
with its own registered model, data root, DAGs and drift watcher, all from the same four DAG files a user runs. Each
gets a first champion (``demo.bootstrap``); then batches land in waves, every flywheel's batch of a wave at once (as
20 upstream systems would, through the REST API): a harmless shift (ingest -> monitoring, no retraining), then a
drifted batch (ingest -> monitoring -> drift watcher -> retraining -> gate -> new champion). The same run on both
topologies, one after the other:

- ``stack``: ``./run stack`` (scripts/stack.py): PostgreSQL, Redis, two Celery workers (concurrency 2 each), MLflow
  on PostgreSQL with artifacts on S3 (moto's server standing in), the flywheels' data on S3;
- ``standalone``: the embedded defaults, as ``./run demo`` runs them: ``airflow standalone`` (SQLite,
  LocalExecutor), MLflow on SQLite, data in local files.

Reported per topology: batch landed -> monitoring decision (the batch written to its decision's report appearing,
polled every second; the trigger through the REST API, retried on a 5xx as a landing system would, counts in it),
drift report -> drift event (the watcher's poll and its cooldown), drift event -> retraining task start (scheduler,
executor, workers), drifted batch landed -> new champion; CPU seconds and peak memory (summed PSS of each process
tree: pages that forked workers share are split, not counted twice) of every component over the feeding phase; and
every flywheel's outcome, so that a fast figure with a wrong outcome shows.

    .venv/bin/python benchmarks/stack_load.py                          # 20 flywheels, both topologies
    .venv/bin/python benchmarks/stack_load.py --flywheels 4 --topology stack --json /tmp/load.json
    .venv/bin/python benchmarks/stack_load.py --report stack.json standalone.json   # one table from saved runs

Run it on an idle machine (``uptime`` is printed beside the figures); on 2 cores 20 flywheels take a while.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# This process only writes batches and reads results: its own Airflow settings stay out of the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="agentic-load-client-"))

WAVES = {"harmless": "harmless", "drifted": "drifted"}  # wave name -> generated batch kind (flywheel.streams)
STANDALONE_PARTS = ("scheduler", "dag-processor", "triggerer", "api-server")


def say(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", flush=True)


def uptime() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@dataclass
class Topology:
    name: str
    api: Any  # demo.AirflowAPI
    tracking_uri: str
    data_root: str
    home: Path
    triggerer_log: Path
    components: Callable[[], dict[str, int]]  # component -> pid of the process leading its tree
    stop: Callable[[], None]
    started_seconds: float = 0.0
    required: tuple[str, ...] = ()  # components that must stay up (nothing restarts them)

    def check_alive(self) -> None:
        missing = [name for name in self.required if name not in self.components()]
        if missing:
            raise RuntimeError(f"{self.name}: {', '.join(missing)} exited (see {self.home}/standalone.log)")


# ---------------------------------------------------------------------------------------------- topologies
def start_stack(root: Path, fleet: list[str]) -> Topology:
    began = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW"))}
    env["AIRFLOW__AGENTIC__FLEET"] = ",".join(fleet)
    script = [sys.executable, str(REPO / "scripts" / "stack.py"), "--root", str(root)]
    done = subprocess.run([*script, "--detach"], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"the stack did not start:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    info = json.loads((root / "stack.json").read_text())
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = info["env"]["AIRFLOW_CONN_AWS_DEFAULT"]  # we write batches to S3

    def components() -> dict[str, int]:
        try:  # re-read: a supervisor that restarts a component records its new pid
            return dict(json.loads((root / "stack.json").read_text())["processes"])
        except (OSError, ValueError, KeyError):
            return dict(info["processes"])

    def stop() -> None:
        subprocess.run([*script, "--stop"], capture_output=True, timeout=300)

    from airflow_agentic.flywheel import demo

    api = demo.AirflowAPI(info["urls"]["airflow"], Path(info["home"]), username=info["login"]["user"])
    return Topology("stack", api, info["urls"]["mlflow"], info["env"]["AIRFLOW__AGENTIC__DATA_ROOT"],
                    Path(info["home"]), Path(info["logs"]) / "triggerer.log", components, stop,
                    round(time.monotonic() - began, 1))


def start_standalone(root: Path, fleet: list[str], exits: contextlib.ExitStack) -> Topology:
    """The demo's embedded defaults: MLflow on SQLite and ``airflow standalone`` with the example DAGs."""
    from airflow_agentic.flywheel import demo

    began = time.monotonic()
    groups = exits.enter_context(demo.ProcessGroups())
    home, data_root = root / "airflow-home", f"file://{root / 'data'}"
    (home / "agentic").mkdir(parents=True, exist_ok=True)
    port, mlflow_port = demo.free_port(), demo.free_port()
    mlflow_url, airflow_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{port}"
    mlflow = demo.start_mlflow(groups, root / "mlflow", mlflow_port)
    env = demo.airflow_env(home, REPO / "dags", port, data_root,
                           {"AIRFLOW__AGENTIC__MLFLOW_TRACKING_URI": mlflow_url,
                            "AIRFLOW__AGENTIC__FLEET": ",".join(fleet)})
    for key in [k for k in env if k.startswith("AIRFLOW__") and k.split("__")[1] in ("DATABASE", "CELERY")]:
        env.pop(key)  # SQLite in AIRFLOW_HOME, as a fresh install
    env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    airflow = demo.start_airflow(groups, home, env)
    demo.wait_http(f"{mlflow_url}/health", 180, mlflow)
    demo.wait_http(f"{airflow_url}/api/v2/monitor/health", 300, airflow)

    def components() -> dict[str, int]:
        import psutil

        found = {"mlflow": mlflow.pid, "standalone": airflow.pid}
        try:
            children = psutil.Process(airflow.pid).children()
        except psutil.Error:
            return found
        for child in children:
            with contextlib.suppress(psutil.Error):
                line = " ".join(child.cmdline()).replace("_", "-")  # retitled: "airflow api_server -- ..."
                for part in STANDALONE_PARTS:
                    if f"airflow {part}" in line:
                        found[part] = child.pid
        return found

    return Topology("standalone", demo.AirflowAPI(airflow_url, home), mlflow_url, data_root, home,
                    home / "standalone.log", components, groups.stop_all, round(time.monotonic() - began, 1),
                    required=("mlflow", *STANDALONE_PARTS))


# ---------------------------------------------------------------------------------------------- resources
class Sampler(threading.Thread):
    """CPU seconds and memory (PSS, summed) of each component's process tree, sampled every second. CPU counts the
    processes alive now and what their reaped children used (``children_user``), so tasks that ran and exited are
    included; a task process counts for the component that ran it (Celery worker; the scheduler's LocalExecutor)."""

    def __init__(self, components: Callable[[], dict[str, int]]):
        super().__init__(daemon=True)
        self.components = components
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self.halt = threading.Event()

    @staticmethod
    def tree(pid: int, others: set[int]) -> tuple[float, float]:
        """CPU seconds and PSS (MiB) of ``pid`` and its descendants, less the trees of the other components
        (``airflow standalone`` is the parent of the scheduler, triggerer, ...)."""
        import psutil

        try:
            procs, stack = [], [psutil.Process(pid)]
            while stack:
                proc = stack.pop()
                procs.append(proc)
                stack.extend(c for c in proc.children() if c.pid not in others)
        except psutil.Error:
            return 0.0, 0.0
        cpu = pss = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
                pss += proc.memory_full_info().pss  # shared pages split among sharers: forks do not over-count
        return cpu, pss / 2**20

    def sample(self) -> None:
        components = self.components()
        for name, pid in components.items():
            cpu, pss = self.tree(pid, set(components.values()) - {pid})
            self.first.setdefault(name, cpu)
            self.last[name] = max(cpu, self.last.get(name, 0.0))
            self.peak[name] = max(pss, self.peak.get(name, 0.0))

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(1.0)

    def stop(self) -> dict[str, dict[str, float]]:
        self.halt.set()
        self.join(timeout=10)
        self.sample()
        return {name: {"cpu_seconds": round(self.last[name] - self.first[name], 1),
                       "peak_pss_mib": round(self.peak[name])} for name in sorted(self.last)}


# ---------------------------------------------------------------------------------------------- the feeding
@dataclass
class Flywheel:
    spec: Any  # config.Flywheel: the model, its data root and its DAGs' names, as the example DAGs build them
    first_champion: str = ""
    landed: dict[str, float] = field(default_factory=dict)  # wave -> epoch seconds (written and triggered)
    decided: dict[str, float] = field(default_factory=dict)  # wave -> epoch seconds its report was first seen
    action: dict[str, str] = field(default_factory=dict)
    champion_at: float | None = None
    champion: str = ""
    trigger_retries: int = 0  # landing triggers the API server answered with a 5xx, then retried
    retraining: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.spec.model_name

    @property
    def data_root(self) -> str:
        return self.spec.data_root

    def dag(self, base: str) -> str:
        return self.spec.name(base)


def prepare(top: Topology, fleet: list[Flywheel]) -> None:
    from airflow_agentic.flywheel import demo

    for fw in fleet:  # the DAG processor parses the four files, each with a DAG per flywheel
        for base in ("agentic_ingest", "agentic_monitoring", "agentic_retraining"):
            top.api.wait_dag(fw.dag(base), timeout=600)
            top.api.unpause(fw.dag(base))
    began = time.monotonic()
    for fw in fleet:  # one at a time: MLflow's fluent API (active run, experiment) is per process
        fw.first_champion = str(demo.bootstrap(fw.data_root, top.tracking_uri, model_name=fw.model)["champion_after"])
    say(f"{top.name}: {len(fleet)} first champions in {time.monotonic() - began:.0f} s")
    for fw in fleet:
        demo.wait_watcher(top.home, fw.data_root, timeout=600, log=top.triggerer_log)


def feed_wave(top: Topology, fleet: list[Flywheel], wave: str, number: int, timeout: float) -> None:
    """Every flywheel's batch of the wave lands at once; returns when every decision is written."""
    from airflow_agentic.data import io as dio
    from airflow_agentic.flywheel import demo
    from airflow_agentic.flywheel.streams import make_batch

    name = f"{number:04d}"
    frames = {fw.model: make_batch(WAVES[wave], seed=1000 * number + k, start_id=1_000_000 * number + 10_000 * k)
              for k, fw in enumerate(fleet)}

    def land(fw: Flywheel) -> None:
        """As ``demo.land``, retrying a trigger the API server refuses with a 5xx (as a landing system would):
        SQLite, a single writer, answers concurrent triggers with "database is locked". Retries are counted."""
        import httpx

        target = demo.data_paths(fw.data_root)["landing"] / f"{name}.parquet"
        dio.write_frame(frames[fw.model], target)
        fw.landed[wave] = time.time()  # landed: written; the trigger (and its retries) count in the delay
        for attempt in range(20):
            try:
                top.api.trigger(fw.dag("agentic_ingest"), {"source": str(target), "batch": name})
                break
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code < 500 or attempt == 19:
                    raise
                fw.trigger_retries += 1
                time.sleep(1 + attempt)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(land, fleet))
    say(f"{top.name}: wave {wave!r} landed on {len(fleet)} flywheels (load {uptime()})")
    reports = {fw.model: demo.data_paths(fw.data_root)["reports"] / f"{name}.json" for fw in fleet}
    deadline = time.monotonic() + timeout
    while any(wave not in fw.decided for fw in fleet):
        if time.monotonic() > deadline:
            missing = [fw.model for fw in fleet if wave not in fw.decided]
            raise TimeoutError(f"{top.name}: no decision on wave {wave!r} after {timeout:.0f}s for {missing}")
        top.check_alive()
        for fw in fleet:
            if wave not in fw.decided and reports[fw.model].exists():
                fw.decided[wave] = time.time()
                fw.action[wave] = (dio.read_json(reports[fw.model]).get("decision") or {}).get("action", "")
        time.sleep(1.0)
    say(f"{top.name}: every decision on wave {wave!r} written")


def wait_champions(top: Topology, fleet: list[Flywheel], timeout: float) -> None:
    from airflow_agentic.flywheel import demo

    waiting = [fw for fw in fleet if fw.action.get("drifted") == "request_retraining"]
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        top.check_alive()
        for fw in list(waiting):
            champion = demo.aliases(top.tracking_uri, fw.model).get("champion")
            if champion and champion != fw.first_champion:
                fw.champion, fw.champion_at = champion, time.time()
                waiting.remove(fw)
        time.sleep(1.0)
    if waiting:
        say(f"{top.name}: no new champion after {timeout:.0f}s for {[fw.model for fw in waiting]}")


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else None


def retraining_runs(top: Topology, fw: Flywheel) -> None:
    """The asset-triggered retraining runs, with the drift event's time and the retraining task's start."""
    dag = fw.dag("agentic_retraining")
    for run in top.api.runs(dag):
        if run.get("run_type") != "asset_triggered":
            continue
        rid = run["dag_run_id"]
        ti = top.api.call("GET", f"/dags/{dag}/dagRuns/{rid}/taskInstances/continuous_learning")
        events = top.api.call("GET", f"/dags/{dag}/dagRuns/{rid}/upstreamAssetEvents")["asset_events"]
        fw.retraining.append({"run_id": rid, "state": run["state"], "try_number": ti.get("try_number"),
                              "event": min((_epoch(e["timestamp"]) for e in events), default=None),
                              "queued": _epoch(run.get("queued_at")), "task_start": _epoch(ti.get("start_date")),
                              "task_end": _epoch(ti.get("end_date"))})


def run_topology(name: str, flywheels: int, waves: list[str], timeout: float, scratch: Path) -> dict[str, Any]:
    from airflow_agentic import config
    from airflow_agentic.flywheel import demo

    demo.quiet_libraries()
    models = [f"lf{k + 1:02d}" for k in range(flywheels)]
    result: dict[str, Any] = {"topology": name, "flywheels": flywheels, "waves": waves}
    with contextlib.ExitStack() as exits:
        root = scratch / name
        root.mkdir(parents=True, exist_ok=True)
        say(f"{name}: starting with {flywheels} flywheels (load {uptime()})")
        top = start_stack(root / "stack", models) if name == "stack" else start_standalone(root, models, exits)
        exits.callback(top.stop)
        result["started_seconds"] = top.started_seconds
        fleet = [Flywheel(config.fleet_member(top.data_root, m)) for m in models]
        sampler = None
        try:
            prepare(top, fleet)
            sampler = Sampler(top.components)
            sampler.start()
            began = time.monotonic()
            for number, wave in enumerate(waves, start=1):
                feed_wave(top, fleet, wave, number, timeout)
            wait_champions(top, fleet, timeout)
            time.sleep(8)  # a retraining the harmless wave wrongly asked for would start within the cooldown
            result["feeding_seconds"] = round(time.monotonic() - began, 1)
            for fw in fleet:
                retraining_runs(top, fw)
        except Exception as exc:  # noqa: BLE001 - reported with what was measured so far; the servers are stopped
            result["error"] = f"{type(exc).__name__}: {exc}"
            say(f"{name}: {result['error']}")
            with contextlib.suppress(OSError):  # the scratch folder goes with the run: keep why it failed
                lines = top.triggerer_log.read_text(errors="replace").splitlines()
                result["log_errors"] = [line for line in lines if "Error" in line][-10:]
                for line in result["log_errors"]:
                    say(f"  {line[:240]}")
        if sampler is not None:
            result["components"] = sampler.stop()
        result["load_after"] = uptime()
        result["per_flywheel"] = [{**{k: v for k, v in fw.__dict__.items() if k != "spec"}, "model": fw.model,
                                   "data_root": fw.data_root} for fw in fleet]
    return result


# ---------------------------------------------------------------------------------------------- report
def _stats(values: list[float]) -> dict[str, float] | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return {"n": len(values), "median": round(statistics.median(values), 1), "p90": round(p90, 1),
            "max": round(values[-1], 1)}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    fleet = result.get("per_flywheel", [])
    out: dict[str, Any] = {}
    for wave in result["waves"]:
        out[f"landed -> decision ({wave})"] = _stats([fw["decided"][wave] - fw["landed"][wave] for fw in fleet
                                                      if wave in fw["decided"] and wave in fw["landed"]])
    runs = [(fw, r) for fw in fleet for r in fw["retraining"]]
    firsts = [(fw, min(rs, key=lambda r: r["queued"] or 0)) for fw in fleet if (rs := fw["retraining"])]
    out["drift report -> drift event"] = _stats([r["event"] - fw["decided"]["drifted"] for fw, r in firsts
                                                 if r["event"] and "drifted" in fw["decided"]])
    out["drift event -> retraining task start"] = _stats([r["task_start"] - r["event"] for _, r in firsts
                                                          if r["task_start"] and r["event"]])
    out["retraining task"] = _stats([r["task_end"] - r["task_start"] for _, r in firsts
                                     if r["task_end"] and r["task_start"]])
    out["drifted batch landed -> new champion"] = _stats([fw["champion_at"] - fw["landed"]["drifted"] for fw in fleet
                                                          if fw["champion_at"] and "drifted" in fw["landed"]])
    n = len(fleet)
    out["outcome"] = {
        "harmless wave: no retraining asked": sum(fw["action"].get("harmless") not in (None, "request_retraining")
                                                   for fw in fleet) if "harmless" in result["waves"] else None,
        "drifted wave: retraining asked": sum(fw["action"].get("drifted") == "request_retraining" for fw in fleet),
        "new champion": sum(bool(fw["champion"]) for fw in fleet),
        "retraining runs": len(runs),
        "retraining runs succeeded": sum(r["state"] == "success" for _, r in runs),
        "landing triggers refused (5xx, retried)": sum(fw.get("trigger_retries", 0) for fw in fleet),
        "flywheels": n,
    }
    return out


def fmt(stats: dict[str, float] | None) -> str:
    return "-" if not stats else f"{stats['median']} / {stats['p90']} / {stats['max']} (n={stats['n']})"


def report(results: list[dict[str, Any]]) -> None:
    names = [r["topology"] for r in results]
    summaries = [summarize(r) for r in results]
    both = names == ["stack", "standalone"]
    header = ["", *names, *(["stack / standalone (median)"] if both else [])]
    rows = []
    for key in [k for k in summaries[0] if k != "outcome"]:
        ratio = []
        if both:
            stack, alone = summaries[0][key], summaries[1][key]
            ratio = [f"{stack['median'] / alone['median']:.2f}x" if stack and alone and alone["median"] else "-"]
        rows.append([key, *(fmt(s[key]) for s in summaries), *ratio])
    for key in summaries[0]["outcome"]:
        rows.append([key, *(str(s["outcome"][key]) for s in summaries), *([""] if both else [])])
    print(f"\n## {results[0]['flywheels']} flywheels, waves {', '.join(results[0]['waves'])}; seconds, "
          "median / p90 / max over flywheels\n")
    for row in [header, ["---"] * len(header), *rows]:
        print("| " + " | ".join(row) + " |")
    for r in results:
        extra = f"; error: {r['error']}" if r.get("error") else ""
        print(f"\n### {r['topology']}: started in {r.get('started_seconds')} s, feeding {r.get('feeding_seconds')} s, "
              f"load after {r.get('load_after')}{extra}\n")
        print("| component | CPU s | peak memory (PSS) MiB |\n|---|---|---|")
        components = r.get("components") or {}
        for comp, fig in components.items():
            print(f"| {comp} | {fig['cpu_seconds']} | {fig['peak_pss_mib']} |")
        print(f"| total | {sum(f['cpu_seconds'] for f in components.values()):.1f} | "
              f"{sum(f['peak_pss_mib'] for f in components.values()):.0f} (sum of peaks) |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flywheels", type=int, default=20)
    parser.add_argument("--topology", choices=("both", "stack", "standalone"), default="both")
    parser.add_argument("--waves", default="harmless,drifted", help="comma-separated: harmless, drifted")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for a wave's decisions")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--report", type=Path, nargs="+", help="print the table of runs saved with --json, no run")
    args = parser.parse_args(argv)
    if args.report:
        report([r for path in args.report for r in json.loads(path.read_text())])
        return 0
    waves = [w.strip() for w in args.waves.split(",") if w.strip()]
    unknown = [w for w in waves if w not in WAVES]
    if unknown:
        parser.error(f"unknown waves {unknown}; choose from {sorted(WAVES)}")
    names = ["stack", "standalone"] if args.topology == "both" else [args.topology]
    say(f"{args.flywheels} flywheels on {', '.join(names)}; {os.cpu_count()} cores, load {uptime()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="agentic-load-") as scratch:
        Path(scratch).chmod(0o755)  # PostgreSQL runs as its own user when we are root
        for name in names:
            results.append(run_topology(name, args.flywheels, waves, args.timeout, Path(scratch)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    report(results)
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
