"""The one steward pipeline and the classes of issue 14 it fixes at the root: numbers stored as text, renames that
exchange / overwrite / go by similarity, the quarantine keeping rows as they arrived, duplicate column names, the
output folder committed as a unit, and quarantining beyond the allowed share only with approval."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import corrupted_batch, make_profile, reference_frame

from airflow_agentic.data import io as dio
from airflow_agentic.data.errors import PipelineStopped, QuarantineNotApproved, StewardInputError
from airflow_agentic.data.findings import RenameError, StewardConfig
from airflow_agentic.data.pipeline import StewardPipeline, run_steward, steward_features, steward_profile

CONFIG = StewardConfig(id_column="row_id", drift=False)


@pytest.fixture(scope="module")
def profile():
    return make_profile()


class Script:
    """A planner that plays back decisions, then finishes (stands in for an LLM's choices)."""

    kind = "script"

    def __init__(self, *decisions):
        self.decisions = list(decisions)

    def plan(self, ctx):
        from airflow_agentic.agents.decision import Decision, finish

        if not self.decisions:
            return finish("done")
        tool, args = self.decisions.pop(0)
        return Decision(tool, args, "scripted")

    def describe(self):
        return {"kind": self.kind}


def _approve(request):
    from airflow_agentic.agents.approval import auto_approve

    return auto_approve(request)


# ---------------------------------------------------------------------------------------------- types
def test_numbers_stored_as_text_are_converted_and_bad_ones_quarantined(profile, tmp_path):
    batch = reference_frame(200, seed=3)
    batch["row_id"] += 50_000
    batch["x"] = batch["x"].map(lambda v: f"{v:.6f}").astype(object)  # "0.340000": every value parses
    report = run_steward(batch, profile, tmp_path / "all", config=CONFIG)
    clean = dio.read_output(tmp_path / "all", "clean.parquet")
    assert "coerce_types" in [a["action"] for a in report.actions]
    assert clean["x"].dtype == np.float64 and len(clean) == 200  # the schema contract: the reference dtype
    assert report.validation["success"]

    batch.loc[[5, 6], "x"] = ["garbage", "0,5"]
    batch["y"] = batch["y"].astype(str).astype(object)
    batch.loc[7, "y"] = "n/a"
    report = run_steward(batch, profile, tmp_path / "some", config=CONFIG)
    clean = dio.read_output(tmp_path / "some", "clean.parquet")
    quarantine = dio.read_output(tmp_path / "some", "quarantine.parquet")
    assert clean["x"].dtype == np.float64 and clean["y"].dtype == np.float64
    assert report.counts["by_reason"] == {"type_mismatch": 3}
    assert quarantine["x"].tolist()[:2] == ["garbage", "0,5"] and quarantine["y"].tolist()[2] == "n/a"


def test_numbers_as_text_in_a_nullable_column_are_type_mismatch():
    ref = reference_frame(500)
    ref.loc[:9, "y"] = np.nan  # the reference allows nulls in y: y is not required
    prof = make_profile(ref)
    batch = reference_frame(100, seed=4)
    batch["y"] = batch["y"].astype(object)
    batch.loc[3, "y"] = "garbage"
    outcome = steward_features(batch, prof, id_column="row_id")
    assert outcome.by_reason == {"type_mismatch": 1} and not outcome.clean[3]


def test_schema_contract_holds_even_when_the_planner_skips_coercion(profile, tmp_path):
    batch = reference_frame(100, seed=5)
    batch["row_id"] += 60_000
    batch["x"] = batch["x"].astype(str)
    batch.loc[2, "x"] = "oops"
    pipeline = StewardPipeline(batch, profile=profile, output=tmp_path, config=CONFIG, validate="none")
    report = pipeline.run(planner=Script(("accept", {})))
    clean = dio.read_output(tmp_path, "clean.parquet")
    assert clean["x"].dtype == np.float64
    assert report.counts["by_reason"] == {"unresolved": 1}  # finalize caught the row that does not parse


# ---------------------------------------------------------------------------------------------- renames
def _swap_batch():
    batch = corrupted_batch(200)
    return batch.rename(columns={"x": "y", "y": "x"})


def test_swapping_columns_needs_approval(profile, tmp_path):
    swap = ("rename_columns", {"mapping": {"x": "y", "y": "x"}})
    pipeline = StewardPipeline(_swap_batch(), profile=profile, output=tmp_path / "no", config=CONFIG,
                               validate="none")
    pipeline.prepare()
    run = pipeline.run_agent(planner=Script(swap))
    step = run.steps[0]
    assert step.tool == "rename_columns" and step.status == "rejected"
    assert "exchanges" in step.verdict_reason and "destructive" in step.verdict_reason
    assert list(pipeline.agent.state.frame.columns) == list(_swap_batch().columns)  # nothing renamed

    pipeline = StewardPipeline(_swap_batch(), profile=profile, output=tmp_path / "yes", config=CONFIG,
                               validate="none")
    pipeline.prepare()
    run = pipeline.run_agent(planner=Script(swap), approver=_approve)
    assert run.steps[0].status == "ok" and run.steps[0].approval["approved"]
    pipeline.complete(run)
    clean = dio.read_output(tmp_path / "yes", "clean.parquet")
    assert clean["y"].between(-1, 11).all()  # y holds y's values again


def test_renaming_onto_an_existing_column_is_a_clear_error(profile):
    from airflow_agentic.data.steward import BatchState, rename_columns

    state = BatchState.from_frame(corrupted_batch(50), profile, CONFIG)
    with pytest.raises(RenameError, match="onto the existing column 'y'"):
        rename_columns(state, {"x": "y"})
    with pytest.raises(RenameError, match="both"):
        rename_columns(state, {"x": "z", "cat": "z"})
    pipeline = StewardPipeline(corrupted_batch(50), profile=profile, config=CONFIG, validate="none")
    pipeline.prepare()
    run = pipeline.run_agent(planner=Script(("rename_columns", {"mapping": {"x": "y"}})))
    assert run.steps[0].status == "error" and "onto the existing column" in run.steps[0].error
    assert "x" in pipeline.agent.state.frame.columns


def test_similar_name_is_a_finding_and_renaming_it_needs_approval(profile, tmp_path):
    batch = corrupted_batch(200).rename(columns={"cat": "cats"})
    pipeline = StewardPipeline(batch, profile=profile, config=CONFIG)
    pipeline.prepare()
    finding = next(f for f in pipeline.agent.state.findings.items if f.kind == "renamed_column")
    assert finding.detail == {"from": "cats", "to": "cat", "match": "similar", "needs_approval": True,
                              "optional": False}
    with pytest.raises(PipelineStopped, match="renaming .*cats->cat.* was not approved"):
        run_steward(batch, profile, tmp_path / "out", config=CONFIG)
    assert not (tmp_path / "out").exists()
    # A planner that finishes without the rename cannot write a batch missing a required column either.
    pipeline = StewardPipeline(batch, profile=profile, output=tmp_path / "finished", config=CONFIG)
    pipeline.prepare()
    with pytest.raises(PipelineStopped, match=r"required column\(s\) \['cat'\] missing"):
        pipeline.complete(pipeline.run_agent(planner=Script(("accept", {}))))
    assert not (tmp_path / "finished").exists()
    report = run_steward(batch, profile, tmp_path / "ok", config=CONFIG, approver=_approve)
    assert report.actions[0] == {"action": "rename_columns", "renamed": {"cats": "cat"}}
    # Case and spacing only: a plain repair, no approval.
    report = run_steward(corrupted_batch(200).rename(columns={"cat": " CAT"}), profile, tmp_path / "case",
                         config=CONFIG)
    assert report.actions[0]["renamed"] == {" CAT": "cat"}


# ---------------------------------------------------------------------------------------------- quarantine
def test_quarantine_keeps_rows_exactly_as_they_arrived(profile, tmp_path):
    batch = corrupted_batch(200)
    batch["x"] = batch["x"].astype(object)
    batch.loc[40, "x"] = "garbage"
    batch.loc[41, "cat"] = " RED "
    batch.loc[42, "cat"] = "purple"
    run_steward(batch, profile, tmp_path, config=CONFIG, validate="none")
    quarantine = dio.read_output(tmp_path, "quarantine.parquet").set_index("row_id")
    ids = batch["row_id"]
    x = quarantine["x"]
    assert x.loc[ids[0]] == "-999.0" and x.loc[ids[33]] == "inf" and x.loc[ids[40]] == "garbage"
    assert quarantine.loc[ids[42], "cat"] == "purple"
    assert quarantine.loc[ids[0], "_quarantine_reason"] == "sentinel"
    clean = dio.read_output(tmp_path, "clean.parquet").set_index("row_id")
    assert clean.loc[ids[41], "cat"] == "red"  # the repair is in the clean output only
    # numeric columns keep their type: -999 and inf stay numbers
    run_steward(corrupted_batch(200), profile, tmp_path / "numeric", config=CONFIG, validate="none")
    q = dio.read_output(tmp_path / "numeric", "quarantine.parquet").set_index("row_id")
    assert q.loc[ids[0], "x"] == -999.0 and np.isinf(q.loc[ids[33], "x"]) and q["x"].dtype == np.float64


def test_quarantining_most_of_a_batch_needs_approval(profile, tmp_path):
    batch = corrupted_batch(200)
    batch.loc[:130, "x"] = -999.0  # two thirds of the batch
    with pytest.raises(PipelineStopped, match="max_quarantine_share"):
        run_steward(batch, profile, tmp_path / "refused", config=CONFIG)
    assert not (tmp_path / "refused").exists()
    report = run_steward(batch, profile, tmp_path / "approved", config=CONFIG, approver=_approve)
    assert report.counts["quarantined"] > 130
    allowed = StewardConfig(id_column="row_id", drift=False, max_quarantine_share=1.0)
    assert run_steward(batch, profile, tmp_path / "configured", config=allowed).counts["quarantined"] > 130
    # A planner that skips the quarantine step does not get around the rule: finalize quarantines, settle refuses.
    pipeline = StewardPipeline(batch, profile=profile, output=tmp_path / "skipped", config=CONFIG)
    pipeline.prepare()
    run = pipeline.run_agent(planner=Script(("accept", {})))
    with pytest.raises(QuarantineNotApproved):
        pipeline.complete(run)
    assert not (tmp_path / "skipped").exists()
    with pytest.raises(ValueError, match="max_quarantine_share"):
        StewardConfig(max_quarantine_share=1.5)


# ---------------------------------------------------------------------------------------------- input
def test_duplicate_column_names_are_a_clear_input_error(profile, tmp_path):
    batch = corrupted_batch(50)
    doubled = pd.concat([batch, batch[["x", "cat"]]], axis=1)
    with pytest.raises(StewardInputError, match=r"duplicate column names \['x', 'cat'\]"):
        run_steward(doubled, profile, tmp_path / "frame", config=CONFIG)
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"]), path)
    with pytest.raises(StewardInputError, match=r"dup.parquet.*duplicate column names \['a'\]"):
        dio.read_batch(path)


def test_unknown_config_field_is_named():
    with pytest.raises(ValueError, match="unknown steward config field.*'nope'"):
        StewardConfig.from_dict({"nope": 1})


# ---------------------------------------------------------------------------------------------- commit
def test_output_folder_is_committed_as_a_unit(profile, tmp_path, monkeypatch):
    out = tmp_path / "out"
    report = run_steward(corrupted_batch(200), profile, out, config=CONFIG)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["complete"] is True and manifest["counts"] == report.counts
    assert manifest["files"]["clean.parquet"]["rows"] == report.counts["clean"]
    assert manifest["files"]["quarantine.parquet"]["rows"] == report.counts["quarantined"]
    assert set(manifest["files"]) == {"clean.parquet", "quarantine.parquet", "validation.json", "report.json"}
    assert len(dio.read_batch(out / "clean.parquet")) == report.counts["clean"]

    # A re-run into the same folder dies after its first file: the folder must not read as a whole.
    real = dio.write_bytes_atomic
    calls = []

    def dying(path, data, conn_id=None):
        calls.append(str(path))
        if len(calls) == 3:  # pending manifest, clean.parquet, then the disk goes
            raise OSError("worker killed")
        return real(path, data, conn_id)

    monkeypatch.setattr(dio, "write_bytes_atomic", dying)
    with pytest.raises(OSError):
        run_steward(corrupted_batch(150, seed=9), profile, out, config=CONFIG)
    monkeypatch.undo()
    with pytest.raises(dio.IncompleteOutput, match="pending"):
        dio.read_batch(out / "clean.parquet")
    with pytest.raises(dio.IncompleteOutput, match="pending"):
        dio.read_output(out, "quarantine.parquet")

    # A complete re-run commits again; a file overwritten behind the manifest's back is refused.
    rerun = corrupted_batch(150, seed=9)
    run_steward(rerun, profile, out, config=CONFIG)
    assert len(dio.read_output(out, "clean.parquet")) + len(dio.read_output(out, "quarantine.parquet")) == len(rerun)
    (out / "quarantine.parquet").write_bytes((out / "clean.parquet").read_bytes())
    with pytest.raises(dio.IncompleteOutput, match="checksum"):
        dio.read_batch(out / "quarantine.parquet")
    (out / "_manifest.json").unlink()
    with pytest.raises(dio.IncompleteOutput, match="never committed"):
        dio.read_output(out, "clean.parquet")


# ---------------------------------------------------------------------------------------------- paths
def test_resolve_path_is_the_one_resolver(tmp_path):
    from airflow.sdk import ObjectStoragePath

    for url in (str(tmp_path / "a.parquet"), tmp_path / "a.parquet", f"file://{tmp_path}/a.parquet"):
        path = dio.resolve_path(url)
        assert isinstance(path, ObjectStoragePath) and path.protocol == "file"
        assert dio.local_path(path) == tmp_path / "a.parquet"
    relative = dio.resolve_path("some/dir")
    assert str(dio.local_path(relative)).startswith("/")
    s3 = dio.resolve_path("s3://bucket/key.parquet", conn_id="aws_x")
    assert s3.protocol == "s3" and s3.conn_id == "aws_x"
    same = dio.resolve_path(s3)
    assert same is s3
    with pytest.raises(ValueError, match="empty"):
        dio.resolve_path("  ")


# ---------------------------------------------------------------------------------------------- the turn
def test_steward_features_matches_the_turns_steward(profile):
    """Same rows clean and quarantined, same reasons, as the flywheel turn's steward_rows of today."""
    from airflow_agentic.flywheel import turn as T

    for seed in range(4):
        features = corrupted_batch(300, seed=seed).drop(columns=["label"])
        prof = steward_profile(reference_frame(800, seed=seed + 10).drop(columns=["label"]), "row_id")
        new = steward_features(features, prof, id_column="row_id")
        if hasattr(T, "steward_rows"):
            old = T.steward_rows(features, prof, id_column="row_id")
            assert (new.clean == old.clean).all() and new.by_reason == old.by_reason
        assert new.quality()["rows"] == len(features) and not new.schema_broken
    features = corrupted_batch(100).drop(columns=["x", "label"])
    broken = steward_features(features, prof, id_column="row_id")
    assert broken.schema_broken and not broken.clean.any() and broken.quarantined == len(features)


def test_smotenc_finds_text_categories_whatever_the_string_dtype():
    from airflow_agentic.data.synthesis import SYNTHETIC_COLUMN, synthesize_minority

    rng = np.random.default_rng(1)
    colour = pd.array(rng.choice(["r", "g"], 60), dtype=pd.StringDtype(na_value=np.nan))  # pandas 3's "str"
    frame = pd.DataFrame({"a": rng.normal(size=60), "colour": colour, "label": [0] * 50 + [1] * 10})
    out = synthesize_minority(frame, "label")
    synthetic = out[out[SYNTHETIC_COLUMN]]
    assert len(synthetic) == 40 and set(synthetic["colour"]) <= {"r", "g"}


def test_turn_quarantines_heavy_corruption_as_the_rules_say_unless_told_otherwise():
    """The unattended turn keeps today's results for a batch mostly corrupt; a config with a share limit stops it."""
    features = corrupted_batch(200).drop(columns=["label"])
    features.loc[:150, "x"] = -999.0
    prof = steward_profile(reference_frame(800).drop(columns=["label"]), "row_id")
    outcome = steward_features(features, prof, id_column="row_id")
    assert outcome.quarantined > 150 and outcome.clean.any() and outcome.quality()["quarantined_share"] > 0.5
    strict = StewardConfig(id_column="row_id", range_tolerance=3.0, drift=False)
    stopped = steward_features(features, prof, id_column="row_id", config=strict)
    assert not stopped.clean.any() and stopped.by_reason == {"not_approved": len(features)}
    assert not stopped.schema_broken
