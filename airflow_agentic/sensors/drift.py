"""``DriftSensor``: wait for new batch files, then hand their drift report to XCom.

Deferrable by default: the wait happens in the triggerer (``DriftTrigger``) and holds no worker slot. With
``deferrable=False`` the same listing and statistics run in ``poke``. Either way the task returns the report
(``DriftReport.to_dict()``) and pushes the processed file names under XCom key ``drift_files`` and their newest
modification time under ``drift_since`` (pass them back as ``seen`` / ``since`` to continue where it stopped).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_agentic.links.agentic_ui import DriftReportLink

if TYPE_CHECKING:
    from airflow.sdk import Context

FILES_XCOM_KEY = "drift_files"
SINCE_XCOM_KEY = "drift_since"


class DriftSensor(BaseSensorOperator):
    """Wait for new data at ``path`` and report its drift against ``profile_path``.

    :param path: ObjectStoragePath URL of a directory or glob of batch files (templated).
    :param profile_path: URL of the reference profile ``.npz`` (templated).
    :param columns: columns to test; default the profile's feature columns (templated).
    :param alpha: significance level (templated); ``correction``: ``bh``, ``bonferroni`` or ``none``.
    :param seen: names already processed (templated, e.g. from a previous run's ``drift_files``).
    :param since: POSIX mtime; only newer files count (templated).
    :param min_files: wait until at least this many new files exist; all of them are one batch.
    :param conn_id: Airflow connection for the object store; ``fmt``: format when the suffix does not tell.
    :param deferrable: wait in the triggerer (default) instead of poking from a worker.
    :param fail_on_drift: fail the task when drift is detected (a gate); default just report it.

    ``soft_fail``, ``timeout``, ``poke_interval`` and ``mode`` behave as for every sensor; in deferrable mode
    ``poke_interval`` is the trigger's polling interval and ``timeout`` the deferral time-out.
    """

    template_fields: Sequence[str] = ("path", "profile_path", "columns", "alpha", "seen", "since")
    operator_extra_links = (DriftReportLink(),)
    ui_color = "#fdf0e8"

    def __init__(self, *, path: str, profile_path: str, columns: list[str] | None = None, alpha: float | str = 0.05,
                 correction: str = "bh", seen: list[str] | None = None, since: float | str | None = None,
                 min_files: int = 1, conn_id: str | None = None, fmt: str | None = None, deferrable: bool = True,
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
        self.deferrable = deferrable
        self.fail_on_drift = fail_on_drift

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

    def trigger(self) -> Any:
        from airflow_agentic.triggers.drift import DriftTrigger

        return DriftTrigger(path=self.path, profile_path=self.profile_path, columns=self._columns(),
                            alpha=float(self.alpha), correction=self.correction, seen=self._seen(),
                            since=self._since(), min_files=self.min_files, poll_interval=float(self.poke_interval),
                            conn_id=self.conn_id, fmt=self.fmt)

    # -- deferrable --------------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(trigger=self.trigger(), method_name="execute_complete",
                   timeout=timedelta(seconds=float(self.timeout)) if self.timeout else None)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        from airflow.sdk.exceptions import AirflowException

        event = event or {}
        if event.get("status") != "success":
            raise AirflowException(f"drift check failed: {event.get('message', event)}")
        files = list(event.get("files") or [])
        return self._finish(context, event["report"], files, event.get("since"))

    # -- poke mode ---------------------------------------------------------------------------------------------
    def poke(self, context: Context) -> PokeReturnValue | bool:
        from airflow_agentic.triggers.drift import drift_for_files, list_batches, new_batches

        listing = list_batches(self.path, self.conn_id)
        fresh = new_batches(listing, seen=self._seen(), since=self._since())
        if len(fresh) < self.min_files:
            self.log.info("%d new batch file(s) at %s; waiting for %d", len(fresh), self.path, self.min_files)
            return False
        report = drift_for_files(fresh, url=self.path, profile_path=self.profile_path, columns=self._columns(),
                                 alpha=float(self.alpha), correction=self.correction, fmt=self.fmt,
                                 conn_id=self.conn_id)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(context, report, fresh,
                                                                     max(listing[n] for n in fresh)))

    # -- both --------------------------------------------------------------------------------------------------
    def _finish(self, context: Context, report: dict[str, Any], files: list[str], since: float | None) -> dict:
        from airflow_agentic.drift.report import DriftReport

        self.log.info("Drift of %d file(s) at %s: %s", len(files), self.path, DriftReport.from_dict(report).summary())
        ti = context["ti"]
        ti.xcom_push(key=FILES_XCOM_KEY, value=files)
        ti.xcom_push(key=SINCE_XCOM_KEY, value=since)
        if self.fail_on_drift and report.get("detected"):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"drift detected in {report.get('drifted_columns')}")
        return report
