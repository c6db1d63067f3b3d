"""``DriftEventTrigger``: an ``AssetWatcher`` trigger that turns new files into Asset events, one per burst.

A trigger only waits; an AssetWatcher has no worker to hand work back to, so this one never reads a batch or computes
statistics. It watches a location in one of two modes:

- ``mode="reports"`` (default): ``.json`` reports written by a monitoring DAG (a ``DriftReport`` dict, a
  ``MonitoringDecision`` dict, or the monitoring agent's ``{"decision": ...}`` result). Reading a small report is
  waiting, not computing. What matters (:func:`~airflow_agentic.triggers.drift.drift_matters`): a monitoring decision
  whose action is in ``actions`` (default ``request_retraining``); a drift report that was detected, with
  ``score >= min_score``, ``max_effect >= min_effect`` and, when ``columns`` is given, at least one of those columns
  drifted. Everything else is logged and dropped.
- ``mode="batches"``: every new batch file matters ("a new file"). The triggered DAG computes drift on a worker
  (``drift_for_files`` / ``drift_matters`` in ``airflow_agentic.triggers.drift``, or the monitoring operators).

Bursts: in Airflow 3.3 events that arrive while an asset-triggered run is queued get no run of their own
(apache/airflow#56050). So the first file that matters opens a window of ``cooldown`` seconds; every file that
matters within it joins, and the window closes with ONE ``TriggerEvent``:
``{"mode": ..., "reports": [{"file", "report", "reason"}, ...], "files": [...], "count": n, "window_seconds": s}``
(batch mode: ``report`` is None). The consumer reads ``triggering_asset_events[asset][i].extra["payload"]``.

Which files are new: on the first start, files already present are the baseline (``include_existing=False``); the
processed names are then kept in the asset's state store (Airflow 3.3 injects ``asset_state_store`` into watcher
triggers), so that a triggerer restart neither replays old files nor misses the ones written meanwhile. Reports
still inside an open window are not marked processed until the window closes: a restart re-reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_agentic.triggers.drift import BATCH_SUFFIXES, DEFAULT_ACTIONS, drift_matters, file_path, list_batches

MODES = ("reports", "batches")


def _read_report(name: str, url: str, conn_id: str | None) -> dict[str, Any]:
    with file_path(name, url, conn_id).open("rb") as handle:
        data = json.loads(handle.read().decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object, got {type(data).__name__}")
    return data


class DriftEventTrigger(BaseEventTrigger):
    """Watch ``path`` and fire one event per burst of files that matter.

    :param path: ObjectStoragePath URL of a directory or glob to watch.
    :param mode: ``reports`` (``.json`` reports, filtered by the rule below) or ``batches`` (every new batch file).
    :param columns: reports mode: only drift in these columns matters (None: any).
    :param min_score: reports mode: share of drifted feature columns needed.
    :param min_effect: reports mode: largest effect needed (Wasserstein / IQR for numeric columns, PSI for
        categorical ones).
    :param actions: reports mode: monitoring decisions that matter (default ``["request_retraining"]``).
    :param cooldown: seconds a burst window stays open after its first file.
    :param poll_interval: seconds between listings.
    :param include_existing: on the very first start, treat files already there as new.
    :param max_reports: the event carries the newest ``max_reports`` full reports (bounds the payload); ``files``
        and ``count`` still name every file of the burst, which stays one event.
    :param conn_id: Airflow connection for the object store.

    Earlier versions computed drift of each batch here when given ``profile_path``; that statistics work blocked the
    triggerer, so ``profile_path`` is now refused with a message saying what to do instead.
    """

    def __init__(self, *, path: str, mode: str = "reports", columns: list[str] | None = None,
                 min_score: float = 0.0, min_effect: float = 0.0, actions: list[str] | None = None,
                 cooldown: float = 60.0, poll_interval: float = 10.0, include_existing: bool = False,
                 max_reports: int = 50, conn_id: str | None = None, profile_path: str | None = None) -> None:
        super().__init__()
        if profile_path is not None:
            raise ValueError(
                "DriftEventTrigger no longer computes drift in the triggerer (profile_path): use mode='batches' "
                "and compute drift in the triggered DAG on a worker, or watch the reports a monitoring DAG writes "
                "(mode='reports'); a DriftSensor computes drift on a worker between waits")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.path = path
        self.mode = mode
        self.columns = list(columns) if columns is not None else None
        self.min_score = float(min_score)
        self.min_effect = float(min_effect)
        self.actions = list(actions) if actions is not None else list(DEFAULT_ACTIONS)
        self.cooldown = float(cooldown)
        self.poll_interval = float(poll_interval)
        self.include_existing = bool(include_existing)
        self.max_reports = max(1, int(max_reports))
        self.conn_id = conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "path": self.path, "mode": self.mode, "columns": self.columns, "min_score": self.min_score,
            "min_effect": self.min_effect, "actions": self.actions, "cooldown": self.cooldown,
            "poll_interval": self.poll_interval, "include_existing": self.include_existing,
            "max_reports": self.max_reports, "conn_id": self.conn_id,
        })

    # ------------------------------------------------------------------ the rule
    def matters(self, report: dict[str, Any]) -> tuple[bool, str]:
        """Whether a drift report or monitoring decision should fire, and why (for the log and the payload)."""
        return drift_matters(report, min_score=self.min_score, min_effect=self.min_effect, columns=self.columns,
                             actions=self.actions)

    # ------------------------------------------------------------------ processed names
    def _state_key(self) -> str:
        # reports mode keeps the key of earlier versions ("None" was their profile_path) so its state survives
        suffix = "None" if self.mode == "reports" else "batches"
        digest = hashlib.sha1(f"{self.path}|{suffix}".encode()).hexdigest()[:12]
        return f"agentic_drift_seen_{digest}"

    async def _load_seen(self) -> set[str] | None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return None
        try:
            value = await store.aget(self._state_key())
        except Exception as exc:  # noqa: BLE001 - the state store is an optimisation; memory still works
            self.log.warning("cannot read the asset state store: %s", exc)
            return None
        return set(value) if isinstance(value, list) else None

    async def _save_seen(self, seen: set[str]) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:
            await store.aset(self._state_key(), sorted(seen))
        except Exception as exc:  # noqa: BLE001
            self.log.warning("cannot write the asset state store: %s", exc)

    # ------------------------------------------------------------------ one file
    def _check(self, name: str) -> tuple[bool, str, dict[str, Any] | None]:
        """Whether a new file matters, why, and its report (reports mode). Blocking: run it in a thread."""
        if self.mode == "batches":
            return True, "new batch file", None
        report = _read_report(name, self.path, self.conn_id)
        return (*self.matters(report), report)

    def _listing(self) -> dict[str, float]:
        suffixes = BATCH_SUFFIXES if self.mode == "batches" else (".json",)
        return list_batches(self.path, self.conn_id, suffixes)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        listing = await asyncio.to_thread(self._listing)
        stored = await self._load_seen()
        if stored is not None:
            seen = stored & set(listing) if listing else stored
        else:
            seen = set() if self.include_existing else set(listing)
            await self._save_seen(seen)
        self.log.info("DriftEventTrigger watching %s (%d file(s) already processed, cool-down %gs)",
                      self.path, len(seen), self.cooldown)
        window: list[dict[str, Any]] = []
        opened_at: float | None = None
        while True:
            fresh = sorted((n for n in listing if n not in seen), key=lambda n: (listing[n], n))
            for name in fresh:
                try:
                    ok, why, report = await asyncio.to_thread(self._check, name)
                except Exception as exc:  # noqa: BLE001 - a bad file must not stop the watcher
                    self.log.warning("skipping %s: %s: %s", name, type(exc).__name__, exc)
                    seen.add(name)
                    continue
                self.log.info("%s: %s", name, why)
                seen.add(name)
                if ok:
                    window.append({"file": name, "report": report, "reason": why})
                    opened_at = loop.time() if opened_at is None else opened_at
            if fresh:
                # Prune names that disappeared so the stored list does not grow forever; the window's files wait.
                await self._save_seen((seen & set(listing)) - {w["file"] for w in window})
            if window and loop.time() - opened_at >= self.cooldown:
                self.log.info("firing one event for %d file(s) that matter", len(window))
                # A burst is one event however large (a second one would start a second retraining): only the
                # payload is bounded, keeping the newest reports, which carry the latest request.
                event = TriggerEvent({"mode": self.mode, "reports": window[-self.max_reports:],
                                      "files": [w["file"] for w in window], "count": len(window),
                                      "reports_left_out": max(0, len(window) - self.max_reports),
                                      "window_seconds": round(loop.time() - opened_at, 3)})
                # Marked before the yield: the consumer may never resume this generator (triggerer stop), and a
                # replayed burst would start a second retraining. At most once per file.
                await self._save_seen(seen & set(listing))
                window, opened_at = [], None
                yield event
            wait = self.poll_interval
            if opened_at is not None:
                wait = max(0.0, min(wait, self.cooldown - (loop.time() - opened_at)))
            await asyncio.sleep(wait)
            listing = await asyncio.to_thread(self._listing)
