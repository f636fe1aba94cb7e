"""Live forming-candle streams on /rpc: a series' history, then its forming candle each time it changes.

Why one module: a market's candles (`subscribe_ohlcv`, api.ohlcv_routes) and a portfolio's
(`subscribe_portfolio_ohlcv`, api.portfolio_routes) are the same stream over different
series. A subscription holds the bucket being formed in its timeframe and zone and the finer
candles in it so far (a market's minutes, a portfolio's 15-minute candles), by open time: a
bucket is seeded from the store when it is entered, candles that arrive live are written over
the stored ones, and the bucket is rolled up at each push (first open, highest high, lowest
low, last close, summed volume: core.rollup's reduction). A candle of an earlier bucket that
arrives late stays out (that bucket was pushed); one of a later bucket starts that bucket.

`FormingStreams` pushes every changed subscription at most `push_interval` apart; its
subscriptions are kept by api.subscriptions (admission, ids, closed sockets, offered pushes). A
stream whose series the caller may no longer read ends with a last notification
`{subscription, ended: "not_found"}`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from datetime import tzinfo
from typing import Any, TypeVar

import structlog

from coinwire.api.context import CallContext
from coinwire.api.notifier import Notifier
from coinwire.api.subscriptions import Subscriptions
from coinwire.core.rollup import Timeframe, bucket_starts

__all__ = ["FormingStream", "FormingStreams", "Row"]

log = structlog.get_logger("coinwire.forming_streams")

Row = tuple[float, float, float, float, float]  # open, high, low, close, volume of a finer candle (floats, or exact stored ints)


class FormingStream(abc.ABC):
    """One subscription: its connection and the bucket it forms; a subclass says where its series is stored and how it reads."""

    def __init__(self, id_: int, ctx: CallContext, tf: Timeframe, tz: tzinfo, tz_name: str) -> None:
        self.id, self.ctx = id_, ctx
        self.tf, self.tz, self.tz_name = tf, tz, tz_name
        self.start = self.end = 0  # [start, end) of the forming bucket (unix s)
        self.rows: dict[int, Row] = {}  # its finer candles so far, by open time
        self.changed = False  # a candle arrived since the last push
        self.seeded = True  # the stored candles of the bucket are in `rows` (else read before the next push)
        self.readable: Callable[[], bool] = lambda: True  # asked before each push: may the caller still read the series?
        self.unlisten: Callable[[], None] = lambda: None  # the stream ended: stop whatever feeds it

    def stop(self) -> None:
        self.unlisten()

    @abc.abstractmethod
    async def stored(self, start: int, end: int) -> dict[int, Row]:
        """The stored finer candles opening in [start, end), by open time."""

    @abc.abstractmethod
    def fields(self) -> dict[str, Any]:
        """The notification's fields naming the series (between `subscription` and `candle`)."""

    @abc.abstractmethod
    def values(self, row: Row) -> list[Any]:
        """The rolled-up bucket's open, high, low, close and volume as the notification's JSON carries them."""

    def enter(self, t: int) -> None:
        """Make the bucket holding instant `t` the forming one, empty until its stored candles are read (`seed`)."""
        edges = bucket_starts(self.tf, self.tz, t, t + self.tf.seconds + 1)
        self.start = int(edges[0])
        self.end = int(edges[1]) if len(edges) > 1 else self.start + self.tf.seconds
        self.rows, self.seeded = {}, False

    async def seed(self) -> None:
        """Read the forming bucket's stored candles once it is entered; those that arrived live since stay over them."""
        if self.seeded:
            return
        start = self.start
        stored = await self.stored(self.start, self.end)
        if self.start == start:  # else a later bucket began while the store answered: read that one at the next push
            self.rows = {**stored, **self.rows}
            self.seeded = True

    def take(self, t: int, row: Row) -> None:
        """A finer candle opening at `t` (forming, or just closed) joins the forming bucket or starts a later one."""
        if t < self.start:
            return  # a late candle of a bucket already pushed stays there
        if t >= self.end:
            self.enter(t)
        self.rows[t] = row
        self.changed = True

    def candle(self) -> list[Any]:
        """The forming bucket rolled up from its finer candles: `[start, open, high, low, close, volume]`."""
        rows = [self.rows[t] for t in sorted(self.rows)]
        rolled = (rows[0][0], max(r[1] for r in rows), min(r[2] for r in rows), rows[-1][3], sum(r[4] for r in rows))
        return [self.start, *self.values(rolled)]


S = TypeVar("S", bound=FormingStream)


class FormingStreams(Subscriptions[S]):
    """The subscriptions of one kind of stream and the loop pushing their forming candles as `name` notifications."""

    def __init__(self, notifier: Notifier, name: str, push_interval: float = 0.25) -> None:
        super().__init__(notifier, name)
        self.push_interval = push_interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"coinwire-{self.name}-streams")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.stop_all()

    async def add(self, sub: S, now: int) -> None:
        """Start pushing `sub`'s forming candle: the bucket holding instant `now`, seeded with what is stored of it."""
        sub.enter(now)
        await sub.seed()
        self.subs[sub.id] = sub

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.push_interval)
            try:
                await self.push()
            except Exception:  # a bug must not stop every live chart
                log.exception("forming candle push failed", stream=self.name)

    async def push(self) -> int:
        """Send the forming candle of every subscription that changed; returns how many were sent."""
        sent = 0
        for sub in self.live():
            if not sub.changed or sub.ctx.offer is None or not sub.rows:
                continue
            sub.changed = False
            if not sub.readable():
                self.drop(sub)
                self.offer(sub, {"subscription": sub.id, "ended": "not_found"})
                continue
            await sub.seed()
            if sub.id not in self.subs:
                continue  # stopped while the store answered
            self.offer(sub, {"subscription": sub.id, **sub.fields(), "candle": sub.candle()})
            sent += 1
        return sent
