"""The simulated venue over a recorded L2 capture: an L2 backtest's exchange (the shared part is venues/simulated.py).

Fed one message at a time (`on_market`, then `settle` what it filled and fired): the paper
venue's book sync and matching per symbol (`PaperMarket` of venues/paper.py), consumed
liquidity and queue positions included; orders expire when the host says the clock passed
their due time.
"""

from __future__ import annotations

from coinwire.core.conditional import TriggerBook
from coinwire.core.errors import NotReady
from coinwire.core.execution import settle_fills
from coinwire.core.instruments import Instrument
from coinwire.core.margin import mark_price
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, Side, TriggerSource
from coinwire.core.perp_execution import PerpStep, liquidations
from coinwire.core.position_risk import pool_liquidation_price
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from coinwire.venues.base import Execution
from coinwire.venues.paper import PaperMarket
from coinwire.venues.simulated import SimulatedHost, SimulatedVenue

__all__ = ["BookVenue"]

_UNTRIGGERED = OrderStatus.UNTRIGGERED


class BookVenue(SimulatedVenue[PaperMarket]):
    """The simulated venue over a recorded L2 capture: the paper exchange's book sync and matching, fed by the host.

    Conditional orders wait in a `core.conditional.TriggerBook` per symbol: recorded trades
    fire the LAST ones and recorded best bid/ask updates the BID_ASK ones, in the recording's
    order (`watch`, after the message reached the book); a fired order then walks the
    recorded book as its market or limit child (`settle`).
    """

    def __init__(self, name: str, host: SimulatedHost) -> None:
        super().__init__(name, host)
        self.triggers: dict[str, TriggerBook] = {}
        self.armed = 0  # untriggered orders held: the host asks `watch` only while there are any
        self.fired: list[Order] = []  # triggered by the last message, for `settle`
        self.moved: list[Order] = []  # trailing stops whose level the last message moved, for `settle`
        self.liquidation_levels: dict[str, tuple[bool, int]] = {}  # perpetuals: symbol -> (long?, liquidation price) of its position

    def add_market(self, instrument: Instrument) -> PaperMarket:
        market = PaperMarket(instrument, self.host.fill_ids)
        self.markets[instrument.symbol] = market
        self.triggers[instrument.symbol] = TriggerBook(instrument)
        return market

    def watch(self, message: BookSnapshot | BookDelta | TradeTick | BookTicker) -> None:
        """What a message the book took fires, as the paper venue has it: a trade is the last price (and a spot market's mark),
        a best bid/ask update or a book change the touch of the BID_ASK orders."""
        book = self.triggers.get(message.symbol)
        if book is None or not len(book):
            return
        if isinstance(message, TradeTick):
            fired = book.on_price(TriggerSource.LAST, message.price, message.ts)
            moved = book.moved
            if len(book):
                fired += book.on_price(TriggerSource.MARK, message.price, message.ts)
                moved = moved + book.moved
        elif isinstance(message, BookTicker):
            fired = book.on_touch(message.bid, message.ask, message.ts)
            moved = book.moved
        else:
            mirror = self.markets[message.symbol].engine.book
            fired = book.on_touch(mirror.best_bid(), mirror.best_ask(), message.ts)
            moved = book.moved
        if moved:
            self.moved += moved
        if fired:
            self.armed -= len(fired)
            self.fired += fired

    # --- perpetuals: the mark by the median rule, liquidation when the mark reaches a position's price ------------
    def mark_now(self, market: PaperMarket) -> int:
        """The recording carries no mark stream: the median of best bid, best ask and last trade (core.margin.mark_price)."""
        book = market.engine.book
        return mark_price(book.best_bid(), book.best_ask(), self._price_now(market) or None) or 0

    async def _positions_changed(self, market: PaperMarket, step: PerpStep, why: str) -> None:
        await super()._positions_changed(market, step, why)
        self.watch_liquidations()

    def watch_liquidations(self) -> None:
        """Each open position's liquidation price now (`liquidation_levels`): the host checks the mark against them per message."""
        self.liquidation_levels = {}
        for symbol, market in self.markets.items():
            inst = market.instrument
            if not inst.is_perpetual:
                continue
            for pos in self.host.ledger.positions.open_positions(self.name, symbol):
                price = pool_liquidation_price(self.host.ledger, pos, {symbol: self.mark_now(market)})
                if price is not None and price > 0:
                    self.liquidation_levels[symbol] = (pos.size > 0, price)

    async def check_liquidations(self, symbol: str) -> None:
        """After a message of `symbol`: a mark at or beyond a position's liquidation price hands it to core's liquidation."""
        level = self.liquidation_levels.get(symbol)
        if level is None:
            return
        market = self.markets[symbol]
        mark = self.mark_now(market)
        long, price = level
        if not mark or (mark > price if long else mark < price):
            return
        step = liquidations(self.host.ledger, market.instrument, mark, self.host.now(), self.host.order_ids, self.host.fill_ids)
        if step.orders or step.lines:
            await self.perp_step(market, step, "liquidation")

    def _price_now(self, market: PaperMarket) -> int:
        trade = market.last_trade
        return trade.price if trade is not None else 0

    def _prices(self, market: PaperMarket) -> tuple[int | None, int | None, int | None]:
        book = market.engine.book
        return self._price_now(market) or None, book.best_bid(), book.best_ask()

    def _entry(self, market: PaperMarket, order: Order) -> int:
        last, bid, ask = self._prices(market)
        touch = ask if order.side is Side.BUY else bid
        return touch if touch is not None else last or 0

    def _rearm(self, market: PaperMarket, order: Order) -> None:
        self.triggers[market.instrument.symbol].add(order)
        self.armed += 1

    async def _arm(self, market: PaperMarket, orders: list[Order]) -> None:
        book = self.triggers[market.instrument.symbol]
        for order in orders:
            if order.status is _UNTRIGGERED:
                book.add(order)
                self.armed += 1

    def _unarm(self, market: PaperMarket, order: Order) -> None:
        if self.triggers[market.instrument.symbol].remove(order.id) is not None:
            self.armed -= 1

    def ready_market(self, symbol: str) -> PaperMarket:
        """The market of `symbol` when its book is in sync; NotReady while it waits for or resyncs its book."""
        return self._placeable(symbol)

    def _placeable(self, symbol: str) -> PaperMarket:
        market = self._market(symbol)
        if not market.synced:
            raise NotReady("exchange_not_ready", f"exchange {self.name} is resyncing its book; retry shortly")
        return market

    def on_market(self, message: BookSnapshot | BookDelta | TradeTick | BookTicker) -> list[Fill]:
        """One recorded message reaches the venue's book; returns the fills of resting orders it caused, for `settle`.

        Synchronous, and the fills handed back rather than settled here, because it runs for
        every message of a recording and almost none fill anything: a coroutine per message
        cost the L2 backtest a tenth of its time.
        """
        market = self.markets.get(message.symbol)
        if market is None:
            return []
        fills = market.on_market(message)
        if self.armed:
            self.watch(message)
        return fills

    async def settle(self, fills: list[Fill]) -> None:
        """Settle and record what one market message filled (the list `on_market` returned), one order at a time.

        Then the orders it triggered (`watch`) execute, in id order, against the book as it is now.
        """
        if fills:
            await self._settle(self.markets[fills[0].symbol].instrument, fills)
        if self.moved:  # a trailing buy's hold follows its level down
            moved, self.moved = self.moved, []
            ledger, now = self.host.ledger, self.host.now()
            lines = [line for order in moved if not order.list_id
                     for line in settle_fills(ledger, self.markets[order.symbol].instrument, order, [], now)]
            await self.host.record(Execution(moved, [], lines))
        while self.fired:
            order = self.fired.pop(0)
            if order.is_done:
                continue  # its OCO sibling fired first on the same message
            await self._trigger(self.markets[order.symbol], order, 0, self.host.now())

    def next_expiry(self) -> int | None:
        """The earliest instant an order here expires (None: nothing will)."""
        due = None
        for market in self.markets.values():
            when = market.engine.next_expiry()
            if when is not None and (due is None or when < due):
                due = when
        if self.armed:
            for book in self.triggers.values():
                for order in book.orders():
                    when = order.expires_at
                    if when is not None and (due is None or when < due):
                        due = when
        return due

    async def expire(self, ts: int) -> None:
        """Orders whose cancel_after (or expire_at) has elapsed by `ts` are done (expired), their holds back, at the host's clock."""
        now = self.host.now()
        for market in self.markets.values():
            expired = market.engine.expire(ts)
            if expired:
                await self._expired(market.instrument, expired, now)
            if self.armed:
                for order in [o for o in self.triggers[market.instrument.symbol].orders() if (o.expires_at or ts + 1) <= ts]:
                    await self._disarm(market, order, DoneReason.EXPIRED, now)
