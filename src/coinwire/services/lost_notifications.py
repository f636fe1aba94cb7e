"""Notifications a gateway committed but never published (killed in between), published again from the store.

Why: a command's notifications go to the bus after its commit. A gateway killed with -9 in
between, or while its queue held what the bus could not take yet (services/notify_queue.py),
leaves seqs in the store that the bus never got: a gap no client's replay could fill. The next
gateway to restore the shard (a restart, the standby after a takeover, the holder taking its
shard back) compares, per account, the newest seq the bus keeps with the newest the store holds
and publishes the rows between from the store: each order at its latest state (with its latest
seq), each fill with its own, each position with its latest. An order that took two seqs inside
the gap is published once, at the later one (the earlier state is not stored): that earlier seq
stays missing.

A copy of what did reach the bus (an acknowledgement lost, not the message) is dropped by
JetStream by its message id (bus/nats.py). It runs in the background once the exchanges' markets
are known (a view needs its instrument); meanwhile the gateway's notification queue holds every new
notification, and puts the repaired ones ahead of them, so each account's seqs reach the bus in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

import structlog

from coinwire.bus.base import Bus
from coinwire.core.orders import Fill, Order
from coinwire.core.positions import Position
from coinwire.messages import Message

__all__ = ["LostNotifications", "MAX_PER_ACCOUNT"]

log = structlog.get_logger("coinwire.gateway")

MAX_PER_ACCOUNT = 10_000  # a gap wider than this is no kill's: logged, not published (the stream's limits, a bug)
_MARKETS_WAIT = 60.0  # seconds to wait for an exchange's markets before its lost notifications are given up
_MARKETS_PAUSE = 0.2
_CONCURRENT = 64  # accounts asked of the bus at once


class _Reader(Protocol):
    async def notified_after(self, account_id: int, seq: int, limit: int) -> tuple[list[Order], list[Fill], list[Position]]: ...


# (orders, fills, positions) -> each notification with its seq, as the gateway publishes it; None: an instrument is unknown yet
Build = Callable[[list[Order], list[Fill], list[Position]], list[tuple[int, str, Message]] | None]


class LostNotifications:
    """`gaps(last_seqs)` before the gateway takes commands, then `repair(gaps)` in the background: publish what the store
    holds past what the bus keeps."""

    def __init__(self, bus: Bus, store: _Reader, build: Build) -> None:
        self.bus = bus
        self.store = store
        self.build = build
        self.published = 0  # notifications built again since the process started (tests, the log)

    async def gaps(self, last_seqs: Mapping[int, int]) -> dict[int, tuple[int, int]]:
        """Per account whose newest stored seq is past the bus's: (the bus's newest, the store's newest).

        Read before the restored gateway publishes anything new (a new command's seq on the bus would
        hide the gap below it): the accounts are asked 64 at a time. Empty when the bus cannot tell
        (a memory bus) or is away (logged: nothing is published again then).
        """
        wanted = [(a, last) for a, last in sorted(last_seqs.items()) if last > 0]
        found: dict[int, tuple[int, int]] = {}
        limit = asyncio.Semaphore(_CONCURRENT)

        async def check(account_id: int, last: int) -> None:
            async with limit:
                on_bus = await self.bus.last_account_seq(account_id)
            if on_bus is not None and on_bus < last:
                found[account_id] = (on_bus, last)

        try:
            await asyncio.gather(*(check(a, last) for a, last in wanted))
        except Exception:  # the bus is away: what a kill left off it stays off (logged; the next restore looks again)
            log.warning("the bus could not be asked for what it lacks: lost notifications not published again", exc_info=True)
            return {}
        return found

    async def repair(self, gaps: Mapping[int, tuple[int, int]]) -> list[list[tuple[str, Message]]]:
        """Each gap's stored notifications, one batch per account in seq order, for the gateway's queue to publish ahead
        of anything newer (it holds them meanwhile). Never raises (logged)."""
        batches = []
        for account_id, (on_bus, last) in sorted(gaps.items()):
            try:
                batch = await self._account(account_id, on_bus, last)
            except asyncio.CancelledError:
                raise
            except Exception:  # one account's failure (the store away) must not stop the others
                log.exception("lost notifications of an account not published again", account=account_id)
                continue
            if batch:
                batches.append(batch)
                self.published += len(batch)
        return batches

    async def _account(self, account_id: int, on_bus: int, last: int) -> list[tuple[str, Message]]:
        if last - on_bus > MAX_PER_ACCOUNT:
            log.error("an account's notifications missing from the bus are too many to be a kill's; not published again",
                      account=account_id, on_bus=on_bus, stored=last)
            return []
        orders, fills, positions = await self.store.notified_after(account_id, on_bus, MAX_PER_ACCOUNT)
        waited = 0.0
        while (built := self.build(orders, fills, positions)) is None:  # the markets come from the feed after a start
            if waited >= _MARKETS_WAIT:
                log.error("lost notifications not published again: their markets never came", account=account_id)
                return []
            await asyncio.sleep(_MARKETS_PAUSE)
            waited += _MARKETS_PAUSE
        built.sort(key=lambda item: item[0])
        if built:
            log.warning("notifications committed but never published: published again from the store", account=account_id,
                        seqs=[seq for seq, _, _ in built])
        return [(subject, message) for _, subject, message in built]
