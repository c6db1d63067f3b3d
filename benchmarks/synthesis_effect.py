"""Synthesis for rare classes: does it help, on real held-out data?

An imbalanced stream (four classes, the rarest at about 2 %, six numeric features and one categorical, so the
product's synthesis takes its SMOTENC path) is learned from its first batches with and without
``airflow_agentic.data.synthesis.synthesize_minority``, through the product's model families at fixed parameters (no
HPO). Every model is scored on a later batch of real rows only: recall and precision of the rarest class, macro F1
and accuracy, median over seeds, and the ratio with / without synthesis. What a user would otherwise do about a rare
class, reweighting it (``class_weight="balanced"``), runs in the same loop as a reference for the linear model.

The benchmark also checks what the product promises: every synthetic row is marked, carries no row id, and never
reaches an evaluation (the test rows are real rows of a later batch, and ``evaluation_rows`` drops every synthetic
row of a mixed frame).

    .venv/bin/python benchmarks/synthesis_effect.py [--seeds 5] [--train-batches 4] [--batch-rows 2500]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET, ID_COLUMN = "label", "row_id"
PRIORS = (0.60, 0.25, 0.13, 0.02)  # class 3 is the rare one
NUMERIC = tuple(f"x{i}" for i in range(6))
REGIONS = ("north", "south", "east", "west")


def make_stream(seed: int, batches: int, rows: int, *, sample_seed: int = 0, start_id: int = 0,
                priors: tuple[float, ...] = PRIORS):
    """``batches`` frames of ``rows`` rows from one imbalanced distribution fixed by ``seed`` (class centres and
    region mixes); ``sample_seed`` draws the rows, so a test batch with another ``sample_seed`` is independent of
    the training batches. Columns: row_id, x0..x5, region, label."""
    import pandas as pd

    world = np.random.default_rng(seed)
    k = len(priors)
    centres = world.normal(scale=1.1, size=(k, len(NUMERIC)))
    region_p = world.dirichlet(np.full(len(REGIONS), 2.0), size=k)  # each class has its own mix of regions
    rng = np.random.default_rng([seed, sample_seed])
    frames = []
    for b in range(batches):
        y = rng.choice(k, size=rows, p=priors)
        x = centres[y] + rng.normal(size=(rows, len(NUMERIC)))
        region = np.empty(rows, dtype=object)
        for c in range(k):
            members = np.flatnonzero(y == c)
            region[members] = rng.choice(REGIONS, size=len(members), p=region_p[c])
        frame = pd.DataFrame(x, columns=list(NUMERIC))
        first = start_id + b * rows
        frame.insert(0, ID_COLUMN, np.arange(first, first + rows, dtype=np.int64))
        frame["region"] = region
        frame[TARGET] = y.astype(np.int64)
        frames.append(frame)
    return frames


def scores(y_true: np.ndarray, y_pred: np.ndarray, rare: int) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {
        "rare_recall": float(recall_score(y_true, y_pred, labels=[rare], average="macro", zero_division=0)),
        "rare_precision": float(precision_score(y_true, y_pred, labels=[rare], average="macro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
    }


def check_no_leak(train, synthetic, test) -> None:
    """The product's promises about synthetic rows, asserted on this run's data."""
    from airflow_agentic.data.synthesis import SYNTHETIC_COLUMN, evaluation_rows

    marked = synthetic[SYNTHETIC_COLUMN]
    assert marked.dtype == bool and marked.any(), "synthesis produced no marked rows"
    assert synthetic.loc[marked, ID_COLUMN].isna().all(), "a synthetic row carries a row id"
    real = evaluation_rows(synthetic)
    assert len(real) == len(train) and not real[SYNTHETIC_COLUMN].any(), "evaluation_rows kept a synthetic row"
    assert real[ID_COLUMN].astype("int64").tolist() == train[ID_COLUMN].tolist(), "real training rows changed"
    # The test rows are real rows of a later batch: no synthetic marker, no id shared with training, no null id.
    assert SYNTHETIC_COLUMN not in test.columns and test[ID_COLUMN].notna().all()
    assert not set(test[ID_COLUMN]).intersection(train[ID_COLUMN]), "test rows overlap the training rows"
    # A mixed frame (training rows, synthetic rows and test rows together) evaluates on real rows only.
    import pandas as pd

    mixed = pd.concat([synthetic, test.assign(**{SYNTHETIC_COLUMN: False})], ignore_index=True)
    evaluated = evaluation_rows(mixed)
    assert len(evaluated) == len(train) + len(test) and evaluated[ID_COLUMN].notna().all()


def run_seed(seed: int, args, families: dict[str, dict]) -> dict[tuple[str, str], dict[str, float]]:
    from airflow_agentic.data.synthesis import SYNTHETIC_COLUMN, synthesize_minority
    from airflow_agentic.models.dataset import infer_schema, normalise_frame
    from airflow_agentic.models.families import get_family

    import pandas as pd

    train = pd.concat(make_stream(seed, args.train_batches, args.batch_rows), ignore_index=True)
    # A later batch of the same stream: same classes, rows drawn independently, ids after the training rows'.
    test = make_stream(seed, 1, args.test_rows, sample_seed=1, start_id=len(train))[0]
    synthetic = synthesize_minority(train, TARGET, id_column=ID_COLUMN, random_state=seed)
    check_no_leak(train, synthetic, test)
    rare = int(train[TARGET].value_counts().idxmin())

    features = [*NUMERIC, "region"]
    schema = infer_schema(train[features])
    X_test = normalise_frame(test[features], schema)
    arms = {"without": train, "synthesis": synthetic}
    out: dict[tuple[str, str], dict[str, float]] = {}
    for family_name, variants in families.items():
        for variant, params in variants.items():
            for arm, frame in arms.items():
                if variant != "default" and arm == "synthesis":
                    continue  # the reweighted reference is trained on the real rows only
                X = normalise_frame(frame[features], schema)
                y = frame[TARGET].to_numpy()
                family = get_family(family_name, random_state=seed)
                started = time.perf_counter()
                model = family.fit(X, y, params, schema)
                fit_seconds = time.perf_counter() - started
                result = scores(test[TARGET].to_numpy(), np.asarray(family.predict(model, X_test)), rare)
                result["fit_seconds"] = fit_seconds
                result["train_rows"] = float(len(frame))
                result["synthetic_rows"] = float(frame[SYNTHETIC_COLUMN].sum()) if SYNTHETIC_COLUMN in frame else 0.0
                label = family_name if variant == "default" else f"{family_name} ({variant})"
                out[(label, arm)] = result
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--train-batches", type=int, default=4)
    parser.add_argument("--batch-rows", type=int, default=2500)
    parser.add_argument("--test-rows", type=int, default=20_000)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    families = {
        "logistic_regression": {"default": {"C": 1.0, "class_weight": "none"},
                                "class_weight=balanced": {"C": 1.0, "class_weight": "balanced"}},
        "hist_gradient_boosting": {"default": {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31,
                                               "min_samples_leaf": 20}},
    }
    started = time.perf_counter()
    per_seed: list[dict] = []
    for seed in range(args.seeds):
        per_seed.append(run_seed(seed, args, families))
        print(f"seed {seed}: done ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)

    first = per_seed[0]
    train_rows = int(first[("logistic_regression", "without")]["train_rows"])
    synth_rows = int(first[("logistic_regression", "synthesis")]["synthetic_rows"])
    print(f"\nimbalanced stream: {len(PRIORS)} classes, priors {PRIORS}; train = {args.train_batches} batches x "
          f"{args.batch_rows:,} rows ({train_rows:,} real rows, ~{int(train_rows * min(PRIORS)):,} of the rare "
          f"class), synthesis adds {synth_rows:,} SMOTENC rows (seed 0); test = {args.test_rows:,} real rows of a "
          f"later batch; {args.seeds} seeds, medians.")
    print("checks passed on every seed: synthetic rows marked, without row id, absent from every evaluation.\n")
    metrics = ("rare_recall", "rare_precision", "macro_f1", "accuracy")
    header = f"{'model':42s} {'arm':10s}" + "".join(f"{m:>15s}" for m in metrics) + f"{'fit s':>8s}"
    print(header)
    print("-" * len(header))
    labels = list(dict.fromkeys(label for label, _ in first))
    medians: dict[tuple[str, str], dict[str, float]] = {}
    for label in labels:
        for arm in ("without", "synthesis"):
            if (label, arm) not in first:
                continue
            med = {m: float(np.median([s[(label, arm)][m] for s in per_seed])) for m in (*metrics, "fit_seconds")}
            medians[(label, arm)] = med
            print(f"{label:42s} {arm:10s}" + "".join(f"{med[m]:15.3f}" for m in metrics)
                  + f"{med['fit_seconds']:8.2f}")
    print("\nratio with / without synthesis (median over seeds of the per-seed ratio; >1 means synthesis helps):")
    print(f"{'model':42s}" + "".join(f"{m:>15s}" for m in metrics) + f"{'seeds better':>15s}")
    for label in labels:
        if (label, "synthesis") not in first:
            continue
        ratios = {m: float(np.median([s[(label, "synthesis")][m] / max(s[(label, "without")][m], 1e-9)
                                      for s in per_seed])) for m in metrics}
        better = sum(s[(label, "synthesis")]["rare_recall"] > s[(label, "without")]["rare_recall"] for s in per_seed)
        print(f"{label:42s}" + "".join(f"{ratios[m]:15.2f}" for m in metrics)
              + f"{better:>9d} / {len(per_seed)} (rare recall)")
    reference = medians.get(("logistic_regression (class_weight=balanced)", "without"))
    if reference:
        smote = medians[("logistic_regression", "synthesis")]
        print(f"\nreference, logistic regression reweighted instead of synthesis: rare recall "
              f"{reference['rare_recall']:.3f} (synthesis {smote['rare_recall']:.3f}), macro F1 "
              f"{reference['macro_f1']:.3f} (synthesis {smote['macro_f1']:.3f})")
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
