"""Extra import time of every operator/sensor/trigger/hook/notifier module over a bare `import airflow.sdk`.

Each measurement is a fresh interpreter (compiled bytecode, nothing cached in-process); the median of N runs.
What a DAG file pays at parse time for using our operators. Goal: <= 0.15 s per module.
Usage: python benchmarks/parse_overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import compileall
import pkgutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GROUPS = ("operators", "sensors", "triggers", "hooks", "notifications", "links")


def modules() -> list[str]:
    found = ["airflow_agentic", "airflow_agentic.get_provider_info"]
    for group in GROUPS:
        folder = REPO / "airflow_agentic" / group
        if folder.is_dir():
            found += [f"airflow_agentic.{group}.{m.name}" for m in pkgutil.iter_modules([str(folder)])]
    return found


def timed_import(statement: str) -> float:
    code = f"import time; t=time.perf_counter(); {statement}; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise RuntimeError(f"{statement} failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def extra_import(module: str) -> float:
    """Seconds `import module` adds once airflow.sdk is loaded, from Python's own -X importtime (cumulative column
    of the module's top-level entry): less exposed to machine noise than subtracting two whole-process timings."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import airflow.sdk; import {module}"],
                         capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise RuntimeError(f"import {module} failed:\n{out.stderr[-2000:]}")
    total_us, after_sdk = 0, False
    for line in out.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or fields[2].startswith("  "):
            continue  # header, or nested (already counted in its top-level parent)
        name = fields[2].strip()
        if after_sdk:
            total_us += int(fields[1])  # every top-level import after airflow.sdk: the module and its parents
        elif name == "airflow.sdk":
            after_sdk = True
    return total_us / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--goal", type=float, default=0.15)
    args = parser.parse_args()
    compileall.compile_dir(str(REPO / "airflow_agentic"), quiet=1)
    base = statistics.median(timed_import("import airflow.sdk") for _ in range(args.runs))
    print(f"bare `import airflow.sdk`: {base:.3f} s (median of {args.runs})")
    print(f"{'module':55} {'extra s':>8}   (-X importtime of what it adds over airflow.sdk, median)")
    worst = 0.0
    for mod in modules():
        extra = statistics.median(extra_import(mod) for _ in range(args.runs))
        worst = max(worst, extra)
        flag = "" if extra <= args.goal else "  <-- over goal"
        print(f"{mod:55} {extra:8.3f}{flag}")
    print(f"worst extra import time: {worst:.3f} s (goal <= {args.goal} s): {'ok' if worst <= args.goal else 'MISSED'}")
    heavy = ["mlflow", "great_expectations", "alibi_detect", "pyspark", "openai", "kubernetes", "sklearn", "pandas",
             "scipy", "optuna", "evidently", "label_studio_sdk"]
    probe = ("import sys, airflow.sdk; before=set(sys.modules); " + "; ".join(f"import {m}" for m in modules())
             + f"; print(sorted(h for h in {heavy!r} if h in sys.modules and h not in before))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    print(f"heavy libraries loaded by importing all of them: {out.stdout.strip() or out.stderr[-500:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
