"""The drift triggers on a real temporary directory, driven by asyncio.run (no pytest-asyncio): serialisation
round-trips, new-file detection, drift reports in the payload, the rule, and burst coalescing."""

from __future__ import annotations

import asyncio
import importlib
import json
import time


from monitoring_helpers import drifted, frame, harmless, save_profile, write_batch


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

    profile = save_profile(tmp_path / "profile.npz")
    inbox = tmp_path / "in"
    write_batch(inbox, "old.parquet", frame(500, seed=5))
    (inbox / "_SUCCESS").write_text("")
    old = str(inbox / "old.parquet")
    trigger = _roundtrip(DriftTrigger(path=f"file://{inbox}", profile_path=f"file://{profile}", seen=[old],
                                      columns=["x1", "x2"], poll_interval=0.2))

    async def scenario():
        agen = trigger.run()
        waiting = asyncio.ensure_future(_first(agen, 20))
        await asyncio.sleep(0.6)
        assert not waiting.done()  # the seen file and the manifest are not new data
        started = time.monotonic()
        ticks = 0

        async def ticker():  # the event loop keeps turning while the statistics run
            nonlocal ticks
            while not waiting.done():
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.ensure_future(ticker())
        await asyncio.to_thread(write_batch, inbox, "b1.parquet", drifted())
        event = await waiting
        await tick
        return event, time.monotonic() - started, ticks

    event, elapsed, ticks = asyncio.run(scenario())
    payload = event.payload
    assert payload["status"] == "success"
    assert payload["files"] == [str(inbox / "b1.parquet")]
    assert set(payload["seen"]) == {old, str(inbox / "b1.parquet")}
    report = payload["report"]
    assert report["detected"] and report["drifted_columns"] == ["x1"]
    assert [c["column"] for c in report["columns"]] == ["x1", "x2"]
    assert ticks > 3, "the event loop was blocked"
    json.dumps(payload)


def test_drift_trigger_since_marker_and_error_event(tmp_path):
    from airflow_agentic.triggers.drift import DriftTrigger

    inbox = tmp_path / "in"
    write_batch(inbox, "a.parquet", frame(300))
    trigger = DriftTrigger(path=f"file://{inbox}/*.parquet", profile_path=f"file://{tmp_path}/missing.npz",
                           since=0.0, poll_interval=0.1)
    event = asyncio.run(_first(trigger.run(), 20))
    assert event.payload["status"] == "error" and "missing.npz" in event.payload["message"]
    assert event.payload["files"] == [str(inbox / "a.parquet")]


def _event_trigger(tmp_path, **kw):
    from airflow_agentic.triggers.drift_event import DriftEventTrigger

    profile = save_profile(tmp_path / "profile.npz")
    return _roundtrip(DriftEventTrigger(path=f"file://{tmp_path / 'in'}", profile_path=f"file://{profile}",
                                        min_effect=0.3, poll_interval=0.1, **kw))


def test_event_trigger_coalesces_a_burst_and_ignores_harmless_shift(tmp_path):
    inbox = tmp_path / "in"
    write_batch(inbox, "existing.parquet", drifted(seed=9))  # there before the watcher: baseline, not an event
    trigger = _event_trigger(tmp_path, cooldown=1.5)

    async def scenario():
        agen = trigger.run()
        first = asyncio.ensure_future(_first(agen, 30))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(write_batch, inbox, "h.parquet", harmless())
        await asyncio.sleep(0.6)
        for k in range(3):
            await asyncio.to_thread(write_batch, inbox, f"d{k}.parquet", drifted(seed=10 + k))
            await asyncio.sleep(0.2)
        event = await first
        # After the window closed, the next drifted batch is a new event of its own.
        await asyncio.to_thread(write_batch, inbox, "later.parquet", drifted(seed=20))
        second = await _first(agen, 30)
        await agen.aclose()
        return event, second

    event, second = asyncio.run(scenario())
    payload = event.payload
    assert payload["count"] == 3
    assert [f.rsplit("/", 1)[1] for f in payload["files"]] == ["d0.parquet", "d1.parquet", "d2.parquet"]
    assert all(r["report"]["detected"] and "x1" in r["report"]["drifted_columns"] for r in payload["reports"])
    assert payload["window_seconds"] >= 1.5
    assert [f.rsplit("/", 1)[1] for f in second.payload["files"]] == ["later.parquet"]
    json.dumps(payload)


def test_event_trigger_rule():
    from airflow_agentic.triggers.drift_event import DriftEventTrigger

    t = DriftEventTrigger(path="file:///x", min_effect=0.3, columns=["x1"])
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
