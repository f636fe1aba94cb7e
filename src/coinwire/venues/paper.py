"""The paper venue: our orders matched by the core against the books mirrored from a feed.

`MarketMirror` is one exchange's markets as a feed shows them: per symbol a `PaperMarket`,
whose BookSync keeps the mirrored book honest (Binance's sync procedure, resync on a gap)
and hands every level change to that symbol's MatchingEngine, so liquidity consumption and
queue positions see the same changes the book does. Its status follows its books:
`starting` until every book is synced, `degraded` while any resyncs or while a live feed
reports that a symbol's data stopped flowing (`stale`). The live venue keeps the same mirror
for its checks and holds; the L2 backtest replays a recording into one.

`PaperVenue` is the `Venue` (venues/base.py) over that mirror: an order is placed with
`core.execution.place_order`, market data fills resting orders, `cancel_after` deadlines
expire them, and every change goes to the host's `record` as one `Execution`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from coinwire.core.book_sync import RESYNC, BookSync
from coinwire.core.execution import place_order, release_hold, settle_fills
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance
from coinwire.core.matching import MatchingEngine
from coinwire.core.orders import DoneReason, Fill, Order, Side
from coinwire.core.trade_candles import TradeCandles
from coinwire.core.wallets import WalletLine
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from coinwire.venues.base import Execution, OpenOrders

if TYPE_CHECKING:
    from coinwire.venues.hosted import GatewayHost

__all__ = ["MarketMirror", "PaperMarket", "PaperVenue", "STATUSES"]

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


class MarketMirror:
    """The markets of one exchange mirrored from its feed, and the status their books give it."""

    def __init__(self, name: str, fill_ids: IdSequence, feed_name: str) -> None:
        self.name = name
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


class PaperVenue(MarketMirror):
    """One paper exchange: the core matches our orders on the mirrored books; users hold virtual funds here.

    Client order ids: a new order naming the client_oid of an order of the same owner that is
    still open here is refused (`duplicate_client_oid`), as an exchange refuses it; answering
    a repeated command with the order it made (idempotency over done orders and restarts) is
    the gateway's (`Gateway.make_order`).
    """

    kind = "paper"
    mode = "paper"
    virtual_funds = True
    account_id = 0

    def __init__(self, name: str, host: GatewayHost, feed_name: str) -> None:
        super().__init__(name, host.fill_ids, feed_name)
        self.host = host
        self.open = OpenOrders()  # order id -> order resting here, with each owner's client_oids

    @property
    def funds_known(self) -> bool:
        """Paper funds are credited with the exchange's markets: the wallets are all there is."""
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # --- commands -------------------------------------------------------------------------------
    async def place(self, order: Order, budget: int | None = None) -> Execution:
        """Checks, hold, match on the mirrored book and settle (`place_order`), then record; a refusal changes nothing."""
        self.open.refuse_duplicate(order, self.name)
        fills, lines = place_order(self.host.ledger, self.markets[order.symbol].engine, order, order.created_at, budget=budget)
        if not order.is_done:
            self._keep(order)
        execution = Execution([order], fills, lines, placed=order)
        await self.host.record(execution)
        return execution

    async def cancel(self, order: Order, reason: DoneReason | None = None) -> Execution:
        """Take a resting order off the book (NotFound when it is not resting here); its hold goes back."""
        ts = self.host.now()
        self.markets[order.symbol].engine.cancel(order.id, ts)
        if reason is not None:
            order.done_reason = reason
        return await self._finish([order], ts)

    async def expire(self, now: int) -> None:
        for market in self.markets.values():
            nxt = market.engine.next_expiry()
            if nxt is not None and nxt <= now:
                expired = market.engine.expire(now)
                if expired:
                    await self._finish(expired, now)

    async def _finish(self, orders: list[Order], ts: int) -> Execution:
        lines: list[WalletLine] = []
        ledger = self.host.ledger
        for order in orders:
            lines += release_hold(ledger, self.markets[order.symbol].instrument, order, ts)
            self._drop(order)
        execution = Execution(orders, [], lines)
        await self.host.record(execution)
        return execution

    # --- market data ----------------------------------------------------------------------------
    async def on_market(self, message: BookSnapshot | BookDelta | TradeTick | BookTicker) -> bool:
        """Apply one market message to its book; settle the fills of resting orders it caused.

        A book that lost its sync asks the host for a snapshot (the feed sends the first one
        itself); a book message may change the status, announced before its fills are recorded.
        """
        market = self.markets.get(message.symbol)
        if market is None:
            return False
        fills = market.on_market(message)
        if isinstance(message, (BookDelta, BookSnapshot)):
            if market.sync.state == RESYNC:
                snapshot = self.host.snapshot(self.name, market.instrument.symbol)
                if snapshot is not None:
                    resynced = market.on_book(snapshot)
                    if resynced:
                        await self._settle(market, resynced)
            await self.host.refresh_status(self)
        if fills:
            await self._settle(market, fills)
        return True

    async def _settle(self, market: PaperMarket, fills: list[Fill]) -> None:
        """Fills of resting orders caused by market data (trades, book moves), as one execution."""
        ts = fills[-1].ts
        by_order: dict[int, list[Fill]] = {}
        for fill in fills:
            by_order.setdefault(fill.order_id, []).append(fill)
        lines: list[WalletLine] = []
        orders: list[Order] = []
        ledger = self.host.ledger
        for order_id, order_fills in by_order.items():
            order = self.open.get(order_id)
            if order is None:  # pragma: no cover - an engine fill always names an order resting here
                continue
            lines += settle_fills(ledger, market.instrument, order, order_fills, ts)
            orders.append(order)
            if order.is_done:
                self._drop(order)
        await self.host.record(Execution(orders, fills, lines))

    # --- state ------------------------------------------------------------------------------------
    def _keep(self, order: Order) -> None:
        self.open.keep(order)

    def _drop(self, order: Order) -> None:
        self.open.drop(order)

    def open_orders(self) -> Iterable[Order]:
        return self.open.values()

    def balances(self, account: int) -> dict[str, Balance]:
        return self.host.ledger.account_balances(self.name, account)

    def restore_order(self, order: Order) -> bool:
        """Put a resting order recovered from the store back into its engine (False until its market is known)."""
        market = self.markets.get(order.symbol)
        if market is None:
            return False
        market.engine.restore(order)
        self._keep(order)
        return True

    def take_back(self, order: Order) -> None:
        engine = self.markets[order.symbol].engine
        if order.id in engine.open_orders:
            engine.cancel(order.id, order.last_updated_at)
        self._drop(order)

    def forget_orders(self) -> None:
        for market in self.markets.values():
            market.engine.clear_orders()
        self.open.clear()
