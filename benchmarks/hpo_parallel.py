"""How much faster is one planned HPO study with 2 workers than with 1, and is its best the same?

The same planned study (``run_planned_trials``: a fixed plan of settings, no pruning, scored by the metric alone) runs
twice on one storage: once by 1 worker process, once by 2 worker processes at the same time (worker ``w`` runs plan
positions ``w, w + 2, ...``), as mapped ``HPOTrialsOperator`` tasks on two Celery workers would. Each worker is a
process of its own with one BLAS/OpenMP thread, so 2 workers can use 2 cores. Reported: wall seconds of the search
(first trial start to last trial end over the workers; imports and data loading excluded, they are the same in
both), the speed-up 1-worker wall / 2-worker wall, and whether the two bests are identical (setting, score, plan
position). Run it on an idle machine: the speed-up is bounded by the free cores (print ``uptime`` beside it).

    .venv/bin/python benchmarks/hpo_parallel.py                         # journal file storage in a temp folder
    .venv/bin/python benchmarks/hpo_parallel.py --storage postgresql://postgres@127.0.0.1:5432/optuna
    .venv/bin/python benchmarks/hpo_parallel.py --quick                 # fewer rows and trials

``--stack``: the same comparison through Airflow on the production topology (``scripts/stack.py``: CeleryExecutor,
two Celery workers with 2 slots each, Optuna on PostgreSQL, data on S3). The benchmark's data goes to the stack's
S3 and ``agentic_model_search`` runs once per worker count (1, 2, 4 mapped trial tasks) on the same plan. Reported
per run: wall seconds of the DAG run (start to end) and of the trial tasks (first start to last end, from the task
instances' dates), the speed-up over 1 task, which Celery worker ran each mapped task (from the worker's log line
naming the task instance: both workers share one host name), and whether the bests are identical. Task start-up
(a fresh interpreter importing sklearn, optuna, mlflow) is inside the trial tasks' wall time, as in production.

    .venv/bin/python benchmarks/hpo_parallel.py --stack --quick          # starts a stack in a temp folder, stops it
    .venv/bin/python benchmarks/hpo_parallel.py --stack --stack-root /tmp/stack   # one already running
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FAMILY = "hist_gradient_boosting"


def dataset(rows: int):
    import pandas as pd
    from sklearn.datasets import make_classification

    from airflow_agentic.models.dataset import Dataset

    X, y = make_classification(n_samples=rows, n_features=20, n_informative=8, n_redundant=4, flip_y=0.03,
                               class_sep=0.8, random_state=42)
    return Dataset(pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), pd.Series(y, name="label"))


def _worker(study: str, storage: str, rows: int, planned: int, folds: int, worker: int, n_workers: int,
            out: mp.Queue) -> None:
    import optuna

    from airflow_agentic.models.hpo import PLAN_INDEX, HPOConfig, run_planned_trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = dataset(rows)
    started = time.time()
    result = run_planned_trials(study, storage, FAMILY, data, planned, worker_id=worker, n_workers=n_workers,
                                config=HPOConfig(cv_folds=folds, seed=0, metric="roc_auc"), log_to_mlflow=False)
    ended = time.time()
    best = [t for t in optuna.load_study(study_name=study, storage=_storage(storage)).get_trials(deepcopy=False)
            if t.number == result.best_trial_number]
    out.put({"worker": worker, "started": started, "ended": ended, "trials": len(result.trials),
             "fit_seconds": result.total_fit_seconds, "best_params": result.best_params,
             "best_score": result.best_score, "best_plan_index": best[0].user_attrs.get(PLAN_INDEX) if best else None})


def _storage(storage: str):
    from airflow_agentic.models.hpo import resolve_storage

    return resolve_storage(storage)


def search(storage: str, n_workers: int, rows: int, planned: int, folds: int) -> dict:
    """One planned study run by ``n_workers`` processes at once; its wall time and the study's best."""
    study = f"hpo-parallel-{n_workers}-{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(study, storage, rows, planned, folds, w, n_workers, out))
             for w in range(n_workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"a worker exited with {p.exitcode}")
    last = max(results, key=lambda r: r["ended"])  # its summary saw every trial of the study
    return {"workers": n_workers, "wall_seconds": max(r["ended"] for r in results) - min(r["started"] for r in results),
            "trials_per_worker": [r["trials"] for r in sorted(results, key=lambda r: r["worker"])],
            "fit_seconds": sum(r["fit_seconds"] for r in results), "best_params": last["best_params"],
            "best_score": last["best_score"], "best_plan_index": last["best_plan_index"]}


