from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_agentic.data.labels import auto_label, label_issues, merge_labels
from airflow_agentic.data.labelstudio import LabelStudioClient, annotations_to_records, label_from_result
from airflow_agentic.data.synthesis import (
    SYNTHETIC_COLUMN,
    CallableGenerator,
    evaluation_rows,
    generate_text_rows,
    synthesize_minority,
)


def blobs(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 2)) + y[:, None] * 6.0
    return X, y


def test_auto_label_threshold():
    from sklearn.linear_model import LogisticRegression

    X, y = blobs()
    model = LogisticRegression().fit(X, y)
    X_new = np.array([[0.0, 0.0], [6.0, 6.0], [3.0, 3.0]])
    result = auto_label(model, X_new, threshold=0.95, row_ids=[10, 11, 12])
    assert result.auto_rows == [10, 11] and result.human_rows == [12]
    assert result.labels[:2] == [0, 1] and result.labels[2] is None
    assert result.to_dict()["summary"] == {"auto": 2, "needs_human": 1}
    assert [r["row_id"] for r in result.records([10, 11, 12])] == [10, 11]


def test_label_issues_finds_flipped_labels():
    X, y = blobs()
    flipped = np.array([3, 50, 120, 333])
    noisy = y.copy()
    noisy[flipped] = 1 - noisy[flipped]
    issues = label_issues(X, noisy, row_ids=np.arange(len(y)) + 1000)
    found = set(issues["row_id"])
    assert set(flipped + 1000) <= found and len(found) < 20
    row = issues.set_index("row_id").loc[1003]
    assert row["suggested"] == y[3] and row["given"] == noisy[3]


def test_smote_marks_synthetic_rows():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"row_id": np.arange(130), "a": rng.normal(size=130), "b": rng.normal(size=130),
                          "label": [0] * 100 + [1] * 25 + [2] * 5})
    out = synthesize_minority(frame, "label", id_column="row_id")
    assert out[SYNTHETIC_COLUMN].sum() == (100 - 25) + (100 - 5)
    assert (out["label"].value_counts() == 100).all()
    assert out.loc[out[SYNTHETIC_COLUMN], "row_id"].isna().all()
    pd.testing.assert_frame_equal(evaluation_rows(out).drop(columns=[SYNTHETIC_COLUMN]), frame,
                                  check_dtype=False)


def test_smotenc_with_categories():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=60), "colour": rng.choice(["r", "g"], 60),
                          "label": [0] * 50 + [1] * 10})
    out = synthesize_minority(frame, "label")
    synthetic = out[out[SYNTHETIC_COLUMN]]
    assert len(synthetic) == 40 and set(synthetic["colour"]) <= {"r", "g"}


def test_text_generator_is_pluggable():
    calls = []

    def fake_llm(prompt, n):
        calls.append(prompt)
        return [f"great product {i}" for i in range(n)]

    examples = pd.DataFrame({"text": ["love it", "meh"], "label": ["pos", "neg"]})
    rows = generate_text_rows(fake_llm, examples, text_column="text", target="label", label="pos", n=3)
    assert len(rows) == 3 and rows[SYNTHETIC_COLUMN].all() and "love it" in calls[0]
    single = CallableGenerator(lambda prompt: "one")
    assert single.generate("p", 2) == ["one", "one"]


def test_merge_labels_provenance_and_conflicts():
    given = [{"row_id": 1, "label": "a", "source": "given"}, {"row_id": 2, "label": "b", "source": "given"}]
    auto = [{"row_id": 2, "label": "a", "source": "auto", "annotator": "model", "confidence": 0.97},
            {"row_id": 3, "label": "c", "source": "auto", "annotator": "model", "confidence": 0.99}]
    human = [{"row_id": 3, "label": "b", "source": "human", "annotator": "ann"},
             {"row_id": 3, "label": "b", "source": "human", "annotator": "bob"},
             {"row_id": 3, "label": "c", "source": "human", "annotator": "cid"}]
    merged = merge_labels(given, auto, human)
    assert merged.labels() == {1: "a", 2: "a", 3: "b"}
    by_row = {r["row_id"]: r for r in merged.records}
    assert by_row[3]["source"] == "human" and by_row[3]["votes"] == 2
    assert by_row[2]["source"] == "auto" and by_row[2]["confidence"] == 0.97
    assert {c["row_id"] for c in merged.conflicts} == {2, 3}
    assert merged.to_dict()["by_source"] == {"given": 1, "auto": 1, "human": 1}


