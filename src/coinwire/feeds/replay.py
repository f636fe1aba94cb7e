"""Replays a recorded Binance capture as a live-looking feed, paced by its receive timestamps.

The feed also keeps the true book at the current replay position, built from the complete
capture, and serves it as a `SnapshotSource`: the recorded stand-in for Binance's REST
depth endpoint, so a consumer that drops a diff can resync exactly as it would live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

import msgspec

from coinwire.core.book_sync import BookSync
from coinwire.core.instruments import Instrument
from coinwire.core.orders import Side
from coinwire.feeds.base import Publish, subject_for
from coinwire.history.binance_capture import MarketData, PathArg, capture_paths, iter_capture
from coinwire.messages import BookDelta, BookSnapshot, Markets, subject

__all__ = ["ReplayFeed"]

_NS = 1_000_000_000
_MIN_SLEEP = 0.001  # seconds; smaller waits are not worth a trip through the event loop


class ReplayFeed:
    """Publishes capture files in order; `speed` 2.0 is twice real time, None as fast as possible.

    With `loop`, the capture starts over when it ends; later passes shift message
    timestamps forward so time never runs backwards (update ids repeat, and the capture's
    own snapshot re-synchronises consumers). When running as fast as possible the feed
    yields to the event loop every `yield_every` messages so others still get to run.
    """

    name = "replay"

    def __init__(
        self,
        paths: PathArg | Iterable[PathArg],
        instrument: Instrument,
        speed: float | None = 1.0,
        loop: bool = False,
        yield_every: int = 500,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive, or None for as fast as possible")
        self.instrument = instrument
        self.exchange = instrument.exchange
        self.paths = capture_paths(paths)
        self.speed = speed
        self.loop = loop
        self.yield_every = max(1, yield_every)
        self._sync = BookSync()
        self._book_ts = 0
        self._closed = False

    def instruments(self) -> list[Instrument]:
        return [self.instrument]

    def messages(self, ts_offset: int = 0) -> Iterator[tuple[int, MarketData]]:
        """One pass over the capture as (receive ts ns, message), tracking the true book.

        The true book includes each message before it is handed out, so a consumer that
        asks for a snapshot on receiving a diff gets a book at least as new as that diff.
        """
        sync = self._sync = BookSync()
        for recv_ts, message in iter_capture(self.paths, self.instrument):
            if ts_offset:
                recv_ts += ts_offset
                message = msgspec.structs.replace(message, ts=message.ts + ts_offset)
            if isinstance(message, BookDelta):
                if sync.on_delta(message):
                    self._book_ts = message.ts
            elif isinstance(message, BookSnapshot):
                sync.on_snapshot(message)
                self._book_ts = message.ts
            yield recv_ts, message

    def snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        """The true book at the current replay position (None before the capture's snapshot)."""
        sync = self._sync
        if exchange != self.exchange or symbol != self.instrument.symbol or sync.needs_snapshot:
            return None
        book = sync.book
        return BookSnapshot(
            exchange, symbol, self._book_ts, sync.last_update_id, book.levels(Side.BUY), book.levels(Side.SELL)
        )

    async def run(self, publish: Publish) -> None:
        """Publish `Markets`, then the capture (once, or forever with `loop`) until closed."""
        self._closed = False
        await publish(subject("markets", self.exchange), Markets(self.exchange, [self.instrument]))
        clock = asyncio.get_running_loop().time
        ts_offset = 0
        while not self._closed:
            first_ts = last_ts = None
            started = clock()
            for count, (recv_ts, message) in enumerate(self.messages(ts_offset)):
                if self._closed:
                    return
                if first_ts is None:
                    first_ts = recv_ts
                last_ts = recv_ts
                if self.speed is None:
                    if count % self.yield_every == 0:
                        await asyncio.sleep(0)
                else:
                    delay = started + (recv_ts - first_ts) / _NS / self.speed - clock()
                    if delay > _MIN_SLEEP:
                        await asyncio.sleep(delay)
                await publish(subject_for(message), message)
            if not self.loop or first_ts is None or last_ts is None:
                return
            ts_offset += last_ts - first_ts + _NS  # next pass starts a second after this one ended

    async def close(self) -> None:
        """Stop publishing at the next message."""
        self._closed = True
