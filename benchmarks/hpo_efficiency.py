"""How much search does our HPO need to match what a plain random search finds?

Fixed data (make_classification, 8,000 rows), fixed space (histogram gradient boosting, 6 hyperparameters), 4-fold CV
ROC AUC with the same folds and model seed for every search. A 150-trial random search (its own seed) defines the
target score. Then, for each seed, the searches below run until a completed trial reaches the target or the cap
(150 trials):

  ours     the HPO agent's `run_trials` with its defaults (HPOConfig(): TPE, best-gap pruning per CV fold, first
           trial at the family's defaults; the cost term is off by default, `--variant cost:cost_weight=0.002`
           turns it on); only the sampler seed varies
  random   Optuna's RandomSampler, no pruning: what a user would otherwise run

Reported per seed and as medians over seeds: trials and wall seconds to reach the target, trials pruned, and what the
trials cost: fit wall seconds and fit CPU seconds per trial. Ratios ours/random: trials, wall time, fit CPU time (the
CPU ratio is the one to trust on a shared machine). A search that never reaches the target counts with its capped
trials and time.

    .venv/bin/python benchmarks/hpo_efficiency.py            # full: 8,000 rows, 150-trial reference, 5 seeds
    .venv/bin/python benchmarks/hpo_efficiency.py --quick    # 3,000 rows, 40-trial reference, 3 seeds
    .venv/bin/python benchmarks/hpo_efficiency.py --variant median:pruner=median --variant cost:cost_weight=0.002
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

FAMILY = "hist_gradient_boosting"
EVAL_SEED = 0  # CV split and model random_state: the same for every search, so scores compare


@dataclass
class SearchOutcome:
    method: str
    seed: int
    reached: bool
    trials: int
    wall_seconds: float
    best_score: float
    n_pruned: int
    fit_seconds_per_trial: float
    fit_cpu_seconds_per_trial: float
    total_fit_cpu_seconds: float


def dataset(rows: int):
    import pandas as pd
    from sklearn.datasets import make_classification

    from airflow_agentic.models.dataset import Dataset

    X, y = make_classification(n_samples=rows, n_features=20, n_informative=8, n_redundant=4, flip_y=0.03,
                               class_sep=0.8, random_state=42)
    return Dataset(pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), pd.Series(y), categorical=[])


def _outcome(method: str, seed: int, target: float | None, wall: float, records: list[dict]) -> SearchOutcome:
    scores = [r["score"] for r in records if r["score"] is not None]
    best = max(scores, default=float("-inf"))
    cpu = [r["fit_cpu_seconds"] for r in records]
    return SearchOutcome(
        method=method, seed=seed, reached=target is not None and best >= target, trials=len(records),
        wall_seconds=wall, best_score=best, n_pruned=sum(r["state"] == "PRUNED" for r in records),
        fit_seconds_per_trial=statistics.mean(r["fit_seconds"] for r in records) if records else 0.0,
        fit_cpu_seconds_per_trial=statistics.mean(cpu) if cpu else 0.0, total_fit_cpu_seconds=sum(cpu),
    )


def random_search(seed: int, data, target: float | None, cap: int, folds: int) -> SearchOutcome:
    """Plain Optuna: RandomSampler with its defaults, no pruning, the same CV objective."""
    import optuna

    from airflow_agentic.models.families import get_family
    from airflow_agentic.models.hpo import HPOConfig, make_objective

    records: list[dict] = []

    def stop_at_target(study, trial):
        if target is not None and trial.user_attrs.get("score", float("-inf")) >= target:
            study.stop()

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed),
                                pruner=optuna.pruners.NopPruner())
    objective = make_objective(get_family(FAMILY, random_state=EVAL_SEED), data,
                               HPOConfig(cv_folds=folds, seed=EVAL_SEED, pruner="none"),
                               lambda trial, state, record: records.append({**record, "state": state}))
    started = time.perf_counter()
    study.optimize(objective, n_trials=cap, callbacks=[stop_at_target])
    return _outcome("random", seed, target, time.perf_counter() - started, records)


def ours(seed: int, data, target: float | None, cap: int, folds: int, name: str = "ours",
         overrides: dict | None = None) -> SearchOutcome:
    """The product path: run_trials with HPOConfig's defaults (plus `overrides` for ablations)."""
    import optuna

    from airflow_agentic.models.hpo import HPOConfig, run_trials

    def stop_at_target(study, trial):
        if target is not None and trial.user_attrs.get("score", float("-inf")) >= target:
            study.stop()

    config = HPOConfig(**{"cv_folds": folds, "seed": seed, "eval_seed": EVAL_SEED, **(overrides or {})})
    started = time.perf_counter()
    result = run_trials(f"bench-{name}-{seed}", optuna.storages.InMemoryStorage(), FAMILY, data, n_trials=cap,
                        config=config, log_to_mlflow=False, callbacks=[stop_at_target])
    wall = time.perf_counter() - started
    records = [{"score": t.score, "state": t.state, "fit_seconds": t.fit_seconds,
                "fit_cpu_seconds": t.fit_cpu_seconds} for t in result.trials]
    return _outcome(name, seed, target, wall, records)


