"""Detection delay and false alarms of the flywheel's monitoring rules against what a user would otherwise run.

Every stream is replayed batch by batch (1,000 rows a batch, labels after ``label_delay`` batches):

* ``agentic``      the backtest's ``agentic`` policy in-process: the Data Steward, the drift check against the
                   champion's profile, the Monitoring agent's rule policy through the agent loop, gated retraining
                   (airflow_agentic.flywheel.backtest, the same turn functions the DAGs call). An alarm is a batch whose
                   monitoring decision was ``request_retraining`` (kind drift or refit, both counted).
* ``agentic-flag`` the same run, but an alarm whenever the drift detector flagged the batch (detect_drift: KS /
                   chi-squared per feature with Benjamini-Hochberg, plus prediction drift): what retraining on every
                   drift report would do.
* ``ks-bonf``      plain scipy.stats.ks_2samp on every feature of the raw batch (NaN dropped) against the training
                   data, Bonferroni at alpha 0.05, alarm when any column drifts; on an alarm the user retrains, so the
                   reference becomes the last 5 batches.
* ``adwin``        river.drift.ADWIN (defaults) on the per-row 0/1 error stream of the deployed model as labels
                   arrive; on a detection the model is refit on the last 5 labelled batches and ADWIN starts over.

Scoring (``score_alarms``): each true drift d owns the batches d .. d + max_delay (cut at the next drift). The first
alarm in that window is its detection (delay = alarm - d, in batches of arrival, label delay included); more alarms
in the window are repeats (follow-up retrains); an alarm outside every window is a false alarm, so every alarm on a
stream without true drift (stationary, harmless covariate shift, corrupted bursts) is one.

Streams: the public scenarios in ../shared/scenarios/data (truth.json) and generated streams of every kind the
scenarios README lists (tests/flywheel/streams.py: stationary, abrupt, gradual, recurring, covariate shift that does
and does not hurt, label-prior shift, corrupted bursts, delayed labels).

    python benchmarks/drift_detection.py            # 3 public + 9 generated streams (3-6 min on 2 shared cores)
    python benchmarks/drift_detection.py --quick    # 1 public + 4 short generated streams (1-2 min)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
PUBLIC = REPO.parent / "shared" / "scenarios" / "data"
WINDOW = 5  # the backtest's retraining window, used by the baselines' retrains too
ALPHA = 0.05
METHODS = ("agentic", "agentic-flag", "ks-bonf", "adwin")


# ---------------------------------------------------------------------------------------------- scoring
@dataclass
class AlarmScore:
    detections: dict[int, int | None]  # true drift -> detecting alarm (None: missed)
    false_alarms: list[int] = field(default_factory=list)
    repeats: list[int] = field(default_factory=list)

    @property
    def delays(self) -> list[int]:
        return [a - d for d, a in self.detections.items() if a is not None]

    @property
    def missed(self) -> int:
        return sum(a is None for a in self.detections.values())


def score_alarms(alarms: list[int], drifts: list[int], *, max_delay: int) -> AlarmScore:
    """Match alarm batches to true drift batches: the first alarm in d .. min(d + max_delay, next drift - 1) detects
    d, later ones in that window are repeats, alarms outside every window are false alarms."""
    drifts = sorted(set(drifts))
    windows = []
    for k, d in enumerate(drifts):
        end = d + max_delay
        if k + 1 < len(drifts):
            end = min(end, drifts[k + 1] - 1)
        windows.append((d, end))
    score = AlarmScore(detections={d: None for d in drifts})
    for a in sorted(set(alarms)):
        owner = next((d for d, end in windows if d <= a <= end), None)
        if owner is None:
            score.false_alarms.append(a)
        elif score.detections[owner] is None:
            score.detections[owner] = a
        else:
            score.repeats.append(a)
    return score


# ---------------------------------------------------------------------------------------------- streams
@dataclass
class Stream:
    name: str
    kind: str
    folder: Path
    drifts: list[int]
    warmup: int
    delay: int
    n_batches: int


def _load_stream_maker() -> Any:
    spec = importlib.util.spec_from_file_location("flywheel_test_streams", REPO / "tests" / "flywheel" / "streams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_streams(names: list[str] | None) -> list[Stream]:
    truths = json.loads((PUBLIC / "truth.json").read_text())
    out = []
    for name, truth in truths.items():
        if names is not None and name not in names:
            continue
        meta = json.loads((PUBLIC / name / "scenario.json").read_text())
        kind = "stationary" if not truth["drifts"] else "abrupt"
        out.append(Stream(name, kind, PUBLIC / name, list(truth["drifts"]), int(meta.get("warmup_batches", 5)),
                          int(meta.get("label_delay", 0)), int(truth["batches"])))
    return out


def generated_streams(root: Path, specs: list[tuple[str, dict[str, Any]]]) -> list[Stream]:
    maker = _load_stream_maker()
    out = []
    for kind, kw in specs:
        truth = maker.make_stream(kind, root, **kw)
        out.append(Stream(truth["name"], kind, root / truth["name"], list(truth["drifts"]),
                          int(truth["warmup_batches"]), int(kw.get("label_delay", 0)), int(truth["batches"])))
    return out


def stream_specs(quick: bool) -> list[tuple[str, dict[str, Any]]]:
    if quick:
        base = {"n_batches": 24, "drift_at": 12}
        return [(k, {**base, "seed": 20 + i}) for i, k in enumerate(("abrupt", "stationary", "covariate_harmless",
                                                                     "corrupted"))]
    base = {"n_batches": 40, "drift_at": 15}
    kinds = ("stationary", "abrupt", "gradual", "recurring", "covariate_harmless", "covariate_harmful", "label_prior",
             "corrupted")
    specs = [(k, {**base, "seed": 10 + i}) for i, k in enumerate(kinds)]
    specs.append(("abrupt", {**base, "seed": 30, "label_delay": 3}))
    return specs


def _batches(stream: Stream) -> list[Any]:
    import pandas as pd

    return [pd.read_parquet(p) for p in sorted((stream.folder / "batches").glob("*.parquet"))]


# ---------------------------------------------------------------------------------------------- contenders
def agentic_alarms(stream: Stream) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """The flywheel's own loop (backtest ``agentic`` policy): retrain requests and drift-detector flags."""
    from airflow_agentic.flywheel.backtest import run_backtest

    result = run_backtest(stream.folder, "agentic")
    retrain = [b["batch"] for b in result.batches if b.get("decision") == "request_retraining"]
    flagged = [b["batch"] for b in result.batches if b["drift"]["detected"]]
    kinds = [b.get("retrain", {}).get("kind") for b in result.batches if b.get("decision") == "request_retraining"]
    info = {"refits": sum(k == "refit" for k in kinds), "retrains": result.summary.get("retrains", 0),
            "steward": result.summary.get("steward_handoffs", 0)}
    return {"agentic": retrain, "agentic-flag": flagged}, info


