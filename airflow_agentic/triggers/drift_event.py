"""``DriftEventTrigger``: an ``AssetWatcher`` trigger that turns drift that matters into Asset events, one per burst.

It watches a location either for new **batches** (``profile_path`` given: each new file gets its own drift report
against the profile) or for **reports** written by a monitoring DAG (``.json`` files holding a ``DriftReport`` dict,
a ``MonitoringDecision`` dict, or the monitoring agent's ``{"decision": ...}`` result).

What matters: a monitoring decision whose action is in ``actions`` (default ``request_retraining``); a drift report
that was detected, with ``score >= min_score``, ``max_effect >= min_effect`` and, when ``columns`` is given, at least
one of those columns drifted. Everything else is logged and dropped.

Bursts: in Airflow 3.3 events that arrive while an asset-triggered run is queued get no run of their own
(apache/airflow#56050). So the first report that matters opens a window of ``cooldown`` seconds; every report that
matters within it joins, and the window closes with ONE ``TriggerEvent``:
``{"reports": [{"file", "report", "reason"}, ...], "files": [...], "count": n, "window_seconds": s}``.
The consumer reads ``triggering_asset_events[asset][i].extra["payload"]["reports"]``.

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

from airflow_agentic.triggers.drift import BATCH_SUFFIXES, drift_for_files, file_path, list_batches, load_profile

DEFAULT_ACTIONS = ("request_retraining",)


def _read_report(name: str, url: str, conn_id: str | None) -> dict[str, Any]:
    with file_path(name, url, conn_id).open("rb") as handle:
        data = json.loads(handle.read().decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object, got {type(data).__name__}")
    return data


class DriftEventTrigger(BaseEventTrigger):
    """Watch ``path`` and fire one event per burst of drift that matters.

    :param path: ObjectStoragePath URL of a directory or glob to watch.
    :param profile_path: reference profile ``.npz``: watch batches and compute drift; None: watch ``.json`` reports.
    :param columns: batch mode: columns tested; both modes: only drift in these columns matters (None: any).
    :param alpha: significance level (batch mode); ``correction``: ``bh``, ``bonferroni`` or ``none``.
    :param min_score: share of drifted feature columns needed.
    :param min_effect: largest effect needed (Wasserstein / IQR for numeric columns, PSI for categorical ones).
    :param actions: monitoring decisions that matter (default ``["request_retraining"]``).
    :param cooldown: seconds a burst window stays open after its first report.
    :param poll_interval: seconds between listings.
    :param include_existing: on the very first start, treat files already there as new.
    :param max_reports: close the window early once it holds this many reports (bounds the payload).
    :param conn_id: Airflow connection for the object store.
    :param fmt: batch format when the suffix does not tell.
    """

    def __init__(self, *, path: str, profile_path: str | None = None, columns: list[str] | None = None,
                 alpha: float = 0.05, correction: str = "bh", min_score: float = 0.0, min_effect: float = 0.0,
                 actions: list[str] | None = None, cooldown: float = 60.0, poll_interval: float = 10.0,
                 include_existing: bool = False, max_reports: int = 50, conn_id: str | None = None,
                 fmt: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.profile_path = profile_path
        self.columns = list(columns) if columns is not None else None
        self.alpha = float(alpha)
        self.correction = correction
        self.min_score = float(min_score)
        self.min_effect = float(min_effect)
        self.actions = list(actions) if actions is not None else list(DEFAULT_ACTIONS)
        self.cooldown = float(cooldown)
        self.poll_interval = float(poll_interval)
        self.include_existing = bool(include_existing)
        self.max_reports = max(1, int(max_reports))
        self.conn_id = conn_id
        self.fmt = fmt

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "path": self.path, "profile_path": self.profile_path, "columns": self.columns, "alpha": self.alpha,
            "correction": self.correction, "min_score": self.min_score, "min_effect": self.min_effect,
            "actions": self.actions, "cooldown": self.cooldown, "poll_interval": self.poll_interval,
            "include_existing": self.include_existing, "max_reports": self.max_reports, "conn_id": self.conn_id,
            "fmt": self.fmt,
        })

    # ------------------------------------------------------------------ the rule
    def matters(self, report: dict[str, Any]) -> tuple[bool, str]:
        """Whether a drift report or monitoring decision should fire, and why (for the log and the payload)."""
        if "decision" in report and isinstance(report["decision"], dict):
            report = report["decision"]
        if "action" in report:
            action = report.get("action")
            if action in self.actions:
                return True, f"monitoring decision {action}"
            return False, f"monitoring decision {action} (not in {self.actions})"
        if not report.get("detected"):
            return False, "no drift detected"
        score, effect = float(report.get("score") or 0.0), float(report.get("max_effect") or 0.0)
        drifted = list(report.get("drifted_columns") or [])
        if score < self.min_score:
            return False, f"drift score {score:.2f} below {self.min_score}"
        if effect < self.min_effect:
            return False, f"largest effect {effect:.3f} below {self.min_effect}: a harmless shift"
        if self.columns is not None and drifted and not set(drifted) & set(self.columns):
            return False, f"drift only in {drifted}, none of the watched columns"
        return True, f"drift in {drifted or 'the prediction distribution'} (score {score:.2f}, effect {effect:.3f})"

    # ------------------------------------------------------------------ processed names
    def _state_key(self) -> str:
        digest = hashlib.sha1(f"{self.path}|{self.profile_path}".encode()).hexdigest()[:12]
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
    def _report_for(self, name: str, profile: Any) -> dict[str, Any]:
        if self.profile_path:
            return drift_for_files([name], url=self.path, profile_path=self.profile_path, columns=self.columns,
                                   alpha=self.alpha, correction=self.correction, fmt=self.fmt, conn_id=self.conn_id,
                                   profile=profile)
        return _read_report(name, self.path, self.conn_id)

    def _listing(self) -> dict[str, float]:
        suffixes = BATCH_SUFFIXES if self.profile_path else (".json",)
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
        profile: Any = None
        window: list[dict[str, Any]] = []
        opened_at: float | None = None
        while True:
            fresh = sorted((n for n in listing if n not in seen), key=lambda n: (listing[n], n))
            if fresh and self.profile_path:  # re-read each time: a retraining replaces the profile
                profile = await asyncio.to_thread(load_profile, self.profile_path, self.conn_id)
            for name in fresh:
                try:
                    report = await asyncio.to_thread(self._report_for, name, profile)
                except Exception as exc:  # noqa: BLE001 - a bad file must not stop the watcher
                    self.log.warning("skipping %s: %s: %s", name, type(exc).__name__, exc)
                    seen.add(name)
                    continue
                ok, why = self.matters(report)
                self.log.info("%s: %s", name, why)
                seen.add(name)
                if ok:
                    window.append({"file": name, "report": report, "reason": why})
                    opened_at = loop.time() if opened_at is None else opened_at
            if fresh:
                # Prune names that disappeared so the stored list does not grow forever; the window's files wait.
                await self._save_seen((seen & set(listing)) - {w["file"] for w in window})
            if window and (loop.time() - opened_at >= self.cooldown or len(window) >= self.max_reports):
                self.log.info("firing one event for %d report(s) that matter", len(window))
                event = TriggerEvent({"reports": window, "files": [w["file"] for w in window], "count": len(window),
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
