from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import corrupted_batch, make_profile, reference_frame

from airflow_agentic.data.errors import PipelineStopped
from airflow_agentic.data.findings import StewardConfig, inspect_batch
from airflow_agentic.data.pipeline import run_steward
from airflow_agentic.data.steward import (
    QUARANTINE_REASON_COLUMN,
    BatchState,
    StewardReport,
    deduplicate,
    quarantine_rows,
    rule_policy,
)

CONFIG = StewardConfig(id_column="row_id", drift=False)


@pytest.fixture(scope="module")
def profile():
    return make_profile()


def kinds(findings):
    return {(f.kind, f.column): f.rows for f in findings.items}


def test_findings_cover_every_corruption(profile):
    findings = inspect_batch(corrupted_batch(), profile, CONFIG)
    k = kinds(findings)
    assert k[("sentinel", "x")] == 11  # ten -999 and one inf
    assert k[("sentinel", "y")] == 1  # 1e9 is far outside the reference range
    assert k[("nulls", "y")] == 10
    assert k[("out_of_range", "y")] == 1
    assert k[("unnormalised_category", "cat")] == 5
    assert k[("unknown_category", "cat")] == 5
    assert k[("unknown_category", "code")] == 1
    assert k[("duplicate_rows", None)] == 10
    assert k[("duplicate_ids", "row_id")] == 1
    sentinel = next(f for f in findings.items if f.kind == "sentinel" and f.column == "x")
    assert sentinel.sample_row_ids == [100_000, 100_001, 100_002, 100_003, 100_004]
    assert sentinel.severity == "error" and not findings.schema_broken
    assert json.loads(json.dumps(findings.to_dict()))["summary"]["by_kind"]["sentinel"] == 2


def test_schema_findings_and_rename_suggestion(profile):
    batch = corrupted_batch().rename(columns={"cat": "Cat ", "y": "y_value"})
    batch["x"] = batch["x"].astype(str)
    batch.loc[5, "x"] = "abc"
    batch["new"] = 1
    findings = inspect_batch(batch, profile, CONFIG)
    k = kinds(findings)
    assert findings.renames == {"Cat ": "cat"}
    assert ("missing_column", "y") in k and findings.schema_broken
    assert k[("type_mismatch", "x")] == 1
    assert ("extra_column", "new") in k
    assert rule_policy(findings, None, [])[0] == "stop_pipeline"


def test_rename_is_repaired(profile, tmp_path):
    batch = corrupted_batch().rename(columns={"cat": "CAT"})
    report = run_steward(batch, profile, tmp_path, config=CONFIG, validate="none")
    assert report.actions[0] == {"action": "rename_columns", "renamed": {"CAT": "cat"}}
    assert "cat" in pd.read_parquet(tmp_path / "clean.parquet").columns


@pytest.mark.parametrize("breakage", ["missing", "retyped", "no_id"])
def test_stop_pipeline_writes_nothing(profile, tmp_path, breakage):
    batch = corrupted_batch()
    if breakage == "missing":
        batch = batch.drop(columns=["x"])
    elif breakage == "retyped":
        batch["y"] = "text"
    else:
        batch = batch.drop(columns=["row_id"])
    with pytest.raises(PipelineStopped, match="schema broken") as info:
        run_steward(batch, profile, tmp_path / "out", config=CONFIG)
    assert info.value.findings["summary"]["schema_broken"]
    assert not (tmp_path / "out").exists()


def test_missing_target_is_not_fatal(profile, tmp_path):
    report = run_steward(corrupted_batch().drop(columns=["label"]), profile, tmp_path, config=CONFIG,
                           validate="none")
    assert report.accepted


def test_full_pass_outputs_and_reasons(profile, tmp_path):
    batch = corrupted_batch()
    snapshot = batch.copy(deep=True)
    report = run_steward(batch, profile, tmp_path, config=CONFIG)
    pd.testing.assert_frame_equal(batch, snapshot)  # input never modified
    assert [a["action"] for a in report.actions] == [
        "replace_sentinels", "normalise_categories", "deduplicate", "quarantine_invalid", "accept"]
    assert report.counts["by_reason"] == {"sentinel": 12, "null": 10, "duplicate": 10, "unknown_category": 6,
                                          "out_of_range": 1, "duplicate_id": 1}
    clean = pd.read_parquet(tmp_path / "clean.parquet")
    quarantine = pd.read_parquet(tmp_path / "quarantine.parquet")
    assert len(clean) + len(quarantine) == len(batch) == report.counts["input"]
    assert sorted(clean["row_id"].tolist() + quarantine["row_id"].tolist()) == sorted(batch["row_id"].tolist())
    assert set(quarantine[QUARANTINE_REASON_COLUMN]) == set(report.counts["by_reason"])
    assert set(clean["cat"]) == {"red", "green", "blue"}  # " RED " normalised, purple quarantined
    assert clean["x"].notna().all() and clean["row_id"].is_unique
    validation = json.loads((tmp_path / "validation.json").read_text())
    assert validation["success"] and report.validation["success"]
    assert report.validation_location.endswith("validation.json")
    stored = StewardReport.from_dict(json.loads((tmp_path / "report.json").read_text()))
    assert stored.counts == report.counts and stored.outputs["clean"].endswith("clean.parquet")
    assert StewardReport.from_dict(report.to_dict()).to_dict() == report.to_dict()