def _parse_variant(text: str) -> tuple[str, dict]:
    name, _, spec = text.partition(":")
    overrides = {}
    for item in filter(None, spec.split(",")):
        key, _, raw = item.partition("=")
        try:
            overrides[key] = json.loads(raw)
        except ValueError:
            overrides[key] = raw
    return name, overrides


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3,000 rows, 40-trial reference and cap, 3 seeds")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--reference-trials", type=int)
    parser.add_argument("--cap", type=int)
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,...",
                        help="also run ours with these HPOConfig fields changed (an ablation), e.g. "
                             "median:pruner=median or nocost:cost_weight=0")
    parser.add_argument("--no-random", action="store_true", help="skip the random baseline (ablation runs only)")
    parser.add_argument("--target", type=float, help="skip the reference search and use this target (exploration "
                                                     "only: the reported comparison computes it in the same run)")
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
    print(f"data: {rows} rows x 20 features, HGB 6 hyperparameters, {args.folds}-fold CV ROC AUC")
    reference = None
    if args.target is None:
        reference = random_search(10_000, data, None, reference_trials, args.folds)
        target = reference.best_score
        print(f"reference: random search, {reference_trials} trials, {reference.wall_seconds:.1f}s, "
              f"{reference.fit_cpu_seconds_per_trial:.2f} fit CPU s/trial -> target AUC {target:.5f}; "
              f"cap {cap} trials per search\n")
    else:
        target = args.target
        print(f"target AUC {target:.5f} given on the command line (no reference search); cap {cap}\n")

    methods: list[tuple[str, dict | None]] = [("ours", None)] + [_parse_variant(v) for v in args.variant]
    if not args.no_random:
        methods.append(("random", None))
    outcomes: list[SearchOutcome] = []
    print(f"{'method':<12} {'seed':>4} {'reached':>7} {'trials':>6} {'wall s':>8} {'best AUC':>9} {'pruned':>6} "
          f"{'fit s/trial':>11} {'CPU s/trial':>11}")
    for seed in range(args.first_seed, args.first_seed + n_seeds):
        for name, overrides in methods:
            if name == "random":
                outcome = random_search(seed, data, target, cap, args.folds)
            else:
                outcome = ours(seed, data, target, cap, args.folds, name, overrides)
            outcomes.append(outcome)
            print(f"{outcome.method:<12} {seed:>4} {str(outcome.reached):>7} {outcome.trials:>6} "
                  f"{outcome.wall_seconds:>8.1f} {outcome.best_score:>9.5f} {outcome.n_pruned:>6} "
                  f"{outcome.fit_seconds_per_trial:>11.2f} {outcome.fit_cpu_seconds_per_trial:>11.2f}", flush=True)

    summary: dict[str, dict] = {}
    for name, _ in methods:
        runs = [o for o in outcomes if o.method == name]
        summary[name] = {
            "median_trials": statistics.median(o.trials for o in runs),
            "median_wall_seconds": statistics.median(o.wall_seconds for o in runs),
            "median_fit_cpu_seconds": statistics.median(o.total_fit_cpu_seconds for o in runs),
            "reached": f"{sum(o.reached for o in runs)}/{len(runs)}",
            "fit_seconds_per_trial": statistics.mean(o.fit_seconds_per_trial for o in runs),
            "fit_cpu_seconds_per_trial": statistics.mean(o.fit_cpu_seconds_per_trial for o in runs),
            "pruned_share": sum(o.n_pruned for o in runs) / max(sum(o.trials for o in runs), 1),
        }
    print("\nmedian over seeds:")
    for name, s in summary.items():
        print(f"  {name:<12} trials {s['median_trials']:>6.1f}  wall {s['median_wall_seconds']:>7.1f}s  "
              f"fit CPU {s['median_fit_cpu_seconds']:>7.1f}s  reached {s['reached']}  "
              f"per trial: fit {s['fit_seconds_per_trial']:.2f}s, CPU {s['fit_cpu_seconds_per_trial']:.2f}s, "
              f"pruned {s['pruned_share']:.0%}")
    ratios = {}
    if "random" in summary:
        base = summary["random"]
        for name in [m for m in summary if m != "random"]:
            ratios[name] = {
                "trials_ratio": summary[name]["median_trials"] / base["median_trials"],
                "wall_ratio": summary[name]["median_wall_seconds"] / base["median_wall_seconds"],
                "fit_cpu_ratio": summary[name]["median_fit_cpu_seconds"] / base["median_fit_cpu_seconds"],
            }
            print(f"  ratio {name}/random: trials {ratios[name]['trials_ratio']:.2f}x, "
                  f"wall time {ratios[name]['wall_ratio']:.2f}x (goal <= 0.50x), "
                  f"fit CPU {ratios[name]['fit_cpu_ratio']:.2f}x")
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f}s")
    result = {"rows": rows, "reference_trials": reference_trials, "cap": cap, "target": target,
              "reference": asdict(reference) if reference else None, "outcomes": [asdict(o) for o in outcomes],
              "summary": summary, "ratios": ratios}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
