"""The backtest's scenario contract and the CLI's arguments: every bad input ends in one clear line, checked before
any work. The CLI runs as a subprocess, as a user (or a CI script) runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airflow_agentic.flywheel.scenario import Scenario, ScenarioError, parse_policy

REPO = Path(__file__).resolve().parents[2]


def make_scenario(root: Path, n_batches: int = 8, rows: int = 60, warmup: int = 3, **meta) -> Path:
    rng = np.random.default_rng(0)
    (root / "batches").mkdir(parents=True)
    (root / "scenario.json").write_text(json.dumps({"name": "tiny", "target": "label", "id_column": "row_id",
                                                    "task": "classification", "warmup_batches": warmup,
                                                    "label_delay": 0, **meta}))
    for b in range(n_batches):
        x = rng.normal(size=(rows, 2))
        pd.DataFrame({"row_id": np.arange(b * rows, (b + 1) * rows), "x1": x[:, 0], "x2": x[:, 1],
                      "label": (x[:, 0] + x[:, 1] > 0).astype(int)}).to_parquet(root / "batches" / f"{b:04d}.parquet")
    return root


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    return make_scenario(tmp_path / "tiny")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("AGENTIC_LLM_BASE_URL", None)
    env.pop("AGENTIC_LLM_MODEL", None)
    return subprocess.run([sys.executable, "-m", "airflow_agentic.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or REPO, timeout=300)


# ------------------------------------------------------------------------------------------ the reader
def test_a_good_scenario_opens_with_batches_numbered_by_name(scenario: Path):
    scen = Scenario.open(scenario)
    assert len(scen) == 8 and scen.warmup == 3 and scen.target == "label" and scen.id_column == "row_id"
    assert [p.name for p in scen.files] == [f"{b:04d}.parquet" for b in range(8)]
    assert scen.batch(5)["row_id"].iloc[0] == 300


@pytest.mark.parametrize("damage, match", [
    (lambda s: (s / "batches" / "0006.parquet").unlink(), r"batch 0006\.parquet missing"),
    (lambda s: [(s / "batches" / f"{b:04d}.parquet").unlink() for b in (2, 4)], r"batches 0002\.parquet, 0004\.parquet"),
    (lambda s: (s / "batches" / "0000.parquet").unlink(), r"batch 0000\.parquet missing"),
    (lambda s: (s / "batches" / "3.parquet").write_bytes((s / "batches" / "0003.parquet").read_bytes()),
     r"both batch 3"),
    (lambda s: (s / "batches" / "0007.parquet").rename(s / "batches" / "last.parquet"), r"last\.parquet: batch files"),
    (lambda s: (s / "scenario.json").unlink(), r"scenario\.json is missing"),
    (lambda s: (s / "scenario.json").write_text("{not json"), r"scenario\.json is not valid JSON \(line 1"),
    (lambda s: (s / "scenario.json").write_text("[]"), r"must hold a JSON object"),
    (lambda s: (s / "scenario.json").write_text('{"warmup_batches": "5"}'), r"'warmup_batches' must be an integer"),
    (lambda s: (s / "scenario.json").write_text('{"warmup_batches": 8}'), r"warmup_batches is 8 but there are only 8"),
    (lambda s: (s / "scenario.json").write_text('{"label_delay": -1}'), r"'label_delay' must be an integer >= 0"),
    (lambda s: (s / "scenario.json").write_text('{"target": "y"}'), r"0000\.parquet lacks column\(s\) \['y'\]"),
    (lambda s: [p.unlink() for p in (s / "batches").glob("*")], r"no batches in"),
])
def test_a_broken_contract_is_one_clear_error(scenario: Path, damage, match):
    damage(scenario)
    with pytest.raises(ScenarioError, match=match) as info:
        Scenario.open(scenario)
    assert "\n" not in str(info.value)


def test_a_truncated_batch_file_is_named(scenario: Path):
    path = scenario / "batches" / "0004.parquet"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ScenarioError, match=r"0004\.parquet is not a readable parquet file"):
        Scenario.open(scenario)


def test_policies(scenario: Path):
    scen = Scenario.open(scenario)
    assert parse_policy("agentic") == ("agentic", None) and parse_policy(" static ") == ("static", None)
    assert parse_policy("periodic:2", scen) == ("periodic", 2)
    assert parse_policy("at:5,3,5", scen) == ("at", [3, 5])
    for bad, match in [("periodic:0", "K >= 1"), ("periodic:", "K >= 1"), ("periodic:x", "K >= 1"),
                       ("periodic:-2", "K >= 1"), ("foo", "unknown policy 'foo'"), ("at:abc", "'abc' is not a batch"),
                       ("at:", "at: needs batch numbers"), ("at:3,,4", "needs batch numbers"),
                       ("at:-1", "'-1' is not a batch number"), ("periodic", "unknown policy")]:
        with pytest.raises(ScenarioError, match=match):
            parse_policy(bad, scen)
    with pytest.raises(ScenarioError, match=r"batch 999 is out of range; in this 8-batch scenario labels arrive "
                                            r"for batches 3\.\.7"):
        parse_policy("at:999", scen)
    with pytest.raises(ScenarioError, match="out of range"):
        parse_policy("at:1", scen)  # a warm-up batch: its labels were used before the run started
    with pytest.raises(ScenarioError, match="would never retrain"):
        parse_policy("periodic:50", scen)


# ------------------------------------------------------------------------------------------ the CLI
def test_bad_arguments_end_in_one_line_and_exit_2_before_any_work(scenario: Path, tmp_path: Path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    out = str(tmp_path / "out")
    cases = [
        (["backtest", str(tmp_path / "nowhere"), "--out", out], "does not exist"),
        (["backtest", str(scenario), "--out", out, "--policy", "periodic:0"], "K >= 1"),
        (["backtest", str(scenario), "--out", out, "--policy", "foo"], "unknown policy 'foo'"),
        (["backtest", str(scenario), "--out", out, "--policy", "at:abc"], "'abc' is not a batch number"),
        (["backtest", str(scenario), "--out", out, "--policy", "at:"], "at: needs batch numbers"),
        (["backtest", str(scenario), "--out", out, "--policy", "at:999"], "batch 999 is out of range"),
        (["backtest", str(scenario), "--out", str(a_file)], "exists and is not a folder"),
        (["backtest", str(scenario), "--out", str(a_file / "sub")], "is a file, so the folder cannot be created"),
        (["backtest", str(scenario)], "the following arguments are required: --out"),
        (["backtest", str(scenario), "--out", out, "--seed", "x"], "invalid int value"),
        (["backtest", str(scenario), "--out", out, "--llm-base-url", "ftp://user:pw@h/x"], "must start with http"),
        (["demo", "--port", "70000"], "a port is between 0 and 65535"),
        (["demo", "--root", str(a_file)], "exists and is not a folder"),
        (["nonsense"], "invalid choice"),
    ]
    for args, expected in cases:
        started = time.monotonic()
        done = cli(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("airflow-agentic: error: ") and expected in lines[0], \
            (args, done.stderr)
        assert "Traceback" not in done.stderr and "pw@" not in done.stderr
        assert time.monotonic() - started < 20  # checked up front, not after a run
    assert not (tmp_path / "out").exists()  # nothing was written


def test_a_good_run_still_goes_through(scenario: Path, tmp_path: Path):
    done = cli("backtest", str(scenario), "--policy", "periodic:2", "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["policy"] == "periodic:2" and summary["retrains"] == 2
    assert (tmp_path / "out" / "predictions.parquet").exists()