def test_validate_input_reports_failures(profile, tmp_path):
    report = run_steward(corrupted_batch(), profile, tmp_path, config=CONFIG, validate="input")
    failed = {(f["type"], f["column"]) for f in report.validation["failed"]}
    assert ("expect_column_values_to_be_unique", "row_id") in failed
    assert ("expect_column_values_to_be_in_set", "cat") in failed


def test_user_suite(profile, tmp_path):
    suite = [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "y", "min_value": 0, "max_value": 5}}]
    report = run_steward(corrupted_batch(), profile, tmp_path, config=CONFIG, suite=suite)
    assert not report.validation["success"]
    assert report.validation["failed"][0]["column"] == "y"


def test_tools_by_hand(profile):
    batch = corrupted_batch()
    state = BatchState.from_frame(batch, profile, CONFIG)
    state.findings = inspect_batch(batch, profile, CONFIG)
    quarantine_rows(state, [100_050, 100_051], "manual")
    deduplicate(state)
    counts = state.counts()
    assert counts["by_reason"] == {"manual": 2, "duplicate": 10, "duplicate_id": 1}
    from airflow_agentic.agents.steward import steward_with_agent

    steward_with_agent(state)
    assert state.accepted and state.history()[-1] == "accept"
    assert state.counts()["clean"] + state.counts()["quarantined"] == len(batch)


def test_clean_batch_goes_straight_to_accept(profile, tmp_path):
    batch = reference_frame(500, seed=7)
    findings = inspect_batch(batch, profile, CONFIG)
    assert rule_policy(findings, None, []) == ("accept", {})
    report = run_steward(batch, profile, tmp_path, config=CONFIG)
    assert report.counts["quarantined"] == 0 and report.validation["success"]


def _random_corruption(rng, n):
    batch = reference_frame(n, seed=int(rng.integers(1_000_000)))
    batch["row_id"] += 10_000
    for _ in range(int(rng.integers(1, 8))):
        rows = rng.choice(n, size=int(rng.integers(1, n // 5)), replace=False)
        kind = rng.integers(0, 7)
        if kind == 0:
            batch.loc[rows, rng.choice(["x", "y"])] = np.nan
        elif kind == 1:
            batch.loc[rows, rng.choice(["x", "y"])] = rng.choice([-999.0, -9999.0, 999999.0, np.inf, 1e12])
        elif kind == 2:
            batch.loc[rows, "cat"] = rng.choice([" Red", "BLUE ", "violet", None])
        elif kind == 3:
            batch.loc[rows, "code"] = int(rng.choice([-999, 9]))
        elif kind == 4:
            batch.loc[rows, "y"] = batch.loc[rows, "y"] + 50
        elif kind == 5:
            batch = pd.concat([batch, batch.iloc[rows]], ignore_index=True)
        else:
            extra = batch.iloc[rows].copy()
            extra["x"] = 0.0
            batch = pd.concat([batch, extra], ignore_index=True)
    return batch.sample(frac=1.0, random_state=int(rng.integers(1000))).reset_index(drop=True)


@pytest.mark.parametrize("seed", range(12))
def test_never_delete_over_random_corruptions(profile, tmp_path, seed):
    rng = np.random.default_rng(seed)
    batch = _random_corruption(rng, 300)
    config = StewardConfig(id_column="row_id", drift=False, max_quarantine_share=1.0)  # never-delete, not approvals
    report = run_steward(batch, profile, tmp_path, config=config, validate="none")
    clean = pd.read_parquet(tmp_path / "clean.parquet")
    quarantine = pd.read_parquet(tmp_path / "quarantine.parquet")
    ids = sorted(clean["row_id"].tolist() + quarantine["row_id"].tolist())
    assert ids == sorted(batch["row_id"].tolist())
    assert report.counts["clean"] == len(clean) and report.counts["quarantined"] == len(quarantine)
    assert sum(report.counts["by_reason"].values()) == len(quarantine)
    assert clean["row_id"].is_unique