def ks_bonferroni_alarms(frames: list[Any], warmup: int, features: list[str], *, alpha: float = ALPHA,
                         window: int = WINDOW) -> list[int]:
    """scipy ks_2samp per feature against the training data, Bonferroni across features; re-baseline on alarm."""
    import pandas as pd
    from scipy.stats import ks_2samp

    def columns(batches: list[Any]) -> dict[str, np.ndarray]:
        joined = pd.concat(batches, ignore_index=True)
        return {c: joined[c].dropna().to_numpy(dtype=np.float64) for c in features}

    reference = columns(frames[:warmup])
    alarms = []
    for i in range(warmup, len(frames)):
        p = [ks_2samp(reference[c], frames[i][c].dropna().to_numpy(dtype=np.float64)).pvalue for c in features]
        if min(p) * len(features) < alpha:
            alarms.append(i)
            reference = columns(frames[max(0, i + 1 - window):i + 1])  # the user retrains on the last window
    return alarms


def adwin_alarms(frames: list[Any], warmup: int, delay: int, features: list[str], target: str,
                 seed: int = 0) -> list[int]:
    """river ADWIN (defaults) on the deployed model's per-row errors as labels arrive; refit on the last window."""
    import pandas as pd
    from river.drift import ADWIN

    from airflow_agentic.flywheel import turn as T

    def fit(lo: int, hi: int) -> Any:
        X = pd.concat([frames[b][features] for b in range(lo, hi + 1)], ignore_index=True)
        y = np.concatenate([frames[b][target].to_numpy() for b in range(lo, hi + 1)])
        return T.fit_model(X, y, seed=seed)

    model = fit(0, warmup - 1)
    detector = ADWIN()
    predictions: dict[int, np.ndarray] = {}
    alarms = []
    for i in range(warmup, len(frames)):
        predictions[i] = T.predict(model, frames[i][features])
        j = i - delay
        if j < warmup:
            continue
        errors = (predictions.pop(j) != frames[j][target].to_numpy()).astype(int)
        changed = False
        for e in errors:
            detector.update(int(e))
            changed |= detector.drift_detected
        if changed:
            alarms.append(i)
            model = fit(max(0, j + 1 - WINDOW), j)
            detector = ADWIN()
    return alarms


# ---------------------------------------------------------------------------------------------- report
def _fmt_batches(batches: list[int], limit: int = 8) -> str:
    if not batches:
        return "-"
    shown = ",".join(str(b) for b in batches[:limit])
    return shown + (f",...(+{len(batches) - limit})" if len(batches) > limit else "")


def _ratio(a: float, b: float) -> str:
    if b == 0:
        return "inf" if a > 0 else "equal (0 and 0)"
    return f"{a / b:.1f}x"


