"""A schedule added or resumed in one process wakes the scheduler loops of the others, over the bus (`gwevents.schedules`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from coinwire.bus.requests import NatsRequests, Requests, Responder

__all__ = ["ScheduleWakes"]

log = structlog.get_logger("coinwire.scheduler")


class ScheduleWakes:
    """`gwevents.schedules` on the bus: a schedule added or resumed in one process wakes the scheduler loops of the others.

    Why: a scheduler loop sleeps until its next due tick (at most a minute); one apart from the api that
    added a schedule would otherwise start its ticks up to a minute late. Nothing on the in-process bus.
    """

    SUBJECT = "gwevents.schedules"

    def __init__(self, requests: Requests) -> None:
        self.requests = requests
        self._listening: Responder | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def __call__(self) -> None:
        if not isinstance(self.requests, NatsRequests):
            return
        task = asyncio.get_running_loop().create_task(self._emit())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _emit(self) -> None:
        try:
            await self.requests.emit(self.SUBJECT, b"")
        except Exception:  # noqa: BLE001 - the other loops look at the store within a minute anyway
            log.warning("a schedule's change could not be told to the other processes")

    async def listen(self, wake: Callable[[], None]) -> None:
        if isinstance(self.requests, NatsRequests):
            self._listening = await self.requests.listen(self.SUBJECT, lambda subject, data: wake())

    async def close(self) -> None:
        if self._listening is not None:
            await self._listening.stop()
        await asyncio.gather(*self._sending, return_exceptions=True)
