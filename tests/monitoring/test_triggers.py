"""The drift triggers on a real temporary directory, driven by asyncio.run (no pytest-asyncio): serialisation
round-trips, new-file detection (the triggers only wait: they never read a batch), the rule, and burst
coalescing."""

from __future__ import annotations

import asyncio
import importlib
import json
import time


from monitoring_helpers import drifted, frame, harmless, write_batch


def _roundtrip(trigger):
    classpath, kwargs = trigger.serialize()
    json.dumps(kwargs)  # all JSON-able
    module, name = classpath.rsplit(".", 1)
    clone = getattr(importlib.import_module(module), name)(**kwargs)
    assert clone.serialize() == (classpath, kwargs)
    return clone


async def _first(agen, timeout):
    return await asyncio.wait_for(agen.__anext__(), timeout)


def test_drift_trigger_serialises_and_waits_for_new_files(tmp_path):
    from airflow_agentic.triggers.drift import DriftTrigger

    inbox = tmp_path / "in"
    write_batch(inbox, "old.parquet", frame(500, seed=5))
    (inbox / "_SUCCESS").write_text("")
    old = str(inbox / "old.parquet")
    trigger = _roundtrip(DriftTrigger(path=f"file://{inbox}", seen=[old], poll_interval=0.2))

    async def scenario():
        agen = trigger.run()
        waiting = asyncio.ensure_future(_first(agen, 20))
        await asyncio.sleep(0.6)
        assert not waiting.done()  # the seen file and the manifest are not new data
        # Not a batch anyone could read: the trigger only lists, so it fires all the same.
        (inbox / "b1.parquet").write_bytes(b"not parquet")
        return await waiting

    payload = asyncio.run(scenario()).payload
    assert payload["status"] == "success" and "report" not in payload
    assert payload["files"] == [str(inbox / "b1.parquet")]
    assert set(payload["seen"]) == {old, str(inbox / "b1.parquet")}
    assert payload["since"] == (inbox / "b1.parquet").stat().st_mtime
    json.dumps(payload)


def test_drift_trigger_accepts_arguments_of_earlier_versions(tmp_path):
    """A trigger serialised before the upgrade (it computed drift) still resumes; the statistics args are dropped."""
    import pytest

    from airflow_agentic.triggers.drift import DriftTrigger

    old = DriftTrigger(path="file:///in", profile_path="file:///p.npz", columns=["x1"], alpha=0.01,
                       correction="bh", fmt="parquet", seen=["a"], since=1.0, min_files=2, poll_interval=3,
                       conn_id=None)
    assert _roundtrip(old).serialize()[1] == {"path": "file:///in", "seen": ["a"], "since": 1.0, "min_files": 2,
                                              "poll_interval": 3.0, "conn_id": None}
    with pytest.raises(TypeError, match="bogus"):
        DriftTrigger(path="file:///in", bogus=1)


def test_drift_trigger_since_marker_and_error_event(tmp_path):
    from airflow_agentic.triggers.drift import DriftTrigger

    inbox = tmp_path / "in"
    write_batch(inbox, "a.parquet", frame(300))
    since = (inbox / "a.parquet").stat().st_mtime
    trigger = DriftTrigger(path=f"file://{inbox}/*.parquet", since=since, poll_interval=0.1)

    async def scenario():
        agen = trigger.run()
        waiting = asyncio.ensure_future(_first(agen, 20))
        await asyncio.sleep(0.4)
        assert not waiting.done()  # not newer than the marker
        time.sleep(0.01)
        write_batch(inbox, "b.parquet", frame(300))
        return await waiting

    assert asyncio.run(scenario()).payload["files"] == [str(inbox / "b.parquet")]
    broken = DriftTrigger(path="nosuchscheme://bucket/in", poll_interval=0.1)
    event = asyncio.run(_first(broken.run(), 20))
    assert event.payload["status"] == "error" and "nosuchscheme://bucket/in" in event.payload["message"]
    assert event.payload["files"] == []


def _event_trigger(tmp_path, **kw):
    from airflow_agentic.triggers.drift_event import DriftEventTrigger

    return _roundtrip(DriftEventTrigger(path=f"file://{tmp_path / 'in'}", mode="batches", poll_interval=0.1, **kw))


