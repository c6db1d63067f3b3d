"""The MLflow server killed (SIGKILL) in the middle of a continuous-learning turn: the turn fails with a clear error,
the registry keeps the old champion or the new one on ``champion`` (never neither), and the retry with the same run
key registers no second version and ends with the new champion. ``learn`` on an ``MlflowStore`` is what
``ContinuousLearningOperator`` runs; the server is a real ``mlflow server`` on loopback, restarted on the same
backend store."""

from __future__ import annotations

import json
import os
import signal

import pytest

from servers import MLflowServer

pytestmark = pytest.mark.integration

MODEL = "faults_killed_registry"
ROWS = 400  # per batch: enough for the gate, small enough to train in a blink


def _batches(kinds: dict[int, str]) -> dict:
    from airflow_agentic.flywheel.streams import make_batch
    from airflow_agentic.flywheel.turn import LabelledBatch

    return {b: LabelledBatch.from_frame(make_batch(kind, rows=ROWS, seed=100 + b, start_id=b * 10_000), target="label",
                                        id_column="row_id") for b, kind in kinds.items()}


class Registry:
    """A real MLflow server we may kill and start again on the same SQLite store and artifacts."""

    def __init__(self, root):
        self.root = root
        self.server = MLflowServer(root).start()
        self.url = self.server.url

    def kill(self) -> None:
        os.killpg(self.server.proc.pid, signal.SIGKILL)  # our own server's process group (uvicorn + worker)
        self.server.proc.wait(30)
        self.server.proc = None

    def restart(self) -> None:
        self.server = MLflowServer(self.root, port=self.server.port).start()

    def state(self) -> tuple[dict[str, str], set[str], list]:
        from mlflow import MlflowClient

        client = MlflowClient(self.url)
        model = client.get_registered_model(MODEL)
        versions = {v.version for v in client.search_model_versions(f"name = '{MODEL}'")}
        history = json.loads((model.tags or {}).get("agentic.promotion_history", "[]"))
        return {k: str(v) for k, v in model.aliases.items()}, versions, history


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    # Fail fast while the server is down (the client otherwise retries 7 times with backoff, minutes in all).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    registry = Registry(tmp_path / "mlflow")
    yield registry
    registry.server.stop()


def test_mlflow_killed_mid_turn(registry, tmp_path, fault):
    from airflow_agentic.config import mlflow_tracking

    with mlflow_tracking(registry.url):  # as ContinuousLearningOperator runs the turn (models:/ URIs resolve here)
        _turns(registry, tmp_path, fault)


def _turns(registry, tmp_path, fault):
    from airflow_agentic.flywheel.store import MlflowStore
    from airflow_agentic.flywheel.turn import first_champion, learn
    from airflow_agentic.models.registry import RegistryError

    profiles = f"file://{tmp_path}/profiles"

    def store():  # a fresh store per attempt, as a new worker process builds one
        return MlflowStore(MODEL, registry.url, profile_dir=profiles)

    v1 = first_champion(_batches({0: "stable", 1: "stable"}), store(), run_key="faults-first").champion_after

    # Killed at the alias move itself: the new version registered, `previous` already moved to the old champion,
    # `champion` not yet. (Killed right after `register` is the worker test's second fault.)
    batches = _batches({0: "stable", 1: "stable", 2: "drifted", 3: "drifted"})
    request = {"kind": "drift", "since_batch": 2, "reason": "drift at batch 2"}
    attempt = store()
    set_alias = attempt.client.set_registered_model_alias

    def kill_at_champion_move(name, alias, version):
        if alias == "champion":
            registry.kill()
        return set_alias(name, alias, version)

    attempt.client.set_registered_model_alias = kill_at_champion_move
    with pytest.raises(RegistryError, match="set champion") as failed:
        learn(request, batches, attempt, run_key="faults.turn")
    registry.restart()
    aliases, versions_killed, _ = registry.state()
    assert aliases.get("champion") == v1, f"champion must stay on the old version, aliases {aliases}"
    v2 = aliases["challenger"]  # registered before the kill
    assert aliases["previous"] == v1 and versions_killed == {v1, v2}
    retry = learn(request, batches, store(), run_key="faults.turn")
    aliases, versions_after, history = registry.state()
    assert retry.status == "promoted" and retry.champion_after == v2
    assert versions_after == versions_killed, "the retry registered a second version"
    assert aliases["champion"] == retry.champion_after and aliases["previous"] == v1
    assert [(h["from"], h["to"]) for h in history] == [(None, v1), (v1, v2)]
    fault.add("MLflow server SIGKILLed at the `champion` alias move (`previous` already set); restarted",
              f"turn failed: {type(failed.value).__name__} ({failed.value.step}); after restart champion=v{v1} "
              f"(old); retry {retry.status} v{retry.champion_after}, previous=v{v1}, "
              f"versions {sorted(versions_after)} (none added)")
