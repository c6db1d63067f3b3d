"""AnnotationOperator + LabelStudioAnnotationSensor against a real Label Studio on loopback and a champion model
registered in MLflow: auto-labels, idempotent import, a person annotating through the API while the deferred sensor
waits, the merge with provenance, and Label Studio being unreachable."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from dagbag import load_dag  # tests/steward/conftest.py (imported at collection)

pytestmark = pytest.mark.integration

HUMAN_X = [-0.04, -0.01, 0.02, 0.05]  # right at the boundary: the champion is unsure


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A logistic regression on x (label = x > 0) registered as models:/<name>@champion in a local MLflow store."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("annotation", artifact_location=f"file://{root}/artifacts")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=400), "y": rng.uniform(0, 10, 400)})
    y = (X["x"] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    name = f"annotator-{uuid.uuid4().hex[:6]}"
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                 signature=infer_signature(X, model.predict(X)))
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")
    return {"uri": uri, "name": name}


def _rows(path):
    rng = np.random.default_rng(1)
    far = np.concatenate([rng.uniform(2, 4, 20), -rng.uniform(2, 4, 20)])
    x = np.concatenate([far, HUMAN_X])
    frame = pd.DataFrame({"row_id": np.arange(1000, 1000 + len(x)), "x": x, "y": rng.uniform(0, 10, len(x)),
                          "label": pd.array([pd.NA] * len(x), dtype="Int64")})
    frame.loc[:4, "label"] = (frame.loc[:4, "x"] > 0).astype(int)  # a few rows already have a label
    frame.to_parquet(path, index=False)
    return frame


def _conf(tmp_path, champion, project):
    rows = tmp_path / "rows.parquet"
    frame = _rows(rows)
    return frame, {"source": str(rows), "output": str(tmp_path / "out"), "model": champion["name"],
                   "tracking_uri": champion["uri"], "project": project}


def _xcom(dr, task_id):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id=task_id,
                                                 key="return_value").one()
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


class Annotator(threading.Thread):
    """A person in Label Studio: waits for the project's tasks, then labels each of them as class 1."""

    def __init__(self, server, title: str, expected: int):
        super().__init__(daemon=True)
        self.server, self.title, self.expected = server, title, expected
        self.done: list[int] = []
        self.error: Exception | None = None

    def run(self):
        from label_studio_sdk.client import LabelStudio

        try:
            client = LabelStudio(base_url=self.server.url, api_key=self.server.token)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                projects = [p for p in client.projects.list(title=self.title) if p.title == self.title]
                tasks = list(client.tasks.list(project=projects[0].id)) if projects else []
                if len(tasks) >= self.expected:
                    time.sleep(1.5)  # the sensor has deferred and polls a project with nothing annotated yet
                    for task in tasks:
                        client.annotations.create(id=task.id, result=[{
                            "from_name": "label", "to_name": "text", "type": "choices",
                            "value": {"choices": ["1"]}}])
                        self.done.append(task.id)
                    return
                time.sleep(0.5)
            raise TimeoutError("no tasks appeared in Label Studio")
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def test_auto_label_then_people_then_merge(airflow_db, labelstudio, champion, tmp_path):
    title = f"steward-tests-{uuid.uuid4().hex[:8]}"
    frame, conf = _conf(tmp_path, champion, title)
    person = Annotator(labelstudio, title, expected=len(HUMAN_X))
    person.start()
    dag = load_dag("agentic_test_annotation_wait")
    dr = dag.test(run_conf=conf)
    person.join(10)
    assert person.error is None and len(person.done) == len(HUMAN_X)
    assert dr.state == "success"
    sent = _xcom(dr, "annotate")
    unlabelled = int(frame["label"].isna().sum())
    assert sent["needs_human"] == len(HUMAN_X) and sent["auto"] == unlabelled - len(HUMAN_X)
    assert sent["imported"] == len(HUMAN_X) and sent["skipped"] == 0
    merged = _xcom(dr, "wait_for_labels")
    assert merged["by_source"] == {"given": 5, "auto": unlabelled - len(HUMAN_X), "human": len(HUMAN_X)}
    assert merged["labelled_rows"] == len(frame) and merged["human_labels"] is True
    training = pd.read_parquet(merged["training_location"])
    assert len(training) == len(frame) and training["row_id"].is_unique
    human = training[training["label_source"] == "human"]
    assert sorted(human["x"]) == sorted(HUMAN_X) and set(human["label"]) == {1}
    assert human["label_annotator"].str.contains("steward-tests@example.com").all()
    auto = training[training["label_source"] == "auto"]
    assert (auto["label"] == (auto["x"] > 0).astype(int)).all() and (auto["label_confidence"] >= 0.9).all()
    assert auto["label_annotator"].str.startswith(f"{champion['name']}@champion").all()

    # A re-run (a retry, or the next day's run on the same rows): nothing is imported twice, no label duplicated.
    again = dag.test(run_conf=conf)
    assert again.state == "success"
    resent = _xcom(again, "annotate")
    assert resent["project_id"] == sent["project_id"] and resent["imported"] == 0
    assert resent["skipped"] == len(HUMAN_X)
    remerged = _xcom(again, "wait_for_labels")
    assert remerged["by_source"] == merged["by_source"] and remerged["labelled_rows"] == len(frame)
    from label_studio_sdk.client import LabelStudio

    client = LabelStudio(base_url=labelstudio.url, api_key=labelstudio.token)
    assert len(list(client.tasks.list(project=sent["project_id"]))) == len(HUMAN_X)


