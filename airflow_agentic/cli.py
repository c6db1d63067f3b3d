"""`airflow-agentic`: the backtest of the flywheel on a scenario folder, and the demo.

Imports stay inside the commands, so `airflow-agentic --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence


class UsageError(Exception):
    """A bad argument: reported in one line on stderr, exit code 2, before any work."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line too, not the usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="airflow-agentic", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    bt.add_argument("--registry", default=None,
                    help="MLflow tracking URI to keep the versions in a real model registry, as the DAGs do "
                         "(e.g. sqlite:///out/mlflow.db); default: in memory, same turn, faster")
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


def _check_out_folder(out: str) -> None:
    """The output folder must be a folder we can create or write into; a file there is an error now, not after
    the whole run."""
    if not out.strip():
        raise UsageError("--out is empty: name an output folder")
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out {out}: exists and is not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(f"--out {out}: {parent} is a file, so the folder cannot be created")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: {parent} is not writable")


def _check_backtest(args: argparse.Namespace):
    """Every argument checked before any work; returns the opened scenario."""
    from airflow_agentic.flywheel.scenario import Scenario, ScenarioError, parse_policy

    _check_out_folder(args.out)
    try:
        scenario = Scenario.open(args.scenario_dir)
        parse_policy(args.policy, scenario)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    if args.llm_base_url and not args.llm_base_url.startswith(("http://", "https://")):
        from airflow_agentic.agents.trace import redact_url

        raise UsageError(f"--llm-base-url {redact_url(args.llm_base_url)}: must start with http:// or https://")
    return scenario


def backtest(args: argparse.Namespace) -> int:
    _check_backtest(args)
    from airflow_agentic.flywheel.backtest import run_backtest

    result = run_backtest(args.scenario_dir, args.policy, args.out, planner=_planner(args), seed=args.seed,
                          llm_when=args.llm_when, registry=args.registry)
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


def _check_demo(args: argparse.Namespace) -> None:
    for flag, port in (("--port", args.port), ("--mlflow-port", args.mlflow_port)):
        if not 0 <= port <= 65535:
            raise UsageError(f"{flag} {port}: a port is between 0 and 65535 (0 picks a free one)")
    if args.root and os.path.exists(args.root) and not os.path.isdir(args.root):
        raise UsageError(f"--root {args.root}: exists and is not a folder")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "backtest":
            return backtest(args)
        if args.command == "demo":
            _check_demo(args)
            from airflow_agentic.flywheel.demo import run_demo

            return run_demo(once=args.once, port=args.port, mlflow_port=args.mlflow_port, root=args.root)
    except UsageError as exc:
        print(f"airflow-agentic: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bad scenario found mid-run: one line, not a traceback
        from airflow_agentic.flywheel.scenario import ScenarioError

        if not isinstance(exc, ScenarioError):
            raise
        print(f"airflow-agentic: error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
