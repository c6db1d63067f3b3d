"""``ApprovalAnswerTrigger``: read an approval answer that an earlier attempt of the same task was given.

An agent task parks for approval in ``awaiting_input``. When the answer comes within a second or two, Airflow 3.3 can
fail the resumed attempt (the parked worker's exit, reported late under the same try number, reads as "killed
externally"), and the retry that follows cannot read the answer from inside the task: the task runner offers no
call for it, and asking again would erase it (Airflow clears a HITL response when the task asks anew). The answer
stays in the task instance's HITL detail, which moves with the task instance to the new try, and the triggerer
*can* read it: the retry defers here. The first look waits ``settle_seconds`` so that the scheduler has seen the
deferring worker exit before the event resumes the task, or the same race would strike again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

from airflow.triggers.base import BaseTrigger, TriggerEvent

ASK_AGAIN = "ask_again"


class ApprovalAnswerTrigger(BaseTrigger):
    """After ``settle_seconds``, the answer in the HITL detail of ``ti_id`` as soon as there is one (the payload of
    the standard provider's ``HITLTrigger``). No detail to read: an event with ``error_type="ask_again"``."""

    def __init__(self, *, ti_id: UUID | str, options: list[str], defaults: list[str] | None = None,
                 timeout_datetime: datetime | None = None, settle_seconds: float = 15.0,
                 poke_interval: float = 5.0) -> None:
        super().__init__()
        self.ti_id = ti_id if isinstance(ti_id, UUID) else UUID(str(ti_id))
        self.options = list(options)
        self.defaults = defaults
        self.timeout_datetime = timeout_datetime
        self.settle_seconds = settle_seconds
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "ti_id": str(self.ti_id), "options": self.options, "defaults": self.defaults,
            "timeout_datetime": self.timeout_datetime, "settle_seconds": self.settle_seconds,
            "poke_interval": self.poke_interval,
        })

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.standard.triggers.hitl import HITLTrigger

        await asyncio.sleep(self.settle_seconds)
        hitl = HITLTrigger(ti_id=self.ti_id, options=self.options, params={}, defaults=self.defaults,
                           multiple=False, timeout_datetime=self.timeout_datetime, poke_interval=self.poke_interval)
        try:
            async for event in hitl.run():
                yield event
                return
        except Exception as exc:  # noqa: BLE001 - no detail left to read: the task asks again, which is safe
            self.log.warning("no approval answer to read for %s: %s", self.ti_id, exc)
            yield TriggerEvent({"error": f"{type(exc).__name__}: {exc}"[:500], "error_type": ASK_AGAIN})
