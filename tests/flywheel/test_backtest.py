"""The backtest end to end on small generated streams: the output contract as the scorer reads it, the label
delay, every policy, the CLI, the goal on several kinds of drift, and the LLM planner (scripted loopback server)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from airflow_agentic.agents.llm_planner import LLMPlanner, LLMSettings
from airflow_agentic.flywheel import scenario as scorer
from airflow_agentic.flywheel.backtest import LabelLeak, LabelVault, run_backtest
from airflow_agentic.flywheel.scenario import make_stream
from llm_server import ScriptedLLM


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("streams")


def test_output_contract_is_what_the_scorer_reads(root, tmp_path):
    truth = make_stream("corrupted", root, n_batches=12, drift_at=10, seed=3, name="contract")
    result = run_backtest(root / "contract", "agentic", tmp_path / "agentic")
    pred = pd.read_parquet(tmp_path / "agentic" / "predictions.parquet")
    assert list(pred.columns) == ["batch", "row_id", "prediction"]
    assert str(pred["batch"].dtype) == "int64" and str(pred["row_id"].dtype) == "int64"
    assert sorted(pred["batch"].unique()) == list(range(5, 12)) and len(pred) == 7 * 1000
    res = json.loads((tmp_path / "agentic" / "result.json").read_text())
    assert set(res) >= {"scenario", "policy", "batches", "summary"}
    assert set(res["summary"]) >= {"retrains", "wall_seconds", "planner", "llm_calls"}
    for b in res["batches"]:
        assert set(b) >= {"batch", "model_version", "actions", "drift", "quarantined"}
        assert set(b["drift"]) >= {"detected", "score"}
    # Nulls exactly on quarantined rows, and only corrupted rows are ever quarantined.
    bad = {int(k): set(v) for k, v in truth["corrupted_rows"].items()}
    for b in res["batches"]:
        rows = pred[pred["batch"] == b["batch"]]
        missing = set(rows.loc[rows["prediction"].isna(), "row_id"])
        assert int(rows["prediction"].isna().sum()) == b["quarantined"]
        assert missing <= bad.get(b["batch"], set()), b["batch"]
    assert res["batches"][3]["quarantined"] > 50  # batch 8 is corrupted
    assert "send_to_data_steward" in res["batches"][3]["actions"]
    scored = scorer.score(root / "contract", truth, tmp_path / "agentic")
    assert scored["acc"] > 0.9 and scored["retrains"] == result.summary["retrains"] == 0


def test_labels_are_never_used_before_their_time(root, tmp_path):
    make_stream("abrupt", root, n_batches=16, drift_at=9, label_delay=2, seed=4, name="delay2")
    for policy in ("agentic", "periodic:2", "at:9"):
        result = run_backtest(root / "delay2", policy)
        released = [(b, seen) for b, seen in result.label_log if b >= 5]
        assert released and all(b + 2 <= seen for b, seen in released), policy
        assert [b for b, _ in released] == list(range(5, 14))  # the last two batches' labels never arrive
    vault = LabelVault(delay=2, warmup=5)
    vault.deposit(5, np.zeros(3))
    vault.mark_predicted(5)
    with pytest.raises(LabelLeak):
        vault.release(5)


def test_every_policy_and_the_cli(root, tmp_path, capsys):
    from airflow_agentic.cli import main

    make_stream("stationary", root, n_batches=12, seed=5, name="small")
    counts = {}
    for policy in ("static", "periodic:3", "at:6,9", "agentic"):
        out = tmp_path / policy.replace(":", "_")
        assert main(["backtest", str(root / "small"), "--policy", policy, "--out", str(out), "--quiet"]) == 0
        counts[policy] = json.loads((out / "result.json").read_text())["summary"]["retrains"]
    assert counts == {"static": 0, "periodic:3": 2, "at:6,9": 2, "agentic": 0}
    assert main(["backtest", str(root / "small"), "--policy", "static", "--out", str(tmp_path / "static"),
                 "--quiet", "--report"]) == 0
    page = (tmp_path / "static" / "report.html").read_text()
    assert (tmp_path / "static" / "report.png").stat().st_size > 1000
    assert "periodic:3" in page and "agentic" in page
    with pytest.raises(SystemExit):  # the demo is wired in (its own e2e run is the README's first command)
        main(["demo", "--help"])
    with pytest.raises(ValueError, match="unknown policy"):
        run_backtest(root / "small", "sometimes")


DRIFTING = [("abrupt", dict(label_delay=2, seed=11)), ("gradual", dict(seed=12)), ("recurring", dict(seed=13)),
            ("label_prior", dict(seed=16)), ("covariate_harmful", dict(label_delay=1, seed=17))]
STEADY = [("covariate_harmless", dict(seed=14)), ("corrupted", dict(label_delay=1, seed=15))]


@pytest.mark.parametrize("kind,kw", DRIFTING, ids=[k for k, _ in DRIFTING])
def test_goal_on_drifting_streams(root, tmp_path, kind, kw):
    truth = make_stream(kind, root, n_batches=40, drift_at=15, **kw)
    scores = {}
    for policy in ("agentic", "periodic:5", "at:" + ",".join(map(str, truth["drifts"]))):
        out = tmp_path / policy.replace(":", "_").replace(",", "-")
        run_backtest(root / truth["name"], policy, out)
        scores[policy.split(":")[0]] = scorer.score(root / truth["name"], truth, out)
    best = max(scores["periodic"]["acc"], scores["at"]["acc"])
    assert scores["agentic"]["acc"] >= 0.98 * best, scores
    assert scores["agentic"]["retrains"] <= scores["periodic"]["retrains"] // 2, scores


@pytest.mark.parametrize("kind,kw", STEADY, ids=[k for k, _ in STEADY])
def test_goal_without_harmful_drift_means_no_retraining(root, tmp_path, kind, kw):
    truth = make_stream(kind, root, n_batches=25, drift_at=12, **kw)
    scores = {}
    for policy in ("agentic", "static"):
        run_backtest(root / truth["name"], policy, tmp_path / policy)
        scores[policy] = scorer.score(root / truth["name"], truth, tmp_path / policy)
    assert scores["agentic"]["retrains"] == 0, scores
    assert scores["agentic"]["acc"] >= 0.99 * scores["static"]["acc"], scores


def _planner(server: ScriptedLLM) -> LLMPlanner:
    return LLMPlanner(LLMSettings(base_url=server.base_url, api_key="sk-test", model="scripted-model"),
                      sleep=lambda s: None)


def test_backtest_through_the_llm_planner_reports_its_calls(root, tmp_path):
    make_stream("abrupt", root, n_batches=12, drift_at=8, seed=6, name="llm")
    with ScriptedLLM() as server:
        server.then({"tool": "ignore", "arguments": {"reason": "looks fine", "rationale": "nothing moved"}},
                    {"tool": "finish", "arguments": {"rationale": "done"}},
                    {"tool": "alert", "arguments": {"message": "checking in"}})
        result = run_backtest(root / "llm", "agentic", tmp_path / "llm", planner=_planner(server), llm_when="always")
        calls = server.calls
    assert result.summary["planner"] == "llm:scripted-model"
    assert result.summary["llm_calls"] == calls >= 7  # one or more per batch
    assert "alert" in result.batches[1]["actions"]
    assert json.loads((tmp_path / "llm" / "result.json").read_text())["summary"]["llm_calls"] == calls


def test_garbage_llm_falls_back_to_rules_without_breaking_the_backtest(root, tmp_path):
    make_stream("abrupt", root, n_batches=14, drift_at=8, seed=7, name="garbage")
    rules = run_backtest(root / "garbage", "agentic", tmp_path / "rules")
    with ScriptedLLM() as server:
        server.then(*[{"text": "Just retrain everything, trust me."}] * 10)
        result = run_backtest(root / "garbage", "agentic", tmp_path / "llm", planner=_planner(server),
                              llm_when="always")
    assert result.summary["llm_failures"] == 1 and result.summary["llm_calls"] == 2
    assert result.summary["retrains"] == rules.summary["retrains"] >= 1
    a = pd.read_parquet(tmp_path / "rules" / "predictions.parquet")
    b = pd.read_parquet(tmp_path / "llm" / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.integration
def test_versions_in_an_mlflow_registry_change_nothing_but_storage(root, tmp_path):
    """The same turn on a real MLflow registry (as the DAGs keep versions) and in memory: identical predictions and
    decisions; the registry's aliases end where the in-memory champion does."""
    from mlflow import MlflowClient

    make_stream("abrupt", root, n_batches=16, drift_at=9, seed=4, name="registry")
    memory = run_backtest(root / "registry", "agentic", tmp_path / "memory")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = run_backtest(root / "registry", "agentic", tmp_path / "registry", registry=uri)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "memory" / "predictions.parquet"),
                                  pd.read_parquet(tmp_path / "registry" / "predictions.parquet"))
    assert [b["actions"] for b in memory.batches] == [b["actions"] for b in registry.batches]
    assert memory.summary["retrains"] == registry.summary["retrains"] >= 1
    aliases = MlflowClient(uri).get_registered_model("backtest-registry").aliases
    assert str(aliases["champion"]) == registry.summary["final_version"] == memory.summary["final_version"]
