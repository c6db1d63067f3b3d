"""The Annotation & Synthesis agent on its own (no Airflow, no MLflow) and inside the continuous-learning turn
(real MLflow server): confident rows get automatic labels from the champion, rare classes get marked synthetic rows,
the rest waits for a person, and the gate sees only real labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _pool(rows: int = 600, seed: int = 0, unlabelled: float = 0.3, rare: float = 0.04) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = (x[:, 0] > 0).astype(float)
    rare_rows = rng.random(rows) < rare
    x[rare_rows] += 3.0  # a small, separable third class
    y[rare_rows] = 2
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=y, row_id=np.arange(rows))
    frame.loc[rng.random(rows) < unlabelled, "label"] = np.nan
    return frame


def test_agent_labels_synthesises_and_leaves_the_unsure_rows_to_people():
    from sklearn.linear_model import LogisticRegression

    from airflow_agentic.agents.annotation import LABEL_SOURCE_COLUMN, AnnotationAgent
    from airflow_agentic.agents.loop import AgentLoop
    from airflow_agentic.data.synthesis import SYNTHETIC_COLUMN

    pool = _pool()
    known = pool[pool.label.notna()]
    champion = LogisticRegression().fit(known[["a", "b", "c"]], known.label.astype(int))
    agent = AnnotationAgent(pool, target="label", champion=champion, threshold=0.9, rare_share=0.2)
    run = AgentLoop(agent, budget={"max_steps": 8}).run()
    assert run.status == "finished"
    assert [s.tool for s in run.steps] == ["auto_label", "synthesize_minority", "request_human_labels", "finish"]
    rows = agent.training_rows()
    sources = rows[LABEL_SOURCE_COLUMN].value_counts().to_dict()
    assert sources["given"] == len(known)  # no given label was touched or lost
    assert sources["auto"] > 0 and sources["synthetic"] == agent.synthetic_rows > 0
    assert rows.loc[rows[SYNTHETIC_COLUMN], "row_id"].isna().all()  # synthetic rows correspond to no input row
    assert agent.result()["waiting_for_people"] == int(pool.label.isna().sum()) - sources["auto"]
    counts = rows.label.value_counts()
    assert counts[2] >= 0.2 * counts.max() - 1


def test_no_champion_no_gap_nothing_to_do():
    from airflow_agentic.agents.annotation import AnnotationAgent
    from airflow_agentic.agents.loop import AgentLoop

    pool = _pool(unlabelled=0.0, rare=0.0)
    agent = AnnotationAgent(pool, target="label")
    run = AgentLoop(agent, budget={"max_steps": 8}).run()
    assert [s.tool for s in run.steps] == ["finish"] and agent.synthetic_rows == 0
    assert len(agent.training_rows()) == len(pool)


def test_turn_auto_labels_with_the_champion_and_gates_on_real_labels_only():
    from airflow_agentic.flywheel.store import MemoryStore
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch, first_champion, learn

    def labelled(frame):
        return LabelledBatch.from_frame(frame, target="label", id_column="row_id")

    store = MemoryStore()
    assert first_champion({0: labelled(make_batch("stable", seed=1)), 1: labelled(make_batch("stable", seed=2))},
                          store).status == "initial"
    batch = make_batch("stable", seed=3, rows=1500)
    batch.loc[batch.index % 3 == 0, "label"] = np.nan  # a third arrives without labels
    # Provenance as LabelStudioAnnotationSensor writes it: 200 of the labels were made by a model.
    batch["label_source"] = np.where(batch.label.isna(), None, np.where(batch.index % 5 == 1, "auto", "given"))
    batch["label_annotator"] = None
    turn = learn({"kind": "drift", "since_batch": 2}, {2: labelled(batch)}, store)
    annotation = next(s for s in turn.steps if s["agent"] == "annotation")
    assert annotation["tool"].startswith("auto_label"), annotation
    assert annotation["result"]["label_sources"]["auto"] > 200  # the 200 given as auto, plus those the champion is sure of
    # The gate judged on the 800 given labels only (cross-fitted: every given row is scored out of fold).
    assert turn.verdict["rows"] == int((batch.label_source == "given").sum())
    # Nothing changed in the concept: the candidates do not beat the champion, which keeps serving.
    assert turn.status == "rejected" and turn.champion_after == turn.champion_before