def run(streams: list[Stream], max_delay: int) -> dict[str, dict[str, Any]]:
    from airflow_agentic.flywheel import turn as T

    table: dict[str, dict[str, Any]] = {}
    for stream in streams:
        started = time.perf_counter()
        frames = _batches(stream)
        features = [c for c in frames[0].columns if c not in ("row_id", "label")]
        alarms, info = agentic_alarms(stream)
        t_agentic = time.perf_counter() - started
        with T.single_threaded():
            alarms["ks-bonf"] = ks_bonferroni_alarms(frames, stream.warmup, features)
            alarms["adwin"] = adwin_alarms(frames, stream.warmup, stream.delay, features, "label")
        scores = {m: score_alarms(alarms[m], stream.drifts, max_delay=max_delay) for m in METHODS}
        table[stream.name] = {"stream": stream, "alarms": alarms, "scores": scores, "info": info,
                              "seconds": round(time.perf_counter() - started, 1), "agentic_seconds": t_agentic}
        print(f"  {stream.name:24s} drifts={stream.drifts} " + " ".join(
            f"{m}={len(alarms[m])}" for m in METHODS) + f"  ({table[stream.name]['seconds']}s)", file=sys.stderr,
            flush=True)
    return table


def report(table: dict[str, dict[str, Any]], max_delay: int) -> None:
    print(f"\nalarms per stream (batch numbers; delay = alarm - true drift, in batches; window {max_delay} batches)")
    header = f"{'stream':24s} {'delay':>5s} {'drifts':>8s} {'method':13s} {'alarm batches':34s} {'delays':>8s} " \
             f"{'missed':>6s} {'false':>5s} {'repeat':>6s}"
    print(header)
    print("-" * len(header))
    for name, row in table.items():
        stream = row["stream"]
        for k, m in enumerate(METHODS):
            s = row["scores"][m]
            first = f"{name:24s} {stream.delay:5d} {_fmt_batches(stream.drifts):>8s}" if k == 0 else " " * 39
            print(f"{first} {m:13s} {_fmt_batches(row['alarms'][m]):34s} {_fmt_batches(s.delays):>8s} "
                  f"{s.missed:6d} {len(s.false_alarms):5d} {len(s.repeats):6d}")
        info = row["info"]
        print(f"{'':39s} (agentic: {info['retrains']} model change(s), {info['refits']} refit request(s), "
              f"{info['steward']} batch(es) sent to the Data Steward)")

    print("\ntotals over all streams")
    n_drifts = sum(len(r["stream"].drifts) for r in table.values())
    no_drift = [r for r in table.values() if not r["stream"].drifts]
    totals = {}
    print(f"{'method':13s} {'detected':>9s} {'missed':>7s} {'mean delay':>11s} {'max delay':>10s} "
          f"{'false alarms':>13s} {'on no-drift streams':>20s} {'repeats':>8s}")
    for m in METHODS:
        delays = [d for r in table.values() for d in r["scores"][m].delays]
        false = sum(len(r["scores"][m].false_alarms) for r in table.values())
        quiet = sum(len(r["scores"][m].false_alarms) for r in no_drift)
        repeats = sum(len(r["scores"][m].repeats) for r in table.values())
        missed = sum(r["scores"][m].missed for r in table.values())
        totals[m] = {"delays": delays, "false": false, "missed": missed}
        mean = f"{np.mean(delays):.2f}" if delays else "-"
        top = f"{max(delays)}" if delays else "-"
        print(f"{m:13s} {len(delays):5d}/{n_drifts:<3d} {missed:7d} {mean:>11s} {top:>10s} {false:13d} "
              f"{quiet:20d} {repeats:8d}")

    a = totals["agentic"]
    mean_a = float(np.mean(a["delays"])) if a["delays"] else float("nan")
    print("\nratios, baseline / agentic (same run):")
    for m in ("agentic-flag", "ks-bonf", "adwin"):
        t = totals[m]
        mean_m = float(np.mean(t["delays"])) if t["delays"] else float("nan")
        print(f"  {m:13s} false alarms {t['false']:3d} / {a['false']:<3d} = {_ratio(t['false'], a['false']):16s} "
              f"missed {t['missed']} / {a['missed']}   mean delay {mean_m:.2f} / {mean_a:.2f} batches "
              f"= {_ratio(mean_m, mean_a) if mean_a == mean_a else '-'}")
    print(f"\nstreams without true drift: {', '.join(r['stream'].name for r in no_drift)}")
    print("agentic = request_retraining decisions of the Monitoring agent's rule policy (backtest, in-process)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sea_abrupt + 4 generated streams of 24 batches")
    parser.add_argument("--only", nargs="*", default=None, help="stream names to run (public or generated)")
    parser.add_argument("--max-delay", type=int, default=10, help="batches after a true drift an alarm still "
                                                                  "detects it")
    parser.add_argument("--no-public", action="store_true", help="generated streams only")
    parser.add_argument("--out", default=None, help="folder for the generated streams (default: a temp folder)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    started = time.perf_counter()
    root = Path(args.out or tempfile.mkdtemp(prefix="drift-detection-"))
    streams = [] if args.no_public else public_streams(["sea_abrupt"] if args.quick else None)
    streams += generated_streams(root, stream_specs(args.quick))
    if args.only:
        streams = [s for s in streams if s.name in args.only]
    print(f"{len(streams)} streams; generated ones in {root}", file=sys.stderr)
    report(run(streams, args.max_delay), args.max_delay)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
