"""The gateway's notifications on their way to the bus: published at once, or kept in order while the bus is away.

Why: a command's notifications are published after its commit. When the bus is away (NATS
restarting, a link cut) that publish fails, and before this the command answered an error for an
order that the store holds, and its notifications (their seqs) never reached the bus: a gap no
replay could fill. Now a batch that fails is kept, with every batch after it, and published in
order once the bus takes them again; the command is answered as committed. A batch retried after an
acknowledgement that never came may have been stored already: the bus drops the copy (NATS
JetStream's duplicate window, by each order and fill notification's `<account>.<seq>` message id,
bus/nats.py), so a replay gives each seq once.

What the queue holds lives in this process: after a kill -9 the next gateway to restore the shard
publishes it again from the store (services/lost_notifications.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence

import structlog

from coinwire import metrics
from coinwire.bus.base import Bus
from coinwire.core.errors import CoinwireError
from coinwire.messages import Message

__all__ = ["NotificationQueue"]

log = structlog.get_logger("coinwire.gateway")

_FIRST_PAUSE = 0.2  # seconds before the first retry; doubled after each failure, up to _LONGEST_PAUSE
_LONGEST_PAUSE = 2.0

Batch = Sequence[tuple[str, Message]]


class NotificationQueue:
    """`publish(batch)`: to the bus now, or behind the batches that wait for it; `close()` tries to send those first."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._waiting: collections.deque[Batch] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._held = 0  # repairs under way (services/lost_notifications.py): nothing is published until they are in

    @property
    def waiting(self) -> int:
        """Batches kept until the bus takes them."""
        return len(self._waiting)

    @property
    def holding(self) -> bool:
        """Whether what is published now would overtake kept or held notifications (a mark push waits: gateway)."""
        return bool(self._waiting) or self._held > 0

    def hold(self) -> None:
        """Keep every batch from now until `release`: a repair's older seqs must reach the bus before newer ones."""
        self._held += 1

    def release(self, first: Sequence[Batch]) -> None:
        """Put `first` (a repair's batches) ahead of what was kept meanwhile, and publish in order once nothing holds."""
        self._waiting.extendleft(reversed(first))
        self._held -= 1
        metrics.NOTIFICATIONS_WAITING.set(len(self._waiting))
        self._start()

    async def publish(self, batch: Batch) -> None:
        """Publish `batch`, or keep it (never raises for the bus being away: the caller's command is committed already)."""
        if self._waiting or self._held:  # earlier notifications wait for the bus, or a repair: these go after them
            self._keep(batch)
            return
        try:
            await self.bus.publish_many(batch)
        except (TypeError, ValueError, CoinwireError):
            raise  # a message or subject the bus refuses (a bug): kept, it would hold back every later one for ever
        except Exception as exc:  # noqa: BLE001 - the bus away (refused, reconnecting, an acknowledgement timed out)
            log.warning("notifications kept until the bus takes them", error=repr(exc))
            self._keep(batch)

    def _keep(self, batch: Batch) -> None:
        self._waiting.append(batch)
        metrics.NOTIFICATIONS_WAITING.set(len(self._waiting))
        self._start()

    def _start(self) -> None:
        if self._waiting and not self._held and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="notifications-waiting")

    async def _drain(self) -> None:
        pause = _FIRST_PAUSE
        while self._waiting and not self._held:
            try:
                await self.bus.publish_many(self._waiting[0])
            except Exception:  # noqa: BLE001 - still away
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)
                continue
            self._waiting.popleft()
            metrics.NOTIFICATIONS_WAITING.set(len(self._waiting))
            pause = _FIRST_PAUSE
        if not self._waiting:
            log.info("notifications kept for the bus are published")

    async def close(self, timeout: float = 5.0) -> None:
        """Give what waits `timeout` seconds to reach the bus (the process stops); what is left is logged, then lost."""
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._waiting:
            log.error("notifications never published: the bus was away until the process stopped", batches=len(self._waiting))
