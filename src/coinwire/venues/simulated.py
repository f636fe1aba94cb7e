"""The simulated venue: the backtests' exchange, on the core (execution, matching, ledger) and a simulated clock.

One order path with the paper venue: `core.execution.place_order` checks, holds and matches
an order on a `core.matching.MatchingEngine`, `settle_fills` settles what market data fills
later and `release_hold` gives a cancelled or expired order's hold back, all on the host's
ledger. Every change is handed to the host as one `Execution` (`VenueHost.record`): the
backtest runtime turns it into the run's report events. Two kinds of market data:

- `CandleVenue`: candles. An order arriving meets a book of one level, the candle's price
  with its volume (`candle_book`); a resting limit fills at its limit on the first later
  candle whose range reaches it, up to that candle's volume (`_touch`), and expires on its
  `cancel_after` (`_expire`). Conditional orders fire where the bar's assumed path reaches
  their level (`venues/intrabar.py`, `--intrabar`), their market order meeting one level at
  that price with the bar's volume (`_bar`). Those wake-ups are events on the `SimClock` the
  venue shares with its host, so they interleave with the run's timers in time order.
- `BookVenue`: a recorded L2 capture, fed one message at a time (`on_market`, then `settle`
  what it filled): the paper venue's book sync and matching per symbol (`PaperMarket` of
  venues/paper.py), consumed
  liquidity and queue positions included; orders expire when the host says the clock passed
  their due time.

The `Venue` protocol's commands are coroutines, and so is every step the venue takes on its
own that changes anything (a candle reaching a limit or a stop, an expiry, settling what a market
message filled): a backtest host never suspends, so the runtime runs each to its end at once with `venues.base.completed` (or awaits
it inside its own step), while the contract tests await the same code as any venue's.
Plain synchronous twins would have meant a second, untested path through every command.

Conditional orders take core's path: `accept_conditional` holds their funds and arms them,
`fire` executes a triggered one as its child on the matching engine, `resolve_oco` cancels
an OCO's other leg and moves the pair's one hold. An entry placed with exits (an `ExitPlan`)
places them once it is done with a fill, sized to that fill: its children, an OCO of a
take-profit and a stop when it asked for both.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Coroutine, Iterator
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from coinwire.core.conditional import TriggerBook, check_bracket, check_conditional, check_oco
from coinwire.core.errors import InvalidInput, NotFound, NotReady
from coinwire.core.execution import accept_conditional, fire, place_order, release_hold, resolve_oco, settle_fills
from coinwire.core.funds import oco_holds
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance
from coinwire.core.matching import Levels, MatchingEngine
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, OrderType, Side, TriggerSource
from coinwire.core.wallets import WalletLine
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from coinwire.venues.base import Execution, OpenOrders, VenueHost
from coinwire.venues.intrabar import Hit, check_mode, first_hit, path
from coinwire.venues.paper import PaperMarket

__all__ = ["BookVenue", "CandleMarket", "CandleVenue", "ExitPlan", "SimClock", "Step", "CLOSE", "OPEN", "INTRABAR"]

CLOSE, OPEN, INTRABAR = 0, 1, 2  # wake-up priorities at one instant: closes (and timers), then next opens, then intrabar
_UNLIMITED = 10**30  # "unlimited" liquidity: more than any order can take

Step = Callable[[], Coroutine[Any, Any, None]]
# An entry's exits: (the entry, done with a fill; its average fill price on the tick; now) -> its exit orders, pending
ExitPlan = Callable[[Order, int, int], list[Order]]
_UNTRIGGERED, _TRIGGERED, _DONE = OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED, OrderStatus.DONE
_TRAILING = OrderType.TRAILING_STOP


def _conditional(order: Order) -> bool:
    """A stop, take-profit or trailing stop: each has a level or a trailing distance (plain orders pay three attribute reads)."""
    return bool(order.stop_price or order.trail_ppm or order.trail_delta)


def _fires_down(order: Order) -> bool:
    """Fires as the price falls to its level: a sell stop, a buy take-profit."""
    return (order.side is Side.SELL) is not order.type.takes_profit


class SimulatedHost(VenueHost, Protocol):
    """A simulated venue's host: a `VenueHost` that also hands out order ids (for the exits the venue places)."""

    @property
    def order_ids(self) -> IdSequence: ...


