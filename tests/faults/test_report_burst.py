"""200 drift reports landing at once start one retraining: the drift Asset's watcher (``DriftEventTrigger`` in
report mode) bundles the burst into ONE event that names every report. Run directly in asyncio on a real folder
(the scheduler-level burst test is tests/e2e/test_flywheel_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import os

REPORTS = 200


def _land(folder, n: int) -> None:
    """Every report written as the monitoring step writes it (temporary name, then a rename), all at once."""
    for k in range(n):
        report = {"decision": {"action": "request_retraining", "reasons": [f"drop {k}"],
                               "retrain": {"kind": "drift", "since_batch": k, "batch": k}},
                  "batch": f"{k:04d}", "batch_number": k}
        tmp = folder / f".{k:04d}.tmp"
        tmp.write_text(json.dumps(report))
        os.replace(tmp, folder / f"{k:04d}.json")


def test_200_reports_at_once_fire_one_event(tmp_path, fault):
    from airflow_agentic.operators.continuous import drift_events
    from airflow_agentic.triggers.drift_event import DriftEventTrigger

    inbox = tmp_path / "reports"
    inbox.mkdir()
    # The retraining DAG's window (agentic_retraining: cool-down 5 s, polls every second) and the default
    # max_reports (50): it bounds the payload, never splits the burst.
    trigger = DriftEventTrigger(path=f"file://{inbox}", cooldown=5.0, poll_interval=1.0,
                                include_existing=True)  # the folder is empty at start: no baseline race

    async def scenario():
        agen = trigger.run()
        first = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.3)
        await asyncio.to_thread(_land, inbox, REPORTS)
        event = await asyncio.wait_for(first, 60)
        # Nothing else fires for the same burst: the next event would need new reports.
        extra = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(2.0)
        fired_again = extra.done()
        extra.cancel()
        await asyncio.gather(extra, return_exceptions=True)
        await agen.aclose()
        return event, fired_again

    event, fired_again = asyncio.run(scenario())
    payload = event.payload
    assert not fired_again, "a second event fired for the same burst"
    assert payload["count"] == REPORTS and len(payload["reports"]) == 50 and payload["reports_left_out"] == REPORTS - 50
    assert sorted(os.path.basename(f) for f in payload["files"]) == [f"{k:04d}.json" for k in range(REPORTS)]

    # The retraining run reads the burst as one request: the newest batch's (what ContinuousLearningOperator does).
    class Event:
        extra = {"payload": payload}

    request, summary = drift_events({"triggering_asset_events": {"agentic_drift": [Event()]}})
    assert summary["events"] == 1 and summary["reports"] == REPORTS
    assert request["batch"] == REPORTS - 1 and request["since_batch"] == REPORTS - 1
    fault.add(f"{REPORTS} drift reports written at once into the watched folder",
              f"1 TriggerEvent, count {payload['count']}, window {payload['window_seconds']}s; the retraining "
              f"request read from it: batch {request['batch']}")
