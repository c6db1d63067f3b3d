"""`airflow-agentic`: the backtest of the flywheel on a scenario folder, and the demo.

Imports stay inside the commands, so `airflow-agentic --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airflow-agentic", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    bt = sub.add_parser("backtest", help="replay a drift scenario batch by batch under a retraining policy")
    bt.add_argument("scenario_dir", help="folder with scenario.json and batches/NNNN.parquet")
    bt.add_argument("--policy", default="agentic",
                    help="agentic (default), static, periodic:K or at:B1,B2,...")
    bt.add_argument("--out", required=True, help="output folder (predictions.parquet, result.json)")
    bt.add_argument("--report", action="store_true",
                    help="also write report.html + report.png, comparing every policy found in sibling folders")
    bt.add_argument("--llm-base-url", default=os.environ.get("AGENTIC_LLM_BASE_URL"),
                    help="OpenAI-compatible endpoint for the monitoring agent (env AGENTIC_LLM_BASE_URL)")
    bt.add_argument("--llm-model", default=os.environ.get("AGENTIC_LLM_MODEL"),
                    help="model name (env AGENTIC_LLM_MODEL); without it the rule planner decides")
    bt.add_argument("--llm-when", choices=("interesting", "always"), default="interesting",
                    help="ask the LLM only when the evidence is not plainly 'nothing to do' (default), or always")
    bt.add_argument("--seed", type=int, default=0)
    bt.add_argument("--quiet", action="store_true", help="print only the summary line")

    demo = sub.add_parser("demo", help="the flywheel end to end: MLflow + airflow standalone in .demo/, a drift, "
                                       "a retraining, a new champion")
    demo.add_argument("--once", action="store_true",
                      help="stop after one turn (CI); exit non-zero if the turn did not complete")
    demo.add_argument("--port", type=int, default=8080, help="Airflow API/UI port (default 8080, 0 = a free one)")
    demo.add_argument("--mlflow-port", type=int, default=0, help="MLflow port (default: a free one)")
    demo.add_argument("--root", default=None, help="working folder (default: <checkout>/.demo, wiped at start)")
    return parser


def _planner(args: argparse.Namespace):
    if not args.llm_model and not args.llm_base_url:
        return None
    from airflow_agentic.agents.llm_planner import LLMPlanner, LLMSettings

    api_key = os.environ.get("AGENTIC_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    return LLMPlanner(LLMSettings(base_url=args.llm_base_url, api_key=api_key, model=args.llm_model or "gpt-4o-mini"))


def backtest(args: argparse.Namespace) -> int:
    from airflow_agentic.flywheel.backtest import run_backtest

    result = run_backtest(args.scenario_dir, args.policy, args.out, planner=_planner(args), seed=args.seed,
                          llm_when=args.llm_when)
    if args.report:
        from airflow_agentic.flywheel.report import write_report

        html = write_report(args.out, args.scenario_dir)
        print(f"report: {html}", file=sys.stderr)
    if not args.quiet:
        for b in result.batches:
            if b["actions"]:
                print(f"batch {b['batch']:4d}  {b['model_version']:>4}  {', '.join(b['actions'])}")
    print(json.dumps({"scenario": result.scenario, "policy": result.policy, **result.summary}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "backtest":
        return backtest(args)
    if args.command == "demo":
        from airflow_agentic.flywheel.demo import run_demo

        return run_demo(once=args.once, port=args.port, mlflow_port=args.mlflow_port, root=args.root)
    return 2


if __name__ == "__main__":
    sys.exit(main())
