"""The package as Airflow sees it: provider discovery, its hook and connection form, nothing heavy at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def _airflow(*args: str) -> str:
    done = subprocess.run([AIRFLOW, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_provider_info_matches_distribution():
    from importlib.metadata import entry_points, version

    from airflow_agentic.get_provider_info import get_provider_info

    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-agentic"
    assert version("airflow-provider-agentic") in info["versions"]
    eps = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_agentic")]
    assert eps and eps[0].load() is get_provider_info


def test_every_module_named_in_provider_info_imports():
    import importlib

    from airflow_agentic.get_provider_info import get_provider_info

    info = get_provider_info()
    modules = [m for key in ("hooks", "operators", "sensors", "triggers") for group in info.get(key, [])
               for m in group["python-modules"]]
    classes = [c["hook-class-name"] for c in info["connection-types"]] + info.get("notifications", [])
    classes += info.get("extra-links", [])
    for mod in modules:
        importlib.import_module(mod)
    for path in classes:
        mod, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(mod), name), path


@pytest.mark.integration
def test_airflow_lists_the_provider_and_its_hook(airflow_db):
    out = _airflow("providers", "get", "airflow-provider-agentic", "--output", "json")
    assert "airflow-provider-agentic" in out
    hooks = _airflow("providers", "hooks", "--output", "json")
    assert "agentic_llm" in hooks and "airflow_agentic.hooks.llm.AgenticLLMHook" in hooks
    behaviours = json.loads(_airflow("providers", "behaviours", "--output", "json"))
    assert {"field_behaviours": "agentic_llm"} in behaviours  # the form fields of the connection UI


def test_no_heavy_import_at_package_or_operator_import():
    heavy = ["mlflow", "great_expectations", "alibi_detect", "pyspark", "openai", "kubernetes", "sklearn", "optuna",
             "evidently", "label_studio_sdk", "pandas", "scipy"]
    mods = ["airflow_agentic", "airflow_agentic.agents", "airflow_agentic.operators.agent", "airflow_agentic.hooks.llm",
            "airflow_agentic.cli"]
    for group in ("operators", "sensors", "triggers", "hooks", "notifications", "links"):
        folder = REPO / "airflow_agentic" / group
        mods += [f"airflow_agentic.{group}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]
    probe = (
        "import sys, airflow.sdk\nbefore = set(sys.modules)\n"
        + "".join(f"import {m}\n" for m in mods)
        + f"print(sorted(h for h in {heavy!r} if h in sys.modules and h not in before))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
