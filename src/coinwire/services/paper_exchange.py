"""A paper exchange: mirrors a feed's markets and books, and matches our orders against them.

Per symbol, a BookSync keeps the mirrored book honest (Binance's sync procedure, resync on
a gap) and hands every level change to that symbol's MatchingEngine, so liquidity
consumption and queue positions see the same changes the book does. The exchange's status
follows its books: `starting` until every book is synced, `degraded` while any resyncs or
while a live feed reports that a symbol's data stopped flowing (`stale`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from coinwire.core.book_sync import BookSync
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.matching import MatchingEngine
from coinwire.core.orders import Fill, Order, Side
from coinwire.core.trade_candles import TradeCandles
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick

__all__ = ["PaperMarket", "PaperExchange", "STATUSES"]

STATUSES = ("starting", "ready", "degraded", "stopped")


class PaperMarket:
    """One symbol: the book sync feeding the matching engine, plus the last ticker and trade."""

    __slots__ = ("instrument", "engine", "sync", "_fills", "_ts", "last_trade", "ticker", "updates", "candles")

    def __init__(self, instrument: Instrument, fill_ids: IdSequence) -> None:
        self.instrument = instrument
        self.engine = MatchingEngine(instrument, fill_ids)
        self._fills: list[Fill] = []
        self._ts = 0
        self.sync = BookSync(self.engine.book, apply_levels=self._apply_levels, load_levels=self._load_levels)
        self.last_trade: TradeTick | None = None
        self.ticker: BookTicker | None = None
        self.updates = 0  # level updates applied, for metrics
        self.candles = TradeCandles(60)

    def _apply_levels(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        self.updates += len(bids) + len(asks)
        self._fills.extend(self.engine.on_levels(bids, asks, self._ts))

    def _load_levels(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        self._fills.extend(self.engine.on_snapshot(bids, asks, self._ts))

    def on_book(self, message: BookSnapshot | BookDelta) -> list[Fill]:
        """Feed one book message through the sync; returns fills of our resting orders it caused."""
        self._ts = message.ts
        self._fills = []
        if isinstance(message, BookSnapshot):
            self.sync.on_snapshot(message)
        else:
            self.sync.on_delta(message)
        return self._fills

    def on_market(self, message: BookSnapshot | BookDelta | TradeTick | BookTicker) -> list[Fill]:
        """Apply any market-data message; returns fills of our resting orders it caused."""
        if isinstance(message, TradeTick):
            return self.on_trade(message)
        if isinstance(message, BookTicker):
            self.ticker = message
            return []
        return self.on_book(message)

    def on_trade(self, trade: TradeTick) -> list[Fill]:
        self.last_trade = trade
        self.candles.add(trade.ts, trade.price, trade.size)
        aggressor = Side.BUY if trade.aggressor == "buy" else Side.SELL
        return self.engine.on_trade(trade.price, trade.size, aggressor, trade.ts)

    @property
    def synced(self) -> bool:
        return self.sync.state == "synced"


class PaperExchange:
    """The markets of one paper exchange and its status lifecycle."""

    venue_kind: ClassVar[str] = "paper"  # where this exchange's orders execute: core matching on the mirrored books

    def __init__(self, name: str, fill_ids: IdSequence, feed_name: str) -> None:
        self.name = name
        self.mode = "paper"
        self.feed_name = feed_name
        self.status = "starting"
        self.fill_ids = fill_ids
        self.markets: dict[str, PaperMarket] = {}
        self.stale: set[str] = set()  # symbols whose live feed says data is not flowing (feed health hook)

    def add_instruments(self, instruments: Iterable[Instrument]) -> list[PaperMarket]:
        added = []
        for instrument in instruments:
            if instrument.symbol not in self.markets:
                market = PaperMarket(instrument, self.fill_ids)
                self.markets[instrument.symbol] = market
                added.append(market)
        return added

    @property
    def funds_known(self) -> bool:
        """Whether the wallets hold what this exchange really has: paper funds are credited with its markets."""
        return True

    def market(self, symbol: str) -> PaperMarket | None:
        return self.markets.get(symbol)

    def currencies(self) -> list[str]:
        found: set[str] = set()
        for m in self.markets.values():
            found.add(m.instrument.base)
            found.add(m.instrument.quote)
        return sorted(found)

    def computed_status(self) -> str:
        """What the status should be now, from the books (the gateway announces changes)."""
        if self.status == "stopped":
            return "stopped"
        if not self.markets:
            return "starting"
        states = [m.sync.state for m in self.markets.values()]
        if all(s == "synced" for s in states) and not self.stale:
            return "ready"
        if self.status in ("ready", "degraded"):
            return "degraded"
        return "starting"

    def restore_order(self, order: Order) -> bool:
        """Put a resting order recovered from the store back into its engine."""
        market = self.markets.get(order.symbol)
        if market is None:
            return False
        market.engine.restore(order)
        return True