class _EngineMarket(Protocol):
    """A symbol at a simulated venue: its instrument and the matching engine its orders meet."""

    @property
    def instrument(self) -> Instrument: ...

    @property
    def engine(self) -> MatchingEngine: ...


M = TypeVar("M", bound=_EngineMarket)


class SimClock:
    """The simulated clock and its wake-ups: the instant a backtest has reached and what is due later, in order.

    A wake-up is `(ts, priority, seq, step)`: by time, then priority (`CLOSE`, `OPEN`,
    `INTRABAR`), then the order it was asked for. The host pops them (`events` is a heap)
    and runs each step; a step may move `now` itself (a candle's touch happens at its open).
    """

    __slots__ = ("now", "events", "_seq")

    def __init__(self, now: int) -> None:
        self.now = now
        self.events: list[tuple[int, int, int, Step]] = []
        self._seq = 0

    def at(self, ts: int, priority: int, step: Step) -> None:
        self._seq += 1
        heapq.heappush(self.events, (ts, priority, self._seq, step))


class _SimulatedVenue(Generic[M]):
    """What both simulated venues share: the Venue protocol over one matching engine per symbol and the host's ledger.

    Client order ids as at the paper venue: a new order naming the client_oid of an order of
    the same owner still open here is refused (`duplicate_client_oid`), so a strategy that
    reuses one meets in a backtest the refusal it would meet on an exchange.
    """

    kind = "simulated"

    def __init__(self, name: str, host: SimulatedHost) -> None:
        self.name = name
        self.status = "ready"
        self.host = host
        self.markets: dict[str, M] = {}
        self.orders = OpenOrders()  # orders not done, by id (what later fills and expiries refer to), with their client_oids
        self.exit_plans: dict[int, ExitPlan] = {}  # entries still open whose exits wait for them to be done
        self.lists: dict[int, tuple[int, int]] = {}  # OCO list id -> its two legs' ids

    def market(self, symbol: str) -> M | None:
        return self.markets.get(symbol)

    def currencies(self) -> list[str]:
        return sorted({c for m in self.markets.values() for c in (m.instrument.base, m.instrument.quote)})

    def open_orders(self) -> Iterator[Order]:
        """Every order not done here: resting, and waiting for its trigger."""
        yield from list(self.orders.values())

    def balances(self, account: int) -> dict[str, Balance]:
        return self.host.ledger.account_balances(self.name, account)

    def restore_order(self, order: Order) -> bool:
        """Take back an order the host kept (a restart): a resting one rejoins its queue at the back, an untriggered one is armed."""
        market = self.markets.get(order.symbol)
        if market is None:
            return False
        if order.list_id:
            legs = self.lists.get(order.list_id)
            self.lists[order.list_id] = (order.id, order.id) if legs is None else (legs[0], order.id)
        self._keep(order)
        if order.status is _UNTRIGGERED:
            self._rearm(market, order)
        else:
            market.engine.restore(order)
        return True

    def _keep(self, order: Order) -> None:
        self.orders.keep(order)

    def _drop(self, order: Order) -> None:
        self.orders.drop(order)

    def _market(self, symbol: str) -> M:
        market = self.markets.get(symbol)
        if market is None:
            raise NotFound("unknown_symbol", f"no market {symbol} at {self.name} (markets: {', '.join(sorted(self.markets))})",
                           symbol=symbol)
        return market

    async def place(self, order: Order, budget: int | None = None, exits: ExitPlan | None = None, *,
                    allow_immediate: bool = False) -> Execution:
        """Check, hold and match `order` against the book as it is now; refused orders change nothing and raise.

        A conditional order is checked (`core.conditional.check_conditional` at this venue's
        prices; `allow_immediate` accepts one that would fire at once), held and armed instead.
        `exits` (else the children of `order.bracket`) are placed once the order is done with a
        fill, in the step that fills it.
        """
        market = self._placeable(order.symbol)
        self.orders.refuse_duplicate(order, self.name)
        if _conditional(order):
            return await self._place_conditional(market, order, allow_immediate)
        now = self.host.now()
        fills, lines = place_order(self.host.ledger, market.engine, order, now, budget=budget)
        execution = Execution([order], fills, lines, placed=order)
        if not order.is_done:
            self._keep(order)
        if exits is None and order.bracket is not None:
            exits = self._bracket_plan(market, order)
        children: list[Order] = []
        if exits is not None:
            if order.is_done:
                children = self._exits(market, order, exits, execution, now)
            else:
                self.exit_plans[order.id] = exits
        await self.host.record(execution)  # a backtest host keeps everything: raising here ends the run (the strategy failed)
        self._placed(market, order)
        if children:
            await self._arm_children(market, children)
        return execution

    async def place_oco(self, limit_leg: Order, stop_leg: Order, *, allow_immediate: bool = False) -> Execution:
        """Place an OCO list: a limit leg and a stop leg of one size, holding once; one filling or firing cancels the other."""
        market = self._placeable(limit_leg.symbol)
        self.orders.refuse_duplicate(limit_leg, self.name)
        self.orders.refuse_duplicate(stop_leg, self.name)
        self._can_trigger(market, stop_leg)
        inst = market.instrument
        last, bid, ask = self._prices(market)
        check_oco(limit_leg, stop_leg, last=last, bid=bid, ask=ask)
        now = self.host.now()
        check_conditional(stop_leg, inst, last=last, bid=bid, ask=ask, now=now, mark=last, allow_immediate=allow_immediate)
        limit_leg.list_id = stop_leg.list_id = limit_leg.list_id or limit_leg.id
        hold_limit, hold_stop = oco_holds(inst, limit_leg, stop_leg)
        lines = accept_conditional(self.host.ledger, inst, stop_leg, now, hold=hold_stop)
        fills, more = place_order(self.host.ledger, market.engine, limit_leg, now, hold=hold_limit)
        self.lists[limit_leg.list_id] = (limit_leg.id, stop_leg.id)
        self._keep(stop_leg)
        orders = [limit_leg, stop_leg]
        if not limit_leg.is_done:
            self._keep(limit_leg)
        lines += more
        if fills:  # the limit leg took at once: the stop goes (it is in this step already)
            lines += self._cancel_sibling(market, limit_leg, now)[1]
        execution = Execution(orders, fills, lines, placed=limit_leg, created=[stop_leg])
        await self.host.record(execution)
        self._placed(market, limit_leg)
        if stop_leg.status is _UNTRIGGERED:
            await self._arm(market, [limit_leg, stop_leg])
        return execution

    async def cancel(self, order: Order, reason: DoneReason | None = None) -> Execution:
        """Take a resting order off the book (NotFound when it is not resting here) and give its hold back.

        An untriggered order is disarmed; an OCO leg cancels its list; an entry cancelled after
        a partial fill places its exits for what it filled.
        """
        market = self._market(order.symbol)
        now = self.host.now()
        if order.status is _UNTRIGGERED:
            return await self._disarm(market, order, reason or DoneReason.CANCELLED, now)
        market.engine.cancel(order.id, now)
        if reason is not None:
            order.done_reason = reason
        self._drop(order)
        siblings, lines = self._cancel_sibling(market, order, now) if order.list_id else ([], [])
        if not siblings:
            lines = release_hold(self.host.ledger, market.instrument, order, now)
        execution = Execution([order, *siblings], lines=lines)
        children = self._done(market, order, execution, now)
        await self.host.record(execution)
        if children:
            await self._arm_children(market, children)
        return execution

    # --- conditional orders -------------------------------------------------------------------
    def _prices(self, market: M) -> tuple[int | None, int | None, int | None]:
        """(last, bid, ask) a conditional request is checked against (None: not known)."""
        price = self._price_now(market) or None
        return price, price, price

    async def _place_conditional(self, market: M, order: Order, allow_immediate: bool) -> Execution:
        """Check, hold and arm it; a trailing stop starts following from the price now (unless it waits for its activation)."""
        self._can_trigger(market, order)
        inst = market.instrument
        last, bid, ask = self._prices(market)
        now = self.host.now()
        check_conditional(order, inst, last=last, bid=bid, ask=ask, now=now, mark=last, allow_immediate=allow_immediate)
        lines = accept_conditional(self.host.ledger, inst, order, now, price=last)
        self._keep(order)
        execution = Execution([order], [], lines, placed=order)
        await self.host.record(execution)
        await self._arm(market, [order])
        return execution

    def _bracket_plan(self, market: M, order: Order) -> ExitPlan:
        """The plan of a parent whose `bracket` (core's Bracket, prices in units) names its children."""
        from coinwire.core.conditional import bracket_children, decode_bracket

        bracket = decode_bracket(order.bracket or "")
        check_bracket(order, bracket, self._entry(market, order), instrument=market.instrument)
        ids = self.host.order_ids

        def children(parent: Order, entry: int, ts: int) -> list[Order]:
            first = ids.next()
            ids.next()
            return list(bracket_children(parent, bracket, first, ts))

        return children

    def _exits(self, market: M, parent: Order, plan: ExitPlan, execution: Execution, now: int) -> list[Order]:
        """The entry is done: its exits, sized to what it filled (none when it filled nothing), held and added to `execution`."""
        if parent.filled_size <= 0:
            return []
        inst = market.instrument
        raw = inst.notional_atto(1, parent.filled_size)
        entry = (2 * parent.filled_notional + raw * inst.tick) // (2 * raw * inst.tick) * inst.tick  # its average price, tick half-up
        children = plan(parent, entry, now)
        holds: tuple[int | None, ...] = (None,) * len(children)
        if len(children) == 2:
            holds = oco_holds(inst, children[0], children[1])
            self.lists[children[0].list_id] = (children[0].id, children[1].id)
        for child, hold in zip(children, holds, strict=True):
            if _conditional(child):
                execution.lines += accept_conditional(self.host.ledger, inst, child, now, hold=hold, price=entry)
            else:  # a limit take-profit rests on the book
                fills, lines = place_order(self.host.ledger, market.engine, child, now, hold=hold)
                execution.fills += fills
                execution.lines += lines
            self._keep(child)
            execution.orders.append(child)
        execution.created = [*(execution.created or []), *children]
        return children

    async def _arm_children(self, market: M, children: list[Order]) -> None:
        for child in children:
            if not _conditional(child) and not child.is_done:
                self._placed(market, child)
        await self._arm(market, children)

    def _sibling(self, order: Order) -> Order | None:
        legs = self.lists.get(order.list_id) if order.list_id else None
        if legs is None:
            return None
        return self.orders.get(legs[1] if legs[0] == order.id else legs[0])

    def _cancel_sibling(self, market: M, order: Order, now: int) -> tuple[list[Order], list[WalletLine]]:
        """`order` fired, filled or was cancelled: its OCO sibling is cancelled and the pair's one hold moves to it (or goes)."""
        sibling = self._sibling(order)
        self.lists.pop(order.list_id, None)
        if sibling is None or sibling.is_done:
            return [], []
        self._unarm(market, sibling)
        if sibling.status is not _UNTRIGGERED:
            market.engine.cancel(sibling.id, now)
        lines = resolve_oco(self.host.ledger, market.instrument, order, sibling, now)
        self._drop(sibling)
        return [sibling], lines

    async def _disarm(self, market: M, order: Order, reason: DoneReason, now: int) -> Execution:
        """An untriggered order ends (cancelled, expired): its hold goes back, an OCO's other leg ends with it."""
        self._unarm(market, order)
        order.move(_DONE, now, reason)
        self._drop(order)
        siblings, lines = self._cancel_sibling(market, order, now) if order.list_id else ([], [])
        if not siblings:
            lines = release_hold(self.host.ledger, market.instrument, order, now)
        execution = Execution([order, *siblings], lines=lines)
        await self.host.record(execution)
        return execution

    async def _trigger(self, market: M, order: Order, price: int, now: int) -> None:
        """`order` fired (it is triggered): its OCO sibling goes, its child executes (`price`: the candle level it meets; 0: the book)."""
        orders, lines = self._cancel_sibling(market, order, now) if order.list_id else ([], [])
        if price:
            await self._book_for(market, order, price)
        fills, more = fire(self.host.ledger, market.engine, order, now)
        if order.is_done:
            self._drop(order)
        execution = Execution([order, *orders], fills, lines + more)  # one step: triggered, executed, settled (and its sibling)
        await self.host.record(execution)
        if not order.is_done:
            self._rested(market, order)

    def _done(self, market: M, order: Order, execution: Execution, now: int) -> list[Order]:
        """An order became done: an entry waiting for it places its exits in the same step."""
        plan = self.exit_plans.pop(order.id, None) if self.exit_plans else None
        return self._exits(market, order, plan, execution, now) if plan is not None else []

    async def _settle(self, instrument: Instrument, fills: list[Fill]) -> None:
        """Fills of resting orders that market data caused: settled and recorded one order at a time, in the fills' order."""
        by_order: dict[int, list[Fill]] = {}
        for fill in fills:
            by_order.setdefault(fill.order_id, []).append(fill)
        ledger, now = self.host.ledger, self.host.now()
        market = self.markets[instrument.symbol]
        for order_id, order_fills in by_order.items():
            order = self.orders[order_id]
            orders = [order]
            lines: list[WalletLine] = []
            if order.list_id:  # an OCO's limit leg filling: the other leg goes first (the first time)
                siblings, lines = self._cancel_sibling(market, order, now)
                orders += siblings
            lines += settle_fills(ledger, instrument, order, order_fills, now)
            if order.is_done:
                self._drop(order)
            execution = Execution(orders, order_fills, lines)
            children = self._done(market, order, execution, now) if order.is_done else []
            await self.host.record(execution)
            if children:
                await self._arm_children(market, children)

    async def _expired(self, instrument: Instrument, orders: list[Order], now: int) -> None:
        market = self.markets[instrument.symbol]
        for order in orders:
            self._drop(order)
            siblings, lines = self._cancel_sibling(market, order, now) if order.list_id else ([], [])
            if not siblings:
                lines = release_hold(self.host.ledger, instrument, order, now)
            execution = Execution([order, *siblings], lines=lines)
            children = self._done(market, order, execution, now)
            await self.host.record(execution)
            if children:
                await self._arm_children(market, children)

    # --- what each kind adds ------------------------------------------------------------------
    def _placeable(self, symbol: str) -> M:
        """The market an order for `symbol` can be placed on now (raises when there is none)."""
        market = self.markets.get(symbol)
        return market if market is not None else self._market(symbol)

    def _placed(self, market: M, order: Order) -> None:
        """After a placement is recorded: what the venue does about an order left resting."""

    def _rested(self, market: M, order: Order) -> None:
        """A fired order's limit child rests: as `_placed`."""
        self._placed(market, order)

    def _can_trigger(self, market: M, order: Order) -> None:
        """Refuse (before anything is held) a conditional order this venue's market data cannot fire."""

    def _price_now(self, market: M) -> int:
        """The last price of `market` (0: none yet)."""
        return 0

    def _entry(self, market: M, order: Order) -> int:
        """The price a market entry is taken to enter at, for its bracket's checks (a limit entry's is its limit)."""
        return self._price_now(market)

    async def _arm(self, market: M, orders: list[Order]) -> None:
        """Watch untriggered `orders` (one, or an OCO's two legs) and fire them when their level is reached."""
        raise NotImplementedError

    def _unarm(self, market: M, order: Order) -> None:
        """Stop watching `order` (it is cancelled, expired or its OCO sibling fired)."""

    def _rearm(self, market: M, order: Order) -> None:
        """Watch an untriggered order restored after a restart, from the next market data on."""
        raise NotImplementedError

    async def _book_for(self, market: M, order: Order, price: int) -> None:
        """The book a triggered order meets when it fires at `price` (the L2 venue's is the recorded one)."""


