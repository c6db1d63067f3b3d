"""The flywheel's agentic policy against what a user would otherwise run: never retrain (`static`), retrain every five
batches (`periodic:5`), and retrain right after each true drift (`at:<drift batches>`, read from truth.json like the
scorer does; the system under test never reads it). Accuracy and retrains come from the project's scorer
(``airflow_agentic.flywheel.scenario.score``, docs/scenarios.md). Every policy runs through ``run_backtest``, the
agentic one through the flywheel's one turn (``flywheel.turn.learn``), exactly as the retraining DAG runs it.

Usage: .venv/bin/python benchmarks/backtest_policies.py [SCEN_ROOT] [--out RESULTS_ROOT] [--only NAME ...]
SCEN_ROOT defaults to the five public scenarios, generated into .cache/scenarios on first use.
Goal: drifting streams acc >= 0.98 x max(periodic:5, at:truth) with retrains <= periodic:5 / 2;
      streams without drift (stationary, harmless shift, corrupted bursts): 0 retrains and acc >= 0.99 x static.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCEN = REPO / ".cache" / "scenarios"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scen_root", nargs="?", default=str(DEFAULT_SCEN))
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--policies", nargs="*", default=None, help="subset of agentic static periodic:5 at")
    args = parser.parse_args()
    from airflow_agentic.flywheel import scenario as scorer
    from airflow_agentic.flywheel.backtest import run_backtest

    scen_root = scorer.public_root(args.scen_root) if Path(args.scen_root) == DEFAULT_SCEN else Path(args.scen_root)

    truths = json.loads((scen_root / "truth.json").read_text())
    out_root = Path(args.out or tempfile.mkdtemp(prefix="backtest-policies-"))
    names = [n for n in truths if not args.only or n in args.only]
    rows = {}
    for name in names:
        truth = truths[name]
        drifts = truth["drifts"] if isinstance(truth.get("drifts"), list) else []
        policies = {"agentic": "agentic", "static": "static", "periodic:5": "periodic:5"}
        if drifts:
            policies["at"] = "at:" + ",".join(str(d) for d in drifts)
        if args.policies:
            policies = {k: v for k, v in policies.items() if k in args.policies}
        rows[name] = {"drifts": drifts}
        for label, policy in policies.items():
            out = out_root / name / policy.replace(":", "_").replace(",", "-")
            started = time.perf_counter()
            run_backtest(scen_root / name, policy, out)
            res = scorer.score(scen_root / name, truth, out)
            res["seconds"] = round(time.perf_counter() - started, 1)
            rows[name][label] = res
            print(f"  {name:28s} {policy:14s} acc={res['acc']:.4f} retrains={res['retrains']:2d} "
                  f"first_change={res['first_change']} {res['seconds']}s", file=sys.stderr, flush=True)

    print(f"\nresults in {out_root}\n")
    header = f"{'scenario':28s} {'agentic':>14s} {'static':>14s} {'periodic:5':>14s} {'at:truth':>14s}   " \
             f"{'ratio':>7s} {'target':>7s} {'retrains':>9s}  verdict"
    print(header)
    print("-" * len(header))
    ok_all = True
    for name, r in rows.items():
        def cell(key: str) -> str:
            v = r.get(key)
            return f"{v['acc']:.4f} ({v['retrains']:2d})" if v else "-"
        a = r.get("agentic")
        if not a:
            print(f"{name:28s} " + " ".join(f"{cell(k):>14s}" for k in ("agentic", "static", "periodic:5", "at")))
            continue
        if r["drifts"]:
            best = max(r[k]["acc"] for k in ("periodic:5", "at") if k in r)
            target, limit = 0.98, r["periodic:5"]["retrains"] // 2 if "periodic:5" in r else 99
            ratio = a["acc"] / best
            ok = ratio >= target and a["retrains"] <= limit
        else:
            ratio = a["acc"] / r["static"]["acc"] if "static" in r else float("nan")
            target, limit = 0.99, 0
            ok = ratio >= target and a["retrains"] == 0
        ok_all &= ok
        print(f"{name:28s} " + " ".join(f"{cell(k):>14s}" for k in ("agentic", "static", "periodic:5", "at")) +
              f"   {ratio:7.4f} {target:7.2f} {a['retrains']:4d}/{limit:<4d}  {'ok' if ok else 'MISS'}")
    print("\nratio = agentic acc / best of (periodic:5, at:truth) on drifting streams, / static otherwise")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
