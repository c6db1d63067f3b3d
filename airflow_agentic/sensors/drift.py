"""``DriftSensor``: wait for new batch files whose drift matters, then hand the drift report to XCom.

Deferrable by default: the wait happens in the triggerer (``DriftTrigger``, which only lists the location and holds
no worker slot); when new files appear the task resumes on a worker, reads them and computes their drift report
(``execute_complete``). When nothing matters (no drift, or only drift below ``min_score`` / ``min_effect`` or outside
``columns``) it marks those files seen and defers again, so one slow batch never stalls the triggerer. With
``deferrable=False`` the same listing and statistics run in ``poke``. The task returns the report
(``DriftReport.to_dict()``) and pushes the file names of that batch under XCom key ``drift_files`` and their newest
modification time under ``drift_since`` (pass them back as ``seen`` / ``since`` to continue where it stopped).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_agentic.links.agentic_ui import DriftReportLink

if TYPE_CHECKING:
    from airflow.sdk import Context

FILES_XCOM_KEY = "drift_files"
SINCE_XCOM_KEY = "drift_since"
SKIPPED_STATE_KEY = "agentic_drift_skipped"


class DriftSensor(BaseSensorOperator):
    """Wait for new data at ``path`` whose drift against ``profile_path`` matters, and report it.

    :param path: ObjectStoragePath URL of a directory or glob of batch files (templated).
    :param profile_path: URL of the reference profile ``.npz`` (templated).
    :param columns: columns to test; default the profile's feature columns (templated).
    :param alpha: significance level (templated); ``correction``: ``bh``, ``bonferroni`` or ``none``.
    :param seen: names already processed (templated, e.g. from a previous run's ``drift_files``).
    :param since: POSIX mtime; only newer files count (templated).
    :param min_files: wait until at least this many new files exist; all of them are one batch.
    :param conn_id: Airflow connection for the object store; ``fmt``: format when the suffix does not tell.
    :param min_score: share of drifted feature columns needed for the drift to matter.
    :param min_effect: largest effect needed (Wasserstein / IQR for numeric columns, PSI for categorical ones).
    :param wait_for_drift: succeed only on drift that matters, skipping (and marking seen) batches without it
        (default); ``False``: succeed on the first new batch whatever its report (then ``fail_on_drift`` makes
        the sensor a gate: clean data passes, drifted data fails).
    :param deferrable: wait in the triggerer (default) instead of poking from a worker.
    :param fail_on_drift: fail the task when drift that matters is found; default just report it.

    ``soft_fail``, ``timeout``, ``poke_interval`` and ``mode`` behave as for every sensor; in deferrable mode
    ``poke_interval`` is the trigger's polling interval and ``timeout`` the time-out over all deferrals. With
    ``mode="reschedule"`` the files found harmless are kept in the task's state store between pokes.
    """

    template_fields: Sequence[str] = ("path", "profile_path", "columns", "alpha", "seen", "since")
    operator_extra_links = (DriftReportLink(),)
    ui_color = "#fdf0e8"

    def __init__(self, *, path: str, profile_path: str, columns: list[str] | None = None, alpha: float | str = 0.05,
                 correction: str = "bh", seen: list[str] | None = None, since: float | str | None = None,
                 min_files: int = 1, conn_id: str | None = None, fmt: str | None = None, min_score: float = 0.0,
                 min_effect: float = 0.0, wait_for_drift: bool = True, deferrable: bool = True,
                 fail_on_drift: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.profile_path = profile_path
        self.columns = columns
        self.alpha = alpha
        self.correction = correction
        self.seen = seen
        self.since = since
        self.min_files = min_files
        self.conn_id = conn_id
        self.fmt = fmt
        self.min_score = float(min_score)
        self.min_effect = float(min_effect)
        self.wait_for_drift = wait_for_drift
        self.deferrable = deferrable
        self.fail_on_drift = fail_on_drift
        # poke mode: the files found harmless by earlier pokes (the deferrable path carries them in the trigger)
        self._skipped: dict[str, Any] | None = None

    # Rendered templates arrive as strings ("0.05", "['a']"): normalise once, here.
    def _columns(self) -> list[str] | None:
        value = self.columns
        if isinstance(value, str):
            import ast

            value = ast.literal_eval(value) if value.strip().startswith("[") else [c.strip() for c in value.split(",")]
        return [str(c) for c in value] if value else None

    def _seen(self) -> list[str]:
        value = self.seen
        if isinstance(value, str):
            import ast

            value = ast.literal_eval(value) if value.strip() else []
        return [str(v) for v in value or []]

    def _since(self) -> float | None:
        return None if self.since in (None, "", "None") else float(self.since)

    def trigger(self, seen: list[str] | None = None, since: float | None = None) -> Any:
        from airflow_agentic.triggers.drift import DriftTrigger

        return DriftTrigger(path=self.path, seen=self._seen() if seen is None else seen,
                            since=self._since() if since is None else since, min_files=self.min_files,
                            poll_interval=float(self.poke_interval), conn_id=self.conn_id)

    def report_for(self, files: list[str]) -> dict[str, Any]:
        """Read the files as one batch and compute their drift report (on the worker)."""
        from airflow_agentic.triggers.drift import drift_for_files

        return drift_for_files(files, url=self.path, profile_path=self.profile_path, columns=self._columns(),
                               alpha=float(self.alpha), correction=self.correction, fmt=self.fmt,
                               conn_id=self.conn_id)

    def matters(self, report: dict[str, Any]) -> tuple[bool, str]:
        """Whether the report shows drift that matters by this sensor's settings, and why."""
        from airflow_agentic.triggers.drift import drift_matters

        return drift_matters(report, min_score=self.min_score, min_effect=self.min_effect, columns=self._columns())

    def _acts_on(self, report: dict[str, Any]) -> tuple[bool, str]:
        ok, why = self.matters(report)
        return ok or not self.wait_for_drift, why

    # -- deferrable --------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        deadline = time.time() + float(self.timeout) if self.timeout else None
        self._defer(self.trigger(), deadline)

    def _defer(self, trigger: Any, deadline: float | None) -> None:
        from airflow.sdk.exceptions import AirflowSensorTimeout

        timeout = None
        if deadline is not None:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise AirflowSensorTimeout(f"no drift that matters at {self.path} within {self.timeout}s")
            timeout = timedelta(seconds=remaining)
        # The deadline travels in the resume kwargs so that re-deferring does not restart the sensor's timeout.
        self.defer(trigger=trigger, method_name="execute_complete", kwargs={"deadline": deadline}, timeout=timeout)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None,
                         deadline: float | None = None, **kwargs: Any) -> Any:
        from airflow.sdk.exceptions import AirflowException

        event = event or {}
        if event.get("status") != "success":
            raise AirflowException(f"drift check failed: {event.get('message', event)}")
        files = list(event.get("files") or [])
        # An event of a trigger serialised before the upgrade already carries its report.
        report = event.get("report") or self.report_for(files)
        ok, why = self._acts_on(report)
        if ok:
            return self._finish(context, report, files, event.get("since"))
        self.log.info("%d file(s) at %s: %s; waiting for the next batch", len(files), self.path, why)
        if deadline is None and self.timeout:  # dag.test() passes no resume kwargs
            deadline = time.time() + float(self.timeout)
        self._defer(self.trigger(seen=list(event.get("seen") or files), since=event.get("since")), deadline)

    # -- poke mode ---------------------------------------------------------------------------------------------
    def poke(self, context: Context) -> PokeReturnValue | bool:
        from airflow_agentic.triggers.drift import list_batches, new_batches

        listing = list_batches(self.path, self.conn_id)
        skipped = self._skipped_files(context)
        since = skipped["since"] if skipped["since"] is not None else self._since()
        fresh = new_batches(listing, seen=self._seen() + skipped["seen"], since=since)
        if len(fresh) < self.min_files:
            self.log.info("%d new batch file(s) at %s; waiting for %d", len(fresh), self.path, self.min_files)
            return False
        report = self.report_for(fresh)
        newest = max(listing[n] for n in fresh)
        ok, why = self._acts_on(report)
        if not ok:
            self.log.info("%d file(s) at %s: %s; waiting for the next batch", len(fresh), self.path, why)
            skipped["seen"] += fresh
            skipped["since"] = newest
            self._save_skipped(context)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, report, fresh, newest))

    # In mode="reschedule" every poke is a new process: the harmless files are kept in the task's state store
    # (Airflow 3.3, scoped to this task instance), else they would be read again and mixed into the next batch.
    def _state_store(self, context: Context) -> Any:
        return context.get("task_state_store") if self.mode == "reschedule" and hasattr(context, "get") else None

    def _skipped_files(self, context: Context) -> dict[str, Any]:
        if self._skipped is None:
            saved, store = None, self._state_store(context)
            if store is not None:
                try:
                    saved = store.get(SKIPPED_STATE_KEY)
                except Exception as exc:  # noqa: BLE001 - memory still works within one process
                    self.log.warning("cannot read the task state store: %s", exc)
            saved = saved if isinstance(saved, dict) else {}
            self._skipped = {"seen": list(saved.get("seen") or []), "since": saved.get("since")}
        return self._skipped

    def _save_skipped(self, context: Context) -> None:
        store = self._state_store(context)
        if store is not None:
            try:
                store.set(SKIPPED_STATE_KEY, self._skipped)
            except Exception as exc:  # noqa: BLE001
                self.log.warning("cannot write the task state store: %s", exc)

    # -- both --------------------------------------------------------------------------------------------------
    def _finish(self, context: Context, report: dict[str, Any], files: list[str], since: float | None) -> dict:
        from airflow_agentic.drift.report import DriftReport

        self.log.info("Drift of %d file(s) at %s: %s", len(files), self.path, DriftReport.from_dict(report).summary())
        ti = context["ti"]
        ti.xcom_push(key=FILES_XCOM_KEY, value=files)
        ti.xcom_push(key=SINCE_XCOM_KEY, value=since)
        if self.fail_on_drift and self.matters(report)[0]:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"drift detected in {report.get('drifted_columns')}")
        return report
