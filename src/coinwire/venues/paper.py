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
from coinwire.core.conditional import (
    TriggerBook,
    bracket_children,
    check_bracket,
    check_conditional,
    check_oco,
    decode_bracket,
    fires,
    trigger_price,
)
from coinwire.core.errors import CoinwireError, DomainError, InvalidInput
from coinwire.core.execution import accept_conditional, fire, place_order, release_hold, resolve_oco, settle_fills
from coinwire.core.funds import hold_currency, oco_holds, required_hold
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import PERPETUAL, Instrument
from coinwire.core.ledger import Balance
from coinwire.core.matching import MatchingEngine
from coinwire.core.orders import (
    CONDITIONAL_TYPES,
    DoneReason,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
    TriggerSource,
)
from coinwire.core.positions import MarginMode
from coinwire.core.trade_candles import TradeCandles
from coinwire.core.wallets import WalletLine
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, MarkPrice, TradeTick
from coinwire.venues.base import Execution, OpenOrders
from coinwire.venues.paper_perp import PaperPerps

if TYPE_CHECKING:
    from coinwire.venues.hosted import GatewayHost

__all__ = ["MarketMirror", "PaperMarket", "PaperVenue", "STATUSES"]

STATUSES = ("starting", "ready", "degraded", "stopped")

_CONDITIONAL = CONDITIONAL_TYPES  # one set lookup on every order's path: the plain ones pay nothing more
_BUY, _DONE, _CANCELLED = Side.BUY, OrderStatus.DONE, DoneReason.CANCELLED  # module constants: see core.orders
_UNTRIGGERED, _TRIGGERED = OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED
_TRAILING, _LIMIT_TYPE = OrderType.TRAILING_STOP, OrderType.LIMIT
_STOP_TYPES = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
_LAST, _MARK = TriggerSource.LAST, TriggerSource.MARK
_PERPETUAL = PERPETUAL  # compared by value: an instrument that came over the bus holds its own string


