"""Deadline alerts: tell a person when a DAG run has not finished in time (Airflow's ``DeadlineAlert``, 3.1+).

``retraining_deadline()`` is what ``agentic_retraining`` declares: ``[agentic] retraining_deadline`` minutes after the
run is queued, if it has not succeeded by then (a run that promotes or rejects succeeds, and Airflow then drops its
deadline), the triggerer calls :func:`notify_missed_deadline`, which posts through the ``WebhookNotifier`` of the
``[agentic] approval_notifier`` connection (or the ``conn_id`` given). Only the connection id travels in the
callback's kwargs: Airflow logs those when a callback fails, and a webhook URL holds a secret.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import DeadlineAlert

DEADLINE_MISSED = "deadline_missed"
DEFAULT_RETRAINING_MINUTES = 60.0


def retraining_deadline(minutes: float | None = None, conn_id: str | None = None,
                        what: str = "retraining") -> DeadlineAlert | None:
    """A ``DeadlineAlert`` ``minutes`` after the run is queued (default ``[agentic] retraining_deadline``, 60);
    None when it is 0 (no alert). Reads only Airflow's configuration: cheap at parse time."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from airflow_agentic.config import option

    if minutes is None:
        raw = option("retraining_deadline", str(DEFAULT_RETRAINING_MINUTES))
        try:
            minutes = float(raw)
        except ValueError:
            raise ValueError(f"[agentic] retraining_deadline must be a number of minutes, not {raw!r}") from None
    if minutes < 0:
        raise ValueError(f"a deadline must be 0 (off) or a positive number of minutes, not {minutes}")
    if minutes == 0:
        return None
    kwargs: dict[str, Any] = {"what": what, "minutes": minutes}
    if conn_id:
        kwargs["conn_id"] = conn_id
    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=timedelta(minutes=minutes),
                         callback=AsyncCallback(notify_missed_deadline, kwargs=kwargs),
                         name=f"agentic_{what}_deadline")


def deadline_event(context: dict[str, Any], *, what: str, minutes: float | None) -> dict[str, Any]:
    run = context.get("dag_run") or {}
    dag_id, run_id = run.get("dag_id"), run.get("dag_run_id") or run.get("run_id")
    after = f" {minutes:g} minutes after it was queued" if minutes else ""
    message = (f"the {what} run {run_id} of {dag_id} has not finished{after} (state {run.get('state')}, "
               f"deadline {(context.get('deadline') or {}).get('deadline_time')}): look at it before the next drift")
    payload = {"message": message, "dag_id": dag_id, "run_id": run_id, "state": run.get("state"),
               "queued_at": run.get("queued_at"), "deadline": context.get("deadline")}
    return {"kind": DEADLINE_MISSED, "payload": {k: v for k, v in payload.items() if v is not None}}


async def notify_missed_deadline(*, what: str = "DAG", minutes: float | None = None, conn_id: str | None = None,
                                 context: dict[str, Any] | None = None, **_: Any) -> str:
    """The deadline callback (run by the triggerer, ``context`` = Airflow's simple deadline context: ``dag_run`` as
    the REST API shows it and ``deadline``). Returns the message it sent."""
    from airflow_agentic.config import option
    from airflow_agentic.notifications.webhook import WebhookNotifier

    context = context or {}
    event = deadline_event(context, what=what, minutes=minutes)
    conn_id = conn_id or option("approval_notifier")
    if not conn_id:
        raise ValueError("a deadline was missed but nobody can be told: set [agentic] approval_notifier to an http "
                         f"connection ({event['payload']['message']})")
    payload = event["payload"]
    notify_context = {"agentic_event": event, "dag": SimpleNamespace(dag_id=payload.get("dag_id")),
                      "dag_run": SimpleNamespace(run_id=payload.get("run_id"), state=payload.get("state"))}
    await WebhookNotifier(conn_id=conn_id).async_notify(notify_context)
    return payload["message"]