def test_event_trigger_batches_mode_coalesces_a_burst_of_new_files(tmp_path):
    """Batch mode is "a new file": no statistics in the triggerer, so even an unreadable file is an event."""
    inbox = tmp_path / "in"
    write_batch(inbox, "existing.parquet", drifted(seed=9))  # there before the watcher: baseline, not an event
    trigger = _event_trigger(tmp_path, cooldown=1.5)

    async def scenario():
        agen = trigger.run()
        first = asyncio.ensure_future(_first(agen, 30))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(write_batch, inbox, "h.parquet", harmless())
        await asyncio.sleep(0.2)
        (inbox / "garbage.parquet").write_bytes(b"not parquet")
        await asyncio.sleep(0.2)
        (inbox / "_SUCCESS").write_text("")  # a manifest, not a batch
        await asyncio.to_thread(write_batch, inbox, "d0.parquet", drifted(seed=10))
        event = await first
        # After the window closed, the next batch is a new event of its own.
        await asyncio.to_thread(write_batch, inbox, "later.parquet", drifted(seed=20))
        second = await _first(agen, 30)
        await agen.aclose()
        return event, second

    event, second = asyncio.run(scenario())
    payload = event.payload
    assert payload["mode"] == "batches" and payload["count"] == 3
    assert [f.rsplit("/", 1)[1] for f in payload["files"]] == ["h.parquet", "garbage.parquet", "d0.parquet"]
    assert all(r["report"] is None and r["reason"] == "new batch file" for r in payload["reports"])
    assert payload["window_seconds"] >= 1.5
    assert [f.rsplit("/", 1)[1] for f in second.payload["files"]] == ["later.parquet"]
    json.dumps(payload)


def test_event_trigger_refuses_the_removed_statistics_mode():
    import pytest

    from airflow_agentic.triggers.drift_event import DriftEventTrigger

    with pytest.raises(ValueError, match="mode='batches'"):
        DriftEventTrigger(path="file:///x", profile_path="file:///p.npz")
    with pytest.raises(ValueError, match="mode must be"):
        DriftEventTrigger(path="file:///x", mode="stats")


def test_event_trigger_rule():
    from airflow_agentic.triggers.drift_event import DriftEventTrigger

    t = _roundtrip(DriftEventTrigger(path="file:///x", min_effect=0.3, columns=["x1"]))
    assert t.matters({"action": "request_retraining", "reasons": []})[0]
    assert not t.matters({"decision": {"action": "alert"}, "state": {}})[0]
    assert not t.matters({"detected": False, "score": 0.0})[0]
    assert not t.matters({"detected": True, "score": 0.3, "max_effect": 0.1, "drifted_columns": ["x1"]})[0]
    assert not t.matters({"detected": True, "score": 0.3, "max_effect": 0.9, "drifted_columns": ["x2"]})[0]
    assert t.matters({"detected": True, "score": 0.3, "max_effect": 0.9, "drifted_columns": ["x1", "x2"]})[0]


def test_event_trigger_reads_reports_and_remembers_through_the_state_store(tmp_path):
    """Reports mode (JSON written by a monitoring DAG), and the processed names kept in the asset state store
    survive a restart of the trigger."""
    from airflow_agentic.triggers.drift_event import DriftEventTrigger

    class Store:
        def __init__(self):
            self.data = {}

        async def aget(self, key, default=None):
            return self.data.get(key, default)

        async def aset(self, key, value):
            self.data[key] = json.loads(json.dumps(value))

    inbox = tmp_path / "reports"
    inbox.mkdir()
    store = Store()

    def make():
        t = _roundtrip(DriftEventTrigger(path=f"file://{inbox}", cooldown=0.3, poll_interval=0.1))
        t.asset_state_store = store
        return t

    (inbox / "old.json").write_text(json.dumps({"action": "request_retraining", "reasons": ["old"]}))

    async def scenario():
        agen = make().run()
        first = asyncio.ensure_future(_first(agen, 20))
        await asyncio.sleep(0.4)
        (inbox / "a.json").write_text(json.dumps({"decision": {"action": "alert", "reasons": ["shift"]}}))
        (inbox / "b.json").write_text(json.dumps({"action": "request_retraining", "reasons": ["drop"]}))
        event = await first
        await agen.aclose()
        # "Restart": a new instance with the same store; c.json arrived while it was down.
        (inbox / "c.json").write_text(json.dumps({"action": "request_retraining", "reasons": ["drop 2"]}))
        agen = make().run()
        again = await _first(agen, 20)
        await agen.aclose()
        return event, again

    event, again = asyncio.run(scenario())
    assert [r["report"]["reasons"] for r in event.payload["reports"]] == [["drop"]]
    assert [r["report"]["reasons"] for r in again.payload["reports"]] == [["drop 2"]]