# -- --stack: the same plan as mapped tasks of agentic_model_search on the stack's Celery workers --------------------
STACK_DAG = "agentic_model_search"
STACK_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "stack.py"


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _worker_of(logs: Path, ti_id: str) -> str | None:
    """The Celery worker that took the task instance: its log names the TI id ("Executing workload in Celery")."""
    for worker in ("worker1", "worker2"):
        for log in logs.glob(f"{worker}*.log"):
            if f"id=UUID('{ti_id}')" in log.read_text(errors="replace"):
                return worker
    return None


def _wait_workers(info: dict, timeout: float = 120) -> None:
    from celery import Celery

    app = Celery(broker=info["env"]["AIRFLOW__CELERY__BROKER_URL"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if {n.split("@")[0] for r in app.control.ping(timeout=2) for n in r} >= {"worker1", "worker2"}:
                return
        except Exception:  # noqa: BLE001 - the broker may still be starting
            pass
        time.sleep(2)
    raise TimeoutError(f"both Celery workers not ready after {timeout:.0f} s")


def _seconds(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def stack_search(api, info: dict, data: str, model: str, n_workers: int, planned: int, metric: str) -> dict:
    """One run of agentic_model_search with ``n_workers`` mapped trial tasks; its timings, workers and best."""
    import optuna

    from airflow_agentic.models.hpo import PLAN_INDEX, best_trial

    run_id = api.trigger(STACK_DAG, {"data": data, "model_name": model, "family": FAMILY, "n_workers": n_workers,
                                     "trials_per_worker": planned // n_workers, "metric": metric})
    state = api.wait_run(STACK_DAG, run_id, 3600)
    if state != "success":
        raise RuntimeError(f"{STACK_DAG} {run_id} ended {state}")
    run = api.call("GET", f"/dags/{STACK_DAG}/dagRuns/{run_id}")
    tis = api.call("GET", f"/dags/{STACK_DAG}/dagRuns/{run_id}/taskInstances/trials/listMapped")["task_instances"]
    first, last = min(t["start_date"] for t in tis), max(t["end_date"] for t in tis)
    # Each task's own search time (run_planned_trials' wall seconds, in its XCom): the trials without task start-up.
    searches = [api.call("GET", f"/dags/{STACK_DAG}/dagRuns/{run_id}/taskInstances/trials/xcomEntries/return_value",
                         params={"map_index": t["map_index"], "deserialize": True, "stringify": False})["value"]
                for t in tis]
    study = optuna.load_study(study_name=f"{model}-{run_id}", storage=info["env"]["AIRFLOW__AGENTIC__OPTUNA_STORAGE"])
    best = best_trial(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    return {"workers": n_workers, "run_id": run_id, "run_seconds": _seconds(run["start_date"], run["end_date"]),
            "trials_seconds": _seconds(first, last), "search_seconds": max(x["wall_seconds"] for x in searches),
            "trials_per_task": [x["trials_run"] for x in searches],
            "ran_on": {t["map_index"]: _worker_of(Path(info["logs"]), t["id"]) for t in tis},
            "best_params": best.params, "best_score": best.value, "best_plan_index": best.user_attrs.get(PLAN_INDEX)}


def main_stack(args: argparse.Namespace, rows: int, planned: int) -> dict:
    import pandas as pd

    from airflow_agentic.data import io as dio
    from airflow_agentic.flywheel import demo

    counts = [int(n) for n in args.stack_workers.split(",")]
    if any(planned % n for n in counts):
        raise SystemExit(f"--trials {planned} must divide by every worker count {counts}")
    scratch = None
    root = Path(args.stack_root) if args.stack_root else None
    if root is None:  # not under a mode-700 folder: PostgreSQL runs as its own user when we are root
        scratch = Path(tempfile.mkdtemp(prefix="hpo-parallel-stack-"))
        scratch.chmod(0o755)
        root = scratch / "stack"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW"))}
        subprocess.run([sys.executable, str(STACK_SCRIPT), "--detach", "--root", str(root)], env=env, check=True,
                       timeout=900)
    try:
        info = json.loads((root / "stack.json").read_text())
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = info["env"]["AIRFLOW_CONN_AWS_DEFAULT"]  # this process writes to S3
        tag = uuid.uuid4().hex[:8]
        data = f"{info['env']['AIRFLOW__AGENTIC__DATA_ROOT']}/benchmarks/hpo-parallel-{tag}/train.parquet"
        frame = dataset(rows)
        dio.write_frame(pd.concat([frame.X, frame.y], axis=1), data)
        api = demo.AirflowAPI(info["urls"]["airflow"], Path(info["home"]), username=info["login"]["user"])
        api.wait_dag(STACK_DAG, 180)
        api.unpause(STACK_DAG)
        _wait_workers(info)
        load_before = _uptime()
        runs = [stack_search(api, info, data, f"hpo-parallel-{tag}-{n}", n, planned, "roc_auc") for n in counts]
        load_after = _uptime()
    finally:
        if scratch is not None:
            subprocess.run([sys.executable, str(STACK_SCRIPT), "--stop", "--root", str(root)], timeout=300)
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    base = runs[0]
    for r in runs:
        r["speed_up_run"] = base["run_seconds"] / r["run_seconds"]
        r["speed_up_trials"] = base["trials_seconds"] / r["trials_seconds"]
        r["same_best"] = (r["best_params"], r["best_score"], r["best_plan_index"]) == \
            (base["best_params"], base["best_score"], base["best_plan_index"])
    report = {"mode": "stack", "family": FAMILY, "rows": rows, "planned_trials": planned, "folds": 3,
              "cpus": os.cpu_count(), "uptime_before": load_before, "uptime_after": load_after, "runs": runs}
    print(f"{STACK_DAG} on the stack (CeleryExecutor, worker1 + worker2 x 2 slots, Optuna on PostgreSQL): {FAMILY}, "
          f"{rows} rows, {planned} planned trials, 3-fold CV, {report['cpus']} CPUs")
    print(f"uptime before: {load_before}\nuptime after:  {load_after}")
    print("run s: DAG run start to end; trials s: first trial task start to last end; search s: the longest task's "
          "time in run_planned_trials (no task start-up)")
    print(f"{'tasks':>6} {'run s':>7} {'trials s':>9} {'search s':>9} {'speed-up run/trials':>20}  {'ran on':<40} "
          f"best (plan position, score), same as 1 task")
    for r in runs:
        ran_on = ",".join(f"{i}:{w}" for i, w in sorted(r["ran_on"].items()))
        print(f"{r['workers']:>6} {r['run_seconds']:>7.1f} {r['trials_seconds']:>9.1f} {r['search_seconds']:>9.1f} "
              f"{r['speed_up_run']:>9.2f}x/{r['speed_up_trials']:.2f}x  {ran_on:<40} #{r['best_plan_index']} "
              f"{r['best_score']:.5f} {r['same_best']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", help="Optuna storage URL (default: a journal file in a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="2,000 rows, 8 planned trials")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--trials", type=int, help="planned trials (the same plan for 1 and 2 workers)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--stack", action="store_true",
                        help="run the plan as agentic_model_search's mapped tasks on the stack's Celery workers")
    parser.add_argument("--stack-root", help="with --stack: the root of a running stack (default: start one)")
    parser.add_argument("--stack-workers", default="1,2,4", help="with --stack: mapped trial task counts to compare")
    args = parser.parse_args(argv)
    rows = args.rows or (2000 if args.quick else 4000)
    planned = args.trials or (8 if args.quick else 16)
    if args.stack:
        return main_stack(args, rows, planned)
    # One thread per worker process: two processes then use the two cores instead of fighting over them.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    tmp = tempfile.TemporaryDirectory(prefix="hpo-parallel-")
    storage = args.storage or f"journal://{tmp.name}/optuna.journal"
    load_before = os.getloadavg()
    serial = search(storage, 1, rows, planned, args.folds)
    parallel = search(storage, 2, rows, planned, args.folds)
    load_after = os.getloadavg()
    tmp.cleanup()
    same = (serial["best_params"], serial["best_score"], serial["best_plan_index"]) == \
        (parallel["best_params"], parallel["best_score"], parallel["best_plan_index"])
    report = {"family": FAMILY, "rows": rows, "planned_trials": planned, "folds": args.folds,
              "storage": storage.split("://", 1)[0], "cpus": os.cpu_count(), "load_before": load_before,
              "load_after": load_after, "serial": serial, "parallel": parallel,
              "speed_up": serial["wall_seconds"] / parallel["wall_seconds"], "same_best": same}
    print(f"{FAMILY}, {rows} rows, {planned} planned trials, {args.folds}-fold CV, storage "
          f"{report['storage']}, {report['cpus']} CPUs, load {load_before[0]:.2f} -> {load_after[0]:.2f}")
    print(f"{'workers':>8} {'wall s':>8} {'trials/worker':>14} {'fit s':>8}  best (plan position, score)")
    for r in (serial, parallel):
        print(f"{r['workers']:>8} {r['wall_seconds']:>8.1f} {str(r['trials_per_worker']):>14} {r['fit_seconds']:>8.1f}"
              f"  #{r['best_plan_index']} {r['best_score']:.5f}")
    print(f"speed-up of 2 workers over 1: {report['speed_up']:.2f}x; same best: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
