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
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", help="Optuna storage URL (default: a journal file in a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="2,000 rows, 8 planned trials")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--trials", type=int, help="planned trials (the same plan for 1 and 2 workers)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    rows = args.rows or (2000 if args.quick else 4000)
    planned = args.trials or (8 if args.quick else 16)
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
