"""How much search does our HPO need to match what a plain random search finds?

Fixed data (make_classification, 8,000 rows), fixed space (histogram gradient boosting, 6 hyperparameters), 4-fold CV
ROC AUC. A 150-trial random search (its own seed) defines the target score. Then, for each seed, two searches run until
a completed trial reaches the target or the cap (150 trials):

  ours     TPE (seeded, multivariate) + median pruning per CV fold   [+ cost penalty with --cost-penalty]
  random   Optuna RandomSampler, no pruning (what a user would otherwise run)

Reported: trials and wall seconds to reach the target per seed, medians over seeds, ratios ours/random and the mean
cost (fit seconds) per trial. A search that never reaches the target counts with its capped trials and time.

    .venv/bin/python benchmarks/hpo_efficiency.py            # full: 8,000 rows, 150-trial reference, 5 seeds
    .venv/bin/python benchmarks/hpo_efficiency.py --quick    # 3,000 rows, 40-trial reference, 3 seeds
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@dataclass
class SearchOutcome:
    method: str
    seed: int
    reached: bool
    trials: int
    wall_seconds: float
    best_score: float
    n_pruned: int
    mean_fit_seconds_per_trial: float


def dataset(rows: int):
    import pandas as pd
    from sklearn.datasets import make_classification

    from airflow_agentic.models.dataset import Dataset

    X, y = make_classification(n_samples=rows, n_features=20, n_informative=8, n_redundant=4, flip_y=0.03,
                               class_sep=0.8, random_state=42)
    return Dataset(pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), pd.Series(y), categorical=[])


def search(method: str, seed: int, data, target: float | None, cap: int, folds: int,
           cost_penalty: float = 0.0) -> SearchOutcome:
    import optuna

    from airflow_agentic.models.families import get_family
    from airflow_agentic.models.hpo import HPOConfig, make_objective, make_pruner, make_sampler

    if method == "random":
        config = HPOConfig(cv_folds=folds, sampler="random", pruner="none", seed=seed)
    else:
        config = HPOConfig(cv_folds=folds, sampler="tpe", pruner="median", seed=seed, n_startup_trials=5,
                           cost_penalty=cost_penalty)
    # Same folds for every search: the fold split seed is fixed, only the sampler seed varies.
    fold_config = HPOConfig(**{**config.to_dict(), "seed": 0})
    study = optuna.create_study(direction="maximize", sampler=make_sampler(config.sampler, seed, 5),
                                pruner=make_pruner(config.pruner, 5))
    fit_seconds: list[float] = []
    best = {"score": float("-inf")}

    def on_end(trial, state, record):
        fit_seconds.append(record["fit_seconds"])
        if record["score"] is not None:
            best["score"] = max(best["score"], record["score"])

    def stop_at_target(study_, trial):
        if target is not None and best["score"] >= target:
            study_.stop()

    objective = make_objective(get_family("hist_gradient_boosting", random_state=0), data, fold_config, on_end)
    started = time.perf_counter()
    study.optimize(objective, n_trials=cap, callbacks=[stop_at_target])
    wall = time.perf_counter() - started
    trials = len(study.trials)
    return SearchOutcome(
        method=method if not cost_penalty else f"{method}+cost", seed=seed,
        reached=target is not None and best["score"] >= target, trials=trials, wall_seconds=wall,
        best_score=best["score"], n_pruned=sum(t.state.name == "PRUNED" for t in study.trials),
        mean_fit_seconds_per_trial=sum(fit_seconds) / max(len(fit_seconds), 1),
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3,000 rows, 40-trial reference and cap, 3 seeds")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--reference-trials", type=int)
    parser.add_argument("--cap", type=int)
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--cost-penalty", type=float, default=0.0,
                        help="also run ours with objective = AUC - penalty * mean fit seconds per fold")
    parser.add_argument("--json", type=Path, help="write the outcomes here")
    args = parser.parse_args(argv)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = args.rows or (3000 if args.quick else 8000)
    reference_trials = args.reference_trials or (40 if args.quick else 150)
    cap = args.cap or reference_trials
    n_seeds = args.seeds or (3 if args.quick else 5)
    data = dataset(rows)

    started = time.perf_counter()
    reference = search("random", 10_000, data, None, reference_trials, args.folds)
    target = reference.best_score
    print(f"data: {rows} rows x 20 features, HGB 6 hyperparameters, {args.folds}-fold CV ROC AUC")
    print(f"reference: random search, {reference_trials} trials, {reference.wall_seconds:.1f}s "
          f"-> target AUC {target:.5f}; cap {cap} trials per search\n")

    methods = ["ours", "random"] + (["ours+cost"] if args.cost_penalty else [])
    outcomes: list[SearchOutcome] = []
    header = f"{'method':<10} {'seed':>4} {'reached':>7} {'trials':>6} {'wall s':>8} {'best AUC':>9} {'pruned':>6} {'fit s/trial':>11}"
    print(header)
    for seed in range(n_seeds):
        for method in methods:
            name = "random" if method == "random" else "ours"
            penalty = args.cost_penalty if method == "ours+cost" else 0.0
            outcome = search(name, seed, data, target, cap, args.folds, penalty)
            outcomes.append(outcome)
            print(f"{outcome.method:<10} {seed:>4} {str(outcome.reached):>7} {outcome.trials:>6} "
                  f"{outcome.wall_seconds:>8.1f} {outcome.best_score:>9.5f} {outcome.n_pruned:>6} "
                  f"{outcome.mean_fit_seconds_per_trial:>11.2f}", flush=True)

    summary: dict[str, dict] = {}
    for method in {o.method for o in outcomes}:
        runs = [o for o in outcomes if o.method == method]
        summary[method] = {
            "median_trials": statistics.median(o.trials for o in runs),
            "median_wall_seconds": statistics.median(o.wall_seconds for o in runs),
            "reached": f"{sum(o.reached for o in runs)}/{len(runs)}",
            "mean_fit_seconds_per_trial": statistics.mean(o.mean_fit_seconds_per_trial for o in runs),
        }
    print("\nmedian over seeds:")
    for method, s in sorted(summary.items()):
        print(f"  {method:<10} trials {s['median_trials']:>6.1f}  wall {s['median_wall_seconds']:>7.1f}s  "
              f"reached {s['reached']}  mean fit s/trial {s['mean_fit_seconds_per_trial']:.2f}")
    ratios = {}
    for method in [m for m in summary if m != "random"]:
        ratios[method] = {
            "trials_ratio": summary[method]["median_trials"] / summary["random"]["median_trials"],
            "wall_ratio": summary[method]["median_wall_seconds"] / summary["random"]["median_wall_seconds"],
        }
        print(f"  ratio {method}/random: trials {ratios[method]['trials_ratio']:.2f}x, "
              f"wall time {ratios[method]['wall_ratio']:.2f}x (goal <= 0.50x)")
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f}s")
    result = {"rows": rows, "reference_trials": reference_trials, "cap": cap, "target": target,
              "reference": asdict(reference), "outcomes": [asdict(o) for o in outcomes], "summary": summary,
              "ratios": ratios}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