def test_labelstudio_unreachable(airflow_db, champion, tmp_path, monkeypatch, capsys):
    from servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AIRFLOW_CONN_LABELSTUDIO_TEST", json.dumps({"conn_type": "labelstudio", "host": dead,
                                                                    "password": "x" * 40}))
    frame, conf = _conf(tmp_path, champion, "unreachable")
    unlabelled = int(frame["label"].isna().sum())
    # auto_only: carry on with the automatic labels, say so, leave the unsure rows unlabelled.
    dr = load_dag("agentic_test_annotation_auto_only").test(run_conf=conf)
    assert dr.state == "success"
    assert _xcom(dr, "annotate")["labelstudio"] == "unavailable"
    merged = _xcom(dr, "wait_for_labels")
    assert merged["by_source"] == {"given": 5, "auto": unlabelled - len(HUMAN_X)}
    assert "unavailable" in merged["note"] and "auto_only" in merged["note"]
    assert len(pd.read_parquet(merged["training_location"])) == len(frame) - len(HUMAN_X)
    # wait: the task fails with a clear message (its retry imports again, idempotently); nothing merged.
    conf["output"] = str(tmp_path / "out-wait")
    dr = load_dag("agentic_test_annotation_wait").test(run_conf=conf)
    assert dr.state == "failed"
    assert "on_unavailable='wait'" in capsys.readouterr().out
    assert not (tmp_path / "out-wait" / "merged").exists()


def test_trigger_keeps_waiting_or_gives_up_per_policy(monkeypatch):
    from servers import free_port

    from airflow_agentic.triggers.annotation import LabelStudioAnnotationTrigger

    monkeypatch.setenv("AIRFLOW_CONN_LS_DEAD", json.dumps({"conn_type": "labelstudio",
                                                           "host": f"http://127.0.0.1:{free_port()}",
                                                           "password": "x" * 40}))
    waiting = LabelStudioAnnotationTrigger("ls_dead", 7, 3, row_ids=[1, 2, 3], poll_interval=0.2)
    classpath, kwargs = waiting.serialize()
    assert classpath == "airflow_agentic.triggers.annotation.LabelStudioAnnotationTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs and "x" * 40 not in json.dumps(kwargs)  # no token stored

    async def first_event(trigger, timeout):
        return await asyncio.wait_for(trigger.run().__anext__(), timeout)

    with pytest.raises(asyncio.TimeoutError):  # "wait": still polling an unreachable Label Studio
        asyncio.run(first_event(waiting, 2.0))
    giving_up = LabelStudioAnnotationTrigger(**{**kwargs, "on_unavailable": "auto_only"})
    event = asyncio.run(first_event(giving_up, 30.0))
    assert event.payload["status"] == "unavailable" and "unavailable" in event.payload["error"]