def test_label_studio_records_from_plain_data():
    tasks = [{"id": 1, "data": {"row_id": 7, "text": "x"}}, {"id": 2, "data": {"row_id": 8, "text": "y"}}]
    anns = {1: [{"id": 10, "result": [{"from_name": "label", "value": {"choices": ["pos"]}}],
                 "created_username": "ann", "was_cancelled": False}],
            2: [{"id": 11, "result": [], "was_cancelled": True}]}
    records = annotations_to_records(tasks, anns)
    assert records == [{"row_id": 7, "label": "pos", "source": "human", "annotator": "ann", "confidence": None,
                        "task_id": 1, "annotation_id": 10, "ground_truth": False, "updated_at": ""}]
    assert label_from_result([{"from_name": "t", "value": {"taxonomy": [["a", "b"]]}}]) == "b"
    merged = merge_labels([{"row_id": 7, "label": "neg", "source": "auto"}], records)
    assert merged.labels() == {7: "pos"}


class _FakeSDK:
    """Just enough of label_studio_sdk's surface to test idempotence of the client logic."""

    class _NS:
        pass

    def __init__(self):
        self.created, self.tasks_store = [], []
        self.projects = self._NS()
        self.projects.list = lambda title=None: [p for p in self.created if p["title"] == title]
        self.projects.create = self._create
        self.projects.import_tasks = self._import
        self.tasks = self._NS()
        self.tasks.list = lambda project=None, fields=None: [t for t in self.tasks_store if t["project"] == project]
        self.annotations = self._NS()
        self.annotations.list = lambda id: [{"id": 1, "result": [{"value": {"choices": ["pos"]}}],
                                             "completed_by": 5}]

    def _create(self, title, label_config):
        project = {"id": len(self.created) + 1, "title": title}
        self.created.append(project)
        return project

    def _import(self, id, request, return_task_ids):
        ids = []
        for item in request:
            task = {"id": len(self.tasks_store) + 100, "project": id, "data": item["data"], "total_annotations": 0}
            self.tasks_store.append(task)
            ids.append(task["id"])
        return {"task_ids": ids}


def test_label_studio_client_is_idempotent():
    fake = _FakeSDK()
    client = LabelStudioClient("http://unused", "k", client=fake)
    pid = client.project("steward", "<View/>")
    assert client.project("steward", "<View/>") == pid and len(fake.created) == 1
    rows = [{"row_id": np.int64(i), "text": f"t{i}"} for i in range(3)]
    assert client.import_rows(pid, rows)["imported"] == 3
    again = client.import_rows(pid, rows + [{"row_id": 3, "text": "t3"}])
    assert again["imported"] == 1 and again["skipped"] == 3 and len(fake.tasks_store) == 4
    fake.tasks_store[0]["total_annotations"] = 1
    assert client.annotated_count(pid) == 1
    assert client.labels(pid) == [{"row_id": 0, "label": "pos", "source": "human", "annotator": 5,
                                   "confidence": None, "task_id": 100, "annotation_id": 1, "ground_truth": False,
                                   "updated_at": ""}]
    with pytest.raises(ValueError):
        client.import_rows(pid, [{"text": "no id"}])


def test_text_synthesis_through_the_llm_connection(scripted_llm, monkeypatch):
    """The generator of an `agentic_llm` connection, through the real `openai` client against the loopback server:
    list markers stripped, repeats dropped, asked again while short; a failing endpoint is a clear error."""
    import json

    import pandas as pd

    from airflow_agentic.data import SynthesisError
    from airflow_agentic.hooks.llm import AgenticLLMHook

    monkeypatch.setenv("AIRFLOW_CONN_SYNTH_LLM", json.dumps({
        "conn_type": "agentic_llm", "host": scripted_llm.base_url,
        "extra": {"model": "scripted-model", "max_retries": 0, "timeout": 10}}))
    generator = AgenticLLMHook("synth_llm").text_generator()
    examples = pd.DataFrame({"text": ["love it", "meh", "works great"], "label": ["pos", "neg", "pos"]})
    start = scripted_llm.calls
    scripted_llm.then({"text": "1. A joy to use\n- Works as promised\n\n"},
                      {"text": "* Works as promised\n2) Best purchase this year\nWould buy again"})
    rows = generate_text_rows(generator, examples, text_column="text", target="label", label="pos", n=4)
    assert rows["text"].tolist() == ["A joy to use", "Works as promised", "Best purchase this year",
                                     "Would buy again"]
    assert rows[SYNTHETIC_COLUMN].all() and (rows["label"] == "pos").all()
    assert scripted_llm.calls - start == 2
    prompt = scripted_llm.requests[start]["messages"][-1]["content"]
    assert "love it" in prompt and "works great" in prompt and "meh" not in prompt  # shots of the asked label only

    scripted_llm.then({"status": 500})
    with pytest.raises(SynthesisError, match="text generation failed on model 'scripted-model'"):
        generate_text_rows(generator, examples, text_column="text", target="label", label="pos", n=2)
    scripted_llm.then({"text": "   \n\n"}, {"text": ""}, {"text": "\n"})
    with pytest.raises(SynthesisError, match="no usable text for label 'pos'"):
        generate_text_rows(generator, examples, text_column="text", target="label", label="pos", n=2)