class CandleMarket:
    """One symbol at the candle venue: its instrument, matching engine, the candles it fills against, the bar it is at."""

    __slots__ = ("instrument", "engine", "series", "price_scale", "size_scale", "bar", "here", "watch", "armed", "_units")

    def __init__(self, instrument: Instrument, engine: MatchingEngine, series: Any) -> None:
        self.instrument = instrument
        self.engine = engine
        self.series = series  # engine.backtest.Series: the venue reads n, time_ns, open, low, high, close and volume
        self.price_scale: int = 10**instrument.price_decimals
        self.size_scale: int = 10**instrument.size_decimals
        self.bar = 0  # the candle an arriving order meets; resting orders are touched from it on
        # where in a bar the venue is when something happens: (bar, last point of the bar's path passed, price)
        self.here: tuple[int, int, int] = (-1, 3, 0)  # before the first bar: no price yet
        self.watch: dict[int, list[list[Order]]] = {}  # bar -> the untriggered groups (an order, an OCO's legs) that may fire in it
        self.armed: dict[int, list[Order]] = {}  # every group armed, by its first order's id (what a printed trade may fire)
        self._units: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def units(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Open, high, low and close in price units (int64), made when the first conditional order arms."""
        if self._units is None:
            s = self.series
            self._units = tuple(np.round(a * self.price_scale).astype(np.int64) for a in (s.open, s.high, s.low, s.close))
        assert self._units is not None
        return self._units

    def bar_prices(self, k: int) -> tuple[int, int, int, int]:
        o, h, lo, c = self.units
        return int(o[k]), int(h[k]), int(lo[k]), int(c[k])

    def price_units(self, value: float) -> int:
        return round(float(value) * self.price_scale)

    def liquidity(self, volume: float, unlimited: bool) -> int:
        return _UNLIMITED if unlimited else int(volume * self.size_scale)


class CandleVenue(_SimulatedVenue[CandleMarket]):
    """The simulated venue over candles: books made of a candle, limits touched by later candles' ranges, expiry.

    `unlimited`: a candle's volume does not bound what it fills (peers' semantics). `intrabar`:
    the path assumed inside a bar (venues/intrabar.py). `bars_with_both_legs` counts the bars
    where both legs of an OCO were inside the bar's range, i.e. where that assumption decided.
    """

    def __init__(self, name: str, host: SimulatedHost, clock: SimClock, *, unlimited: bool = False, intrabar: str = "pessimistic") -> None:
        super().__init__(name, host)
        self.clock = clock
        self.unlimited = unlimited
        self.intrabar = check_mode(intrabar)
        self.both_legs: set[tuple[str, int]] = set()  # (symbol, bar) where both legs of an OCO were inside the range

    @property
    def bars_with_both_legs(self) -> int:
        return len(self.both_legs)

    def add_market(self, instrument: Instrument, series: Any) -> CandleMarket:
        """Trade `instrument` against `series` (the finest candles of its symbol, an engine.backtest.Series)."""
        market = CandleMarket(instrument, MatchingEngine(instrument, self.host.fill_ids), series)
        self.markets[instrument.symbol] = market
        return market

    async def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        """The book is now these levels; resting orders it crosses fill as makers (settled and recorded)."""
        market = self._market(symbol)
        fills = market.engine.on_snapshot(bids, asks, self.host.now())
        if fills:
            await self._settle(market.instrument, fills)

    async def candle_book(self, symbol: str, side: Side, bar: int, price: float, volume: float, point: int = 0) -> CandleMarket:
        """The book an order of `side` arriving at candle `bar` meets: one level at `price` holding the candle's volume.

        As `set_book`, inlined: it runs for every order of a candle backtest. `point`: where in
        the bar it arrives, 0 at the open, 3 at the close (what is left of the bar for the
        orders it arms).
        """
        market = self._market(symbol)
        market.bar = bar
        market.here = (bar, point, round(float(price) * market.price_scale))
        depth = _UNLIMITED if self.unlimited else int(volume * market.size_scale)
        level = [(round(float(price) * market.price_scale), depth)] if depth > 0 else []
        if side is Side.BUY:
            fills = market.engine.on_snapshot([], level, self.host.now())
        else:
            fills = market.engine.on_snapshot(level, [], self.host.now())
        if fills:
            await self._settle(market.instrument, fills)
        return market

    async def trade(self, symbol: str, price: int, size: int, aggressor: Side) -> None:
        """A trade printed at the venue: resting orders it reaches fill at their limit, up to its size; untriggered ones it reaches fire.

        A fired market order meets the book as it is (what `set_book` made it).
        """
        market = self._market(symbol)
        market.here = (market.bar, 3, price)  # what it fires, and the exits of what it fills, start from this price
        await self._print(market, price, size, aggressor)
        if market.armed:
            tick = market.instrument.tick
            for key, group in list(market.armed.items()):
                live = [o for o in group if o.status is _UNTRIGGERED]
                if not live:
                    market.armed.pop(key, None)
                    continue
                hit = first_hit(live, [price], tick)
                if hit is not None:
                    market.armed.pop(key, None)
                    now = self.host.now()
                    hit.order.move(_TRIGGERED, now)
                    hit.order.triggered_at = now
                    await self._trigger(market, hit.order, 0, now)

    async def _print(self, market: CandleMarket, price: int, size: int, aggressor: Side) -> None:
        fills = market.engine.on_trade(price, size, aggressor, self.host.now()) if size > 0 else []
        if fills:
            await self._settle(market.instrument, fills)

    def restore_order(self, order: Order) -> bool:
        if not super().restore_order(order):
            return False
        self._placed(self.markets[order.symbol], order)
        return True

    def _placed(self, market: CandleMarket, order: Order) -> None:
        if not order.is_done:
            if order.expires_at is not None:
                self.clock.at(order.expires_at, OPEN, partial(self._expire, order, market))
            self._schedule_touch(order, market, market.bar)

    def _schedule_touch(self, order: Order, market: CandleMarket, first: int) -> None:
        """Wake up at the first candle from `first` on whose range reaches the resting order's limit."""
        s = market.series
        limit = order.limit / market.price_scale
        column, hit = (s.low, np.less_equal) if order.side is Side.BUY else (s.high, np.greater_equal)
        chunk = 256
        start = first
        while start < s.n:
            found = np.flatnonzero(hit(column[start : start + chunk], limit + (1e-9 if order.side is Side.BUY else -1e-9)))
            if len(found):
                k = start + int(found[0])
                self.clock.at(int(s.time_ns[k]), INTRABAR, partial(self._touch, order, market, k))
                return
            start += chunk
            chunk *= 4

    async def _touch(self, order: Order, market: CandleMarket, k: int) -> None:
        """Candle `k` reached the order's limit: a trade at the candle's extreme, as large as its volume."""
        if order.is_done:
            return
        s = market.series
        self.clock.now = int(s.time_ns[k])
        extreme = s.low[k] if order.side is Side.BUY else s.high[k]
        # the limit is reached on the way to that extreme: on a fixed path, after the point before it
        lows_first = self.intrabar == "olhc"
        market.here = (k, 0 if (order.side is Side.BUY) is lows_first else 1, order.limit)
        depth = market.liquidity(s.volume[k], self.unlimited)
        await self._print(market, market.price_units(extreme), depth, order.side.opposite)
        if not order.is_done and k + 1 < s.n:
            self._schedule_touch(order, market, k + 1)

    async def _expire(self, order: Order, market: CandleMarket) -> None:
        if order.is_done:
            return
        now = self.clock.now = max(self.clock.now, order.expires_at or self.clock.now)
        if order.status is _UNTRIGGERED:
            await self._disarm(market, order, DoneReason.EXPIRED, now)
            return
        await self._expired(market.instrument, market.engine.expire(now), now)

    # --- conditional orders over candles --------------------------------------------------------
    def _can_trigger(self, market: CandleMarket, order: Order) -> None:
        if order.trigger is TriggerSource.BID_ASK:  # a spot market's mark is its last trade, as at the paper venue
            raise InvalidInput("trigger_unavailable", "candles are trades: a candle backtest fires orders on the last price "
                               "(or the mark, the same on spot), not on a bid or ask it does not have")

    def _price_now(self, market: CandleMarket) -> int:
        return market.here[2]

    def _rested(self, market: CandleMarket, order: Order) -> None:
        """A fired limit child waits for the next bar: whether this bar's range reached its limit before the trigger is unknown."""
        if order.expires_at is not None:
            self.clock.at(order.expires_at, OPEN, partial(self._expire, order, market))
        self._schedule_touch(order, market, market.here[0] + 1)

    async def _arm(self, market: CandleMarket, orders: list[Order]) -> None:
        """Walk the rest of the bar the venue is in, then watch the bars after it."""
        for order in orders:
            if order.expires_at is not None:
                self.clock.at(order.expires_at, OPEN, partial(self._expire, order, market))
        market.armed[orders[0].id] = orders
        k, start, price = market.here
        await self._walk(market, orders, k, start, price)

    def _rearm(self, market: CandleMarket, order: Order) -> None:
        group = self.lists.get(order.list_id) if order.list_id else None
        if group is not None and group[0] != order.id and group[0] in market.armed:
            market.armed[group[0]].append(order)
        else:
            market.armed[order.id] = [order]
        if order.expires_at is not None:
            self.clock.at(order.expires_at, OPEN, partial(self._expire, order, market))
        self._watch(market, market.armed.get(group[0] if group is not None else order.id, [order]), market.bar + 1)

    async def _walk(self, market: CandleMarket, group: list[Order], k: int, start: int, entry: int) -> None:
        """`group` (armed at point `start` of bar `k`'s path, at `entry`) walks the rest of the bar; fires, or waits for later bars."""
        live = [o for o in group if o.status is _UNTRIGGERED]
        if not live:
            return
        s = market.series
        if k >= s.n:
            return
        if k < 0:  # armed before the first bar reached the venue
            self._watch(market, live, 0)
            return
        o, h, lo, c = market.bar_prices(k)
        points = path(self.intrabar, live[0].side, o, h, lo, c, start, entry)
        if len(group) == 2 and len(points) > 1 and all(lo <= (leg.stop_price or leg.limit) <= h for leg in group):
            self.both_legs.add((market.instrument.symbol, k))
        hit = first_hit(live, points, market.instrument.tick)
        if hit is None:
            self._watch(market, live, k + 1)
            return
        market.armed.pop(group[0].id, None)
        await self._fire_at(market, hit, k, start)

    async def _fire_at(self, market: CandleMarket, hit: Hit, k: int, start: int) -> None:
        order = hit.order
        now = self.clock.now = max(self.clock.now, int(market.series.time_ns[k]))
        # where the bar's path is when it fires: its exits (if it has any) walk the rest from there
        market.here = (k, start + max(hit.segment - 1, 0), hit.price)
        market.bar = k
        order.move(_TRIGGERED, now)
        order.triggered_at = now
        await self._trigger(market, order, hit.price, now)

    async def _book_for(self, market: CandleMarket, order: Order, price: int) -> None:
        """One level at the level it fired at (or the gap's open), holding the bar's volume: the candle as a book."""
        k = market.here[0]
        depth = market.liquidity(market.series.volume[k], self.unlimited)
        level = [(price, depth)] if depth > 0 else []
        fills = (market.engine.on_snapshot([], level, self.host.now()) if order.side is Side.BUY
                 else market.engine.on_snapshot(level, [], self.host.now()))
        if fills:
            await self._settle(market.instrument, fills)

    def _watch(self, market: CandleMarket, group: list[Order], first: int) -> None:
        """Wake up at the first bar from `first` on whose range reaches a level of `group` (every bar for a trailing stop)."""
        s = market.series
        if first >= s.n:
            return
        if any(o.type is _TRAILING for o in group):
            k: int | None = first
        else:
            k = None
            _, h, lo, _ = market.units
            for order in group:
                column, hit = (lo, np.less_equal) if _fires_down(order) else (h, np.greater_equal)
                end = s.n if k is None else k
                found = _first(column, hit, order.stop_price, first, end)
                if found is not None:
                    k = found
        if k is None:
            return
        due = market.watch.get(k)
        if due is None:
            market.watch[k] = [group]
            self.clock.at(int(s.time_ns[k]), INTRABAR, partial(self._bar, market, k))
        else:
            due.append(group)

    async def _bar(self, market: CandleMarket, k: int) -> None:
        """Bar `k` may fire some untriggered orders: each group walks the bar from its open."""
        groups = market.watch.pop(k, [])
        self.clock.now = max(self.clock.now, int(market.series.time_ns[k]))
        opening = market.bar_prices(k)[0]
        for group in groups:
            market.here = (k, 0, opening)
            await self._walk(market, group, k, 0, opening)


def _first(column: np.ndarray, hit: Any, level: int, start: int, end: int) -> int | None:
    """The first index in [start, end) where `hit(column, level)`, searched in growing chunks (most levels are reached soon)."""
    chunk = 256
    while start < end:
        stop = min(end, start + chunk)
        found = np.flatnonzero(hit(column[start:stop], level))
        if len(found):
            return start + int(found[0])
        start = stop
        chunk *= 4
    return None


class BookVenue(_SimulatedVenue[PaperMarket]):
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