class PaperMarket:
    """One symbol: the book sync feeding the matching engine, plus the last ticker and trade."""

    __slots__ = ("instrument", "engine", "triggers", "sync", "_fills", "_ts", "last_trade", "ticker", "updates", "candles")

    def __init__(self, instrument: Instrument, fill_ids: IdSequence) -> None:
        self.instrument = instrument
        self.engine = MatchingEngine(instrument, fill_ids)
        self.triggers = TriggerBook(instrument)  # the untriggered conditional orders of this market
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

    Conditional orders (docs/ORDERS.md, "Paper and the gateway") wait, holding their funds, in
    their market's `TriggerBook`: trades fire the `last` (and, on a spot market, `mark`) ones,
    book and ticker changes the `bid_ask` ones. A fired order becomes its child on the engine
    in one `Execution` (with its OCO sibling's cancel, or the bracket children it opens).

    Perpetual markets (docs/DERIVATIVES.md, "Paper") branch off once per order, on the
    instrument's kind, to `core.perp_execution` through `PaperPerps` (mark, funding,
    liquidations, position commands); spot orders never reach it.
    """

    kind = "paper"
    mode = "paper"
    virtual_funds = True
    account_id = 0

    def __init__(self, name: str, host: GatewayHost, feed_name: str) -> None:
        super().__init__(name, host.fill_ids, feed_name)
        self.host = host
        self.open = OpenOrders()  # order id -> order resting (or waiting for its trigger) here, with each owner's client_oids
        self.lists: dict[int, list[Order]] = {}  # OCO list id -> its two legs, until one fills, fires or ends
        self.unplaced: list[tuple[int | None, str]] = []  # (owner, why) of bracket children a step could not place
        self.perps = PaperPerps(name, host)  # the perpetual markets' marks, funding and position commands

    @property
    def funds_known(self) -> bool:
        """Paper funds are credited with the exchange's markets: the wallets are all there is."""
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # --- commands -------------------------------------------------------------------------------
    async def place(self, order: Order, budget: int | None = None, *, allow_immediate: bool = False) -> Execution:
        """Checks, hold, match on the mirrored book and settle (`place_order`), then record; a refusal changes nothing.

        A conditional order is checked against the mirror, held and armed instead (`_arm`). A
        bracket parent's children are placed, as an OCO, in the step whose fills complete it.
        """
        self.open.refuse_duplicate(order, self.name)
        market = self.markets[order.symbol]
        if market.instrument.kind == _PERPETUAL:
            return await self._place_perp(market, order, allow_immediate)
        if order.type in _CONDITIONAL:
            execution = self._arm(market, order, allow_immediate)
        else:
            bracket = order.bracket
            if bracket is not None:
                check_bracket(order, decode_bracket(bracket), self._entry(market, order), instrument=market.instrument)
            fills, lines = place_order(self.host.ledger, market.engine, order, order.created_at, budget=budget)
            execution = Execution([order], fills, lines, placed=order)
            if not order.is_done:
                self._keep(order)
            elif bracket is not None and order.filled_size:
                self._open_children(market, order, execution, order.created_at)
        await self.host.record(execution)
        if self.unplaced:
            await self._log_unplaced()
        return execution

    async def _place_perp(self, market: PaperMarket, order: Order, allow_immediate: bool) -> Execution:
        """A perpetual order: checked, margin held, matched and settled into its position in one step (`PaperPerps.place`);
        a stop or take-profit is checked against the mark and armed (`_arm_perp`)."""
        if order.bracket is not None or order.list_id or order.type is _TRAILING:
            raise InvalidInput("unsupported_on_perpetual", f"trailing stops, brackets and OCO lists are not available on the "
                               f"paper perpetual {market.instrument.symbol} yet", field="type")
        if order.type in _CONDITIONAL:
            execution = self._arm_perp(market, order, allow_immediate)
        else:
            execution = self.perps.place(market, order)
            if not order.is_done:
                self._keep(order)
        await self.host.record(execution)
        return execution

    def _arm_perp(self, market: PaperMarket, order: Order, allow_immediate: bool) -> Execution:
        """A perpetual's stop or take-profit: checked (`check_conditional`, its `mark` trigger at the perpetual's mark), its
        margin held (`accept_perp_order`: a reduce-only one is cut to its position and holds nothing), then watched."""
        inst = market.instrument
        ts = order.created_at
        last, bid, ask = _prices(market)
        mark = self.perps.mark(market)
        check_conditional(order, inst, last=last, bid=bid, ask=ask, now=ts, allow_immediate=allow_immediate, mark=mark)
        lines = self.perps.accept(market, order)
        order.move(_UNTRIGGERED, ts)
        price = trigger_price(order, last=last, bid=bid, ask=ask, mark=mark)
        return self._armed(market, order, lines, price, allow_immediate)

    async def place_oco(self, limit_leg: Order, stop_leg: Order) -> Execution:
        """Both legs in one step: checked against the mirror (`check_oco`, `check_conditional`), one hold, one record."""
        self.open.refuse_duplicate(limit_leg, self.name)
        self.open.refuse_duplicate(stop_leg, self.name)
        market = self.markets[limit_leg.symbol]
        inst = market.instrument
        last, bid, ask = _prices(market)
        if limit_leg.type is not _LIMIT_TYPE or stop_leg.type not in _STOP_TYPES:
            raise InvalidInput("oco_legs_disagree", "an OCO is a limit leg and a stop-market or stop-limit leg")
        check_oco(limit_leg, stop_leg, last=last, bid=bid, ask=ask)
        check_conditional(stop_leg, inst, last=last, bid=bid, ask=ask, now=stop_leg.created_at, mark=last)
        if limit_leg.limit % inst.tick or limit_leg.limit <= 0:
            raise InvalidInput("limit_off_tick", f"limit is not a positive multiple of the tick for {inst.symbol}", field="limit")
        execution = Execution(placed=limit_leg, created=[stop_leg])
        self._place_list(market, (limit_leg, stop_leg), execution, limit_leg.created_at)
        await self.host.record(execution)
        return execution

    async def cancel(self, order: Order, reason: DoneReason | None = None) -> Execution:
        """Take an order off the book or the trigger book (NotFound when it is not here); its hold goes back.

        Either leg of an OCO cancels the list.
        """
        ts = self.host.now()
        market = self.markets[order.symbol]
        if market.triggers.remove(order.id) is not None:
            order.move(_DONE, ts, _CANCELLED)
        else:
            market.engine.cancel(order.id, ts)
        if reason is not None:
            order.done_reason = reason
        return await self._finish(market, [order], ts)

    async def expire(self, now: int) -> None:
        for market in self.markets.values():
            nxt = market.engine.next_expiry()
            expired = market.engine.expire(now) if nxt is not None and nxt <= now else []
            if len(market.triggers):
                expired += market.triggers.expire(now)  # GTD and cancel_after end untriggered orders too
            if expired:
                await self._finish(market, expired, now)

    async def _finish(self, market: PaperMarket, orders: list[Order], ts: int) -> Execution:
        """Orders that ended without a fill of this step (cancelled, expired): holds back, OCO siblings cancelled with them.

        A bracket parent ending so drops its children's spec: they exist only from a fill that completes it.
        """
        execution = Execution(list(orders), [], [])
        ledger = self.host.ledger
        perpetual = market.instrument.kind == _PERPETUAL
        for order in orders:
            self._drop(order)
            if perpetual:
                execution.lines += self.perps.release(market, order, ts)
            elif order.list_id and order.list_id in self.lists:
                self._resolve(market, order, execution, ts)
            else:
                execution.lines += release_hold(ledger, market.instrument, order, ts)
        await self.host.record(execution)
        return execution

    # --- conditional orders -----------------------------------------------------------------------
    def _arm(self, market: PaperMarket, order: Order, allow_immediate: bool) -> Execution:
        """Check a conditional order against the mirror, hold its funds and put it in the trigger book.

        A trailing stop starts following at the current trigger price (a buy needs one to know
        its hold). With `allow_immediate`, an order the price has already passed fires at once,
        in the same step.
        """
        inst = market.instrument
        ts = order.created_at
        last, bid, ask = _prices(market)
        check_conditional(order, inst, last=last, bid=bid, ask=ask, now=ts, allow_immediate=allow_immediate, mark=last)
        bracket = order.bracket
        if bracket is not None:
            check_bracket(order, decode_bracket(bracket), order.limit or order.stop_price or self._entry(market, order),
                          instrument=inst)
        price = trigger_price(order, last=last, bid=bid, ask=ask, mark=last)
        if price is None and order.type is _TRAILING and order.side is _BUY and not order.activation_price:
            raise DomainError("no_trigger_price", f"no {order.trigger.value} price of {inst.symbol} is known yet to start "
                              "a trailing buy from; retry shortly")
        lines = accept_conditional(self.host.ledger, inst, order, ts, price=price)  # a trailing stop follows it at once
        return self._armed(market, order, lines, price, allow_immediate)

    def _armed(self, market: PaperMarket, order: Order, lines: list[WalletLine], price: int | None,
               allow_immediate: bool) -> Execution:
        """An accepted conditional order (held, untriggered): fired at once when allowed and its price is passed, else watched."""
        ts = order.created_at
        execution = Execution([order], [], lines, placed=order)
        self._keep(order)
        if allow_immediate and price is not None and fires(order, price):
            order.move(_TRIGGERED, ts)
            order.triggered_at = ts
            self._fire(market, order, execution, ts)
        else:
            self._watch(market, order)
        return execution

    def _watch(self, market: PaperMarket, order: Order) -> None:
        market.triggers.add(order)

    def _fire(self, market: PaperMarket, order: Order, execution: Execution, ts: int) -> None:
        """A triggered order becomes its child on the engine (`core.execution.fire`), its OCO sibling cancelled first.

        On a perpetual it fires into its position (`fire_perp`: a reduce-only one cut to what is left of it)."""
        if market.instrument.kind == _PERPETUAL:
            self.perps.fire(market, order, ts, execution)
            if order.is_done:
                self._drop(order)
            return
        if order.list_id and order.list_id in self.lists:
            self._resolve(market, order, execution, ts)  # before it spends: the list's one hold moves to it
        fills, lines = fire(self.host.ledger, market.engine, order, ts)
        execution.fills += fills
        execution.lines += lines
        if order.is_done:
            self._drop(order)
            if order.bracket is not None and order.filled_size:
                self._open_children(market, order, execution, ts)

    def _resolve(self, market: PaperMarket, leg: Order, execution: Execution, ts: int) -> None:
        """`leg` filled, fired or ended: its OCO sibling is taken off the books and cancelled, the list's hold follows (resolve_oco)."""
        others = [o for o in self.lists.pop(leg.list_id, ()) if o is not leg]
        if not others:  # its sibling ended before a restart: a list of one
            if leg.is_done:
                execution.lines += release_hold(self.host.ledger, market.instrument, leg, ts)
            return
        sibling = others[0]
        if market.triggers.remove(sibling.id) is None and sibling.id in market.engine.open_orders:
            market.engine.cancel(sibling.id, ts)
        execution.lines += resolve_oco(self.host.ledger, market.instrument, leg, sibling, ts)
        self._drop(sibling)
        if not any(o is sibling for o in execution.orders):
            execution.orders.append(sibling)

    def _place_list(self, market: PaperMarket, legs: tuple[Order, ...], execution: Execution, ts: int) -> None:
        """Hold and place an OCO's two legs (the first, whose id is the list's, holds for both) or a bracket's lone child: a
        limit leg goes to the book (and may take at once), a conditional leg to the trigger book (and may fire at once: no
        check refuses a bracket's child the market has passed since its parent was placed)."""
        ledger, inst = self.host.ledger, market.instrument
        holds = oco_holds(inst, legs[0], legs[1]) if len(legs) == 2 else (required_hold(inst, legs[0])[1],)
        for leg, hold in zip(legs, holds, strict=True):
            if leg.type in _CONDITIONAL:
                execution.lines += accept_conditional(ledger, inst, leg, ts, hold=hold)
            else:
                if inst.notional_atto(leg.limit, leg.size) < inst.min_notional:
                    raise InvalidInput("notional_below_minimum", f"order value is below the minimum notional for {inst.symbol}")
                execution.lines += ledger.set_hold(leg.id, leg.exchange, hold_currency(inst, leg.side), leg.wallet_set_id, hold, ts,
                                                   leg.account_id)
            execution.orders.append(leg)
            self._keep(leg)
        if len(legs) == 2:
            self.lists[legs[0].list_id] = list(legs)
        last, bid, ask = _prices(market)
        for leg in legs:
            if leg.is_done:  # its sibling took or fired at once
                continue
            if leg.type in _CONDITIONAL:
                price = trigger_price(leg, last=last, bid=bid, ask=ask, mark=last)
                if price is not None and fires(leg, price):
                    leg.move(_TRIGGERED, ts)
                    leg.triggered_at = ts
                    self._fire(market, leg, execution, ts)
                else:
                    self._watch(market, leg)
            else:
                fills = market.engine.submit(leg, ts)
                if fills:
                    if leg.list_id:
                        self._resolve(market, leg, execution, ts)
                    execution.fills += fills
                    execution.lines += settle_fills(ledger, inst, leg, fills, ts)
                if leg.is_done:
                    self._drop(leg)

    def _open_children(self, market: PaperMarket, parent: Order, execution: Execution, ts: int) -> None:
        """A bracket parent completed with a fill: its take-profit and stop-loss (an OCO) or its lone child, sized to the fill,
        at the levels its fill gives percentages, in this step.

        Children the account cannot hold (a short's buy-back beyond its quote) are not placed: the
        parent's fill stands, and the refusal goes to the log feed (`unplaced`).
        """
        assert parent.bracket is not None
        ids = self.host.order_ids
        bracket = decode_bracket(parent.bracket)
        first = ids.next()
        if bracket.legs == 2:
            ids.next()
        children = bracket_children(parent, bracket, first, ts, instrument=market.instrument)
        try:
            self._place_list(market, children, execution, ts)  # a refusal comes before it changes anything
        except CoinwireError as exc:
            self.unplaced.append((parent.owner_id, f"order {parent.client_oid}: its bracket's children were not placed: "
                                                   f"{exc.code}: {exc.message}"))
            return
        if execution.created is None:
            execution.created = []
        execution.created += children

    async def _log_unplaced(self) -> None:
        """After a step is recorded: log what it could not place (bracket children the account could not hold)."""
        while self.unplaced:
            owner, message = self.unplaced.pop(0)
            await self.host.log("warning", "coinwire.venues.paper", message, owner)

    def _entry(self, market: PaperMarket, order: Order) -> int:
        """The price a market parent is taken to enter at, for its bracket's checks: the touch it takes, else the last trade."""
        last, bid, ask = _prices(market)
        touch = ask if order.side is _BUY else bid
        price = touch if touch is not None else last
        if price is None:
            raise DomainError("no_liquidity", f"no price of {market.instrument.symbol} is known to check the bracket against")
        return price

    def _triggered(self, market: PaperMarket, message: BookSnapshot | BookDelta | TradeTick | BookTicker) -> list[Execution]:
        """What one market message fires in the trigger book (one execution per fired order), and trailing levels it moved."""
        triggers = market.triggers
        ts = message.ts
        if isinstance(message, TradeTick):
            fired = triggers.on_price(_LAST, message.price, ts)
            moved = triggers.moved
            if len(triggers) and market.instrument.kind != _PERPETUAL:
                fired += triggers.on_price(_MARK, message.price, ts)  # a spot market's mark is its last trade
                moved = moved + triggers.moved
        elif isinstance(message, BookTicker):
            fired = triggers.on_touch(message.bid, message.ask, ts)
            moved = triggers.moved
        else:
            book = market.engine.book
            fired = triggers.on_touch(book.best_bid(), book.best_ask(), ts)
            moved = triggers.moved
        executions: list[Execution] = []
        if moved:  # trailing stops whose level moved: stored (a trade that moves none writes nothing); a buy's hold shrinks
            ledger, inst = self.host.ledger, market.instrument
            lines = [line for order in moved if not order.list_id for line in settle_fills(ledger, inst, order, [], ts)]
            executions.append(Execution(list(moved), [], lines))
        for order in fired:
            if order.is_done:  # its OCO sibling fired first at this price
                continue
            execution = Execution([order], [], [])
            self._fire(market, order, execution, ts)
            executions.append(execution)
        return executions

    # --- market data ----------------------------------------------------------------------------
    async def on_market(self, message: BookSnapshot | BookDelta | TradeTick | BookTicker) -> bool:
        """Apply one market message to its book; settle the fills of resting orders it caused, then fire what it triggers.

        A book that lost its sync asks the host for a snapshot (the feed sends the first one
        itself); a book message may change the status, announced before its fills are recorded.
        """
        market = self.markets.get(message.symbol)
        if market is None:
            return False
        if isinstance(message, MarkPrice):
            return await self._on_mark(market, message)
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
        if len(market.triggers) and (market.synced or isinstance(message, TradeTick)):
            for execution in self._triggered(market, message):
                await self.host.record(execution)
            if self.unplaced:
                await self._log_unplaced()
        if market.instrument.kind == _PERPETUAL:
            await self._perp_market(market, message.ts)
        return True

    async def _on_mark(self, market: PaperMarket, message: MarkPrice) -> bool:
        """The feed's mark of a perpetual: liquidations and due funding at it, then its next funding time."""
        if market.instrument.kind != _PERPETUAL:
            return False
        perps = self.perps
        perps.on_mark(message)
        await self._perp_market(market, message.ts)
        perps.schedule(message)
        return True

    async def _perp_market(self, market: PaperMarket, ts: int) -> None:
        """After a message on a perpetual market: funding due and liquidations recorded, moved marks told.

        The exchange's log says where each perpetual's mark comes from, and again when that changes.
        """
        rule = self.perps.rule_changed(market.instrument.symbol)
        if rule is not None:
            await self.host.log("info", "coinwire.venues.paper", f"exchange {self.name}: the mark price of "
                                f"{market.instrument.symbol} is the {rule}")
        executions, marked = self.perps.after_market(market, ts)
        mark = self.perps.mark(market)
        if len(market.triggers) and mark is not None:  # stops and take-profits on the mark
            for order in market.triggers.on_price(_MARK, mark, ts):
                if not order.is_done:
                    execution = Execution([order], [], [])
                    self._fire(market, order, execution, ts)
                    executions.append(execution)
        for execution in executions:
            for order in execution.created or ():
                if not order.is_done:  # pragma: no cover - a liquidation order is done in its own step
                    self._keep(order)
            await self.host.record(execution)
        if marked:
            await self.host.publish_marks(marked)

    def mark_price(self, symbol: str) -> int | None:
        market = self.markets.get(symbol)
        return self.perps.mark(market) if market is not None and market.instrument.kind == _PERPETUAL else None

    def mark_rule(self, symbol: str) -> str:
        """Where a perpetual's mark comes from here: the feed's own, or the median rule (what the exchange's status says)."""
        return self.perps.mark_rule(symbol)

    # --- position commands (perpetuals) ----------------------------------------------------------------
    def _perp(self, symbol: str) -> PaperMarket:
        market = self.markets.get(symbol)
        if market is None or market.instrument.kind != _PERPETUAL:
            raise InvalidInput("not_a_perpetual", f"{symbol} on {self.name} is not a perpetual market", field="pair")
        return market

    async def set_leverage(self, account: int, symbol: str, leverage: int) -> Execution:
        execution = self.perps.set_leverage(account, self._perp(symbol), leverage)
        await self.host.record(execution)
        return execution

    async def set_margin_mode(self, account: int, symbol: str, mode: MarginMode) -> Execution:
        execution = self.perps.set_margin_mode(account, self._perp(symbol), mode, self._has_open_orders(account, symbol))
        await self.host.record(execution)
        return execution

    async def set_hedge_mode(self, account: int, hedge: bool) -> Execution:
        execution = self.perps.set_hedge_mode(account, hedge, self._has_open_orders(account, None))
        await self.host.record(execution)
        return execution

    async def adjust_margin(self, account: int, symbol: str, amount: int, side: PositionSide,
                            wallet_set_id: int | None = None) -> Execution:
        execution = self.perps.adjust_margin(account, self._perp(symbol), amount, side, wallet_set_id)
        await self.host.record(execution)
        return execution

    def _has_open_orders(self, account: int, symbol: str | None) -> bool:
        """Whether the account has perpetual orders open here (on `symbol`): a margin or position mode change waits for them."""
        return any(order.account_id == account and (symbol is None or order.symbol == symbol)
                   and self.markets[order.symbol].instrument.kind == _PERPETUAL for order in self.open.values())

    async def _settle(self, market: PaperMarket, fills: list[Fill]) -> None:
        """Fills of resting orders caused by market data (trades, book moves), as one execution.

        An OCO leg's first fill cancels its sibling; a bracket parent these fills complete opens its children.
        """
        ts = fills[-1].ts
        by_order: dict[int, list[Fill]] = {}
        for fill in fills:
            by_order.setdefault(fill.order_id, []).append(fill)
        execution = Execution([], fills, [])
        lines, orders = execution.lines, execution.orders
        ledger = self.host.ledger
        for order_id, order_fills in by_order.items():
            order = self.open.get(order_id)
            if order is None:  # pragma: no cover - an engine fill always names an order resting here
                continue
            if market.instrument.kind == _PERPETUAL:
                self.perps.settle(market, order, order_fills, ts, execution)
                orders.append(order)
                if order.is_done:
                    self._drop(order)
                continue
            if order.list_id and order.list_id in self.lists:
                self._resolve(market, order, execution, ts)  # before settling: the list's hold moves to this leg
            lines += settle_fills(ledger, market.instrument, order, order_fills, ts)
            orders.append(order)  # never a sibling cancelled above: an OCO has one leg on the engine at most
            if order.is_done:
                self._drop(order)
                if order.bracket is not None and order.filled_size:
                    self._open_children(market, order, execution, ts)
        await self.host.record(execution)
        if self.unplaced:
            await self._log_unplaced()

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
        """Put an order recovered from the store back (False until its market is known): a resting one on its engine
        (a fired stop-limit's limit too), an untriggered one armed in the trigger book, an OCO leg in its list."""
        market = self.markets.get(order.symbol)
        if market is None:
            return False
        if order.status is _UNTRIGGERED:
            self._watch(market, order)
        else:
            market.engine.restore(order)
        self._keep(order)
        if order.list_id and (order.status is _UNTRIGGERED or (order.triggered_at is None and order.filled_size == 0)):
            self.lists.setdefault(order.list_id, []).append(order)  # a leg whose list no fill or firing has ended yet
        return True

    def take_back(self, order: Order) -> None:
        market = self.markets[order.symbol]
        engine = market.engine
        if market.triggers.remove(order.id) is None and order.id in engine.open_orders:
            engine.cancel(order.id, order.last_updated_at)
        if order.list_id:
            self.lists.pop(order.list_id, None)
        self._drop(order)

    def forget_orders(self) -> None:
        for market in self.markets.values():
            market.engine.clear_orders()
            market.triggers = TriggerBook(market.instrument)
        self.open.clear()
        self.lists.clear()


def _prices(market: PaperMarket) -> tuple[int | None, int | None, int | None]:
    """The mirror's last trade price and touch (None: not known yet)."""
    book = market.engine.book
    last = market.last_trade.price if market.last_trade is not None else None
    return last, book.best_bid(), book.best_ask()
