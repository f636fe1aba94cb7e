"""Per-symbol state of the CCXT feed: full books in, id-chained BookDeltas out; repeated trades dropped.

CCXT gives a whole (depth-limited) book on every `watch_order_book` / `fetch_order_book`.
The mirror publishes the first one as a BookSnapshot and every later one as a BookDelta of
the levels that changed since the book it last published, covering update ids
`previous + 1 .. new`. Why deltas and not a snapshot each time: a snapshot makes the paper
matching engine forget which liquidity our orders already consumed (a snapshot is a reload),
so the same displayed size could fill twice; a delta touches only the levels that moved,
exactly like the venue's own diff stream. And BookSync's sequence check stays meaningful:
the feed itself chains the ids, so a message lost on the bus (NATS) shows up as a gap, and
the resync snapshot this mirror serves carries the id of the last book it published.

Update ids are the venue's book nonce when CCXT has one (Binance's `lastUpdateId` / `u`),
so a delta's range says which venue updates it summarises; without a nonce the mirror
counts its own. A nonce that goes backwards (the venue restarted its sequence, or a REST
replica lags the stream we lost) cannot chain: that book goes out as a fresh snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from coinwire.venues.ccxt_markets import LevelConverter, trade_from_ccxt

__all__ = ["BookMirror", "TradeFilter"]

_NS_PER_MS = 1_000_000


class BookMirror:
    """The book one symbol last published, and the message that moves consumers to the next."""

    __slots__ = ("convert", "depth", "update_id", "ts", "bids", "asks", "published")

    def __init__(self, convert: LevelConverter, depth: int) -> None:
        if depth < 1:
            raise ValueError("depth must be at least one level a side")
        self.convert = convert
        self.depth = depth
        self.update_id = 0
        self.ts = 0
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.published = 0  # book messages produced

    def update(self, book: Mapping[str, Any], now_ns: int) -> BookSnapshot | BookDelta | None:
        """The message for a new CCXT book, or None when nothing within `depth` changed."""
        convert = self.convert
        bids = convert.levels(book.get("bids") or (), self.depth)
        asks = convert.levels(book.get("asks") or (), self.depth)
        timestamp = book.get("timestamp")
        ts = timestamp * _NS_PER_MS if isinstance(timestamp, int) else now_ns
        nonce = book.get("nonce")
        nonce = nonce if isinstance(nonce, int) and not isinstance(nonce, bool) and nonce > 0 else None
        if self.published and (nonce is None or nonce > self.update_id):
            bid_changes = _changes(self.bids, bids)
            ask_changes = _changes(self.asks, asks)
            if not bid_changes and not ask_changes:
                return None
            first = self.update_id + 1
            self._keep(nonce if nonce is not None else first, ts, bids, asks)
            return BookDelta(
                convert.instrument.exchange, convert.instrument.symbol, ts, first, self.update_id, bid_changes, ask_changes
            )
        if self.published and bids == self.bids and asks == self.asks:
            return None  # the same book again (a poll between two venue updates)
        self._keep(nonce if nonce is not None else self.update_id + 1, ts, bids, asks)
        return self.snapshot()

    def _keep(self, update_id: int, ts: int, bids: dict[int, int], asks: dict[int, int]) -> None:
        self.update_id = update_id
        self.ts = ts
        self.bids = bids
        self.asks = asks
        self.published += 1

    def snapshot(self) -> BookSnapshot:
        """The last published book in full (what a consumer that lost the thread reloads)."""
        instrument = self.convert.instrument
        return BookSnapshot(
            instrument.exchange,
            instrument.symbol,
            self.ts,
            self.update_id,
            sorted(self.bids.items(), reverse=True),
            sorted(self.asks.items()),
        )

    def ticker(self) -> BookTicker | None:
        """Best bid and ask of the last published book (None while a side is empty)."""
        if not self.bids or not self.asks:
            return None
        bid = max(self.bids)
        ask = min(self.asks)
        instrument = self.convert.instrument
        return BookTicker(
            instrument.exchange, instrument.symbol, self.ts, self.update_id, bid, self.bids[bid], ask, self.asks[ask]
        )


def _changes(old: dict[int, int], new: dict[int, int]) -> list[tuple[int, int]]:
    """Absolute sizes of the levels that differ (0 for a level that went away), price order."""
    changed = [(price, size) for price, size in new.items() if old.get(price) != size]
    changed += [(price, 0) for price in old if price not in new]
    changed.sort()
    return changed


class TradeFilter:
    """Lets each public trade through once, and none from before the feed started.

    Polling returns the latest N trades every time, and a fallback from WebSocket to
    polling overlaps what the stream already delivered, so trades are deduplicated by id
    (the last `memory` ids are remembered). The first polled batch only marks the starting
    point: trades that happened before we were watching must not fill resting paper orders.
    """

    __slots__ = ("convert", "_seen", "_order", "_floor_ms", "_started", "_memory")

    def __init__(self, convert: LevelConverter, memory: int = 5000) -> None:
        self.convert = convert
        self._seen: set[str] = set()
        self._order: deque[str] = deque()
        self._floor_ms = 0
        self._started = False
        self._memory = memory

    def baseline(self, trades: Iterable[Mapping[str, Any]]) -> None:
        """Mark a batch of past trades as seen without publishing them."""
        for trade in trades:
            self._remember(str(trade.get("id")))
            timestamp = trade.get("timestamp")
            if isinstance(timestamp, int) and timestamp > self._floor_ms:
                self._floor_ms = timestamp
        self._started = True

    @property
    def started(self) -> bool:
        return self._started

    def new(self, trades: Iterable[Mapping[str, Any]]) -> list[TradeTick]:
        """The trades of a batch not seen before and not older than the starting point, in order.

        A first batch from a stream (nothing polled before) is all live: its oldest trade
        becomes the starting point, so a later poll cannot bring back older history.
        """
        batch = list(trades)
        if not self._started:
            self._started = True
            stamps = [t.get("timestamp") for t in batch]
            self._floor_ms = min((ts for ts in stamps if isinstance(ts, int)), default=self._floor_ms)
        out: list[TradeTick] = []
        for trade in batch:
            trade_id = str(trade.get("id"))
            if trade_id in self._seen:
                continue
            timestamp = trade.get("timestamp")
            if isinstance(timestamp, int) and timestamp < self._floor_ms:
                continue
            tick = trade_from_ccxt(self.convert, trade)
            self._remember(trade_id)
            out.append(tick)
        return out

    def _remember(self, trade_id: str) -> None:
        if trade_id in self._seen:
            return
        self._seen.add(trade_id)
        self._order.append(trade_id)
        if len(self._order) > self._memory:
            self._seen.discard(self._order.popleft())
