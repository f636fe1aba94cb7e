"""The simulated venue: the backtests' exchange, on the core (execution, matching, ledger) and a simulated clock.

This module is what both kinds share (`SimulatedVenue`, `SimClock`); the kinds are
`venues/simulated_candles.py` (`CandleVenue`: candles, conditional orders fired on the
path assumed inside a bar) and `venues/simulated_book.py` (`BookVenue`: a recorded L2
capture through the paper venue's book sync and matching).

One order path with the paper venue: `core.execution.place_order` checks, holds and matches
an order on a `core.matching.MatchingEngine`, `settle_fills` settles what market data fills
later and `release_hold` gives a cancelled or expired order's hold back, all on the host's
ledger. Every change is handed to the host as one `Execution` (`VenueHost.record`): the
backtest runtime turns it into the run's report events.

The `Venue` protocol's commands are coroutines, and so is every step the venue takes on its
own that changes anything (a candle reaching a limit or a stop, an expiry, settling what a
market message filled): a backtest host never suspends, so the runtime runs each to its end
at once with `venues.base.completed` (or awaits it inside its own step), while the contract
tests await the same code as any venue's. Plain synchronous twins would have meant a second,
untested path through every command.

Conditional orders take core's path: `check_conditional` refuses (with the venue's prices),
`accept_conditional` holds their funds and arms them, `fire` executes a triggered one as its
child on the matching engine, `resolve_oco` cancels an OCO's other leg and moves the pair's
one hold (`place_oco`). An entry placed with exits (core's Bracket in `order.bracket`)
places them once it is done with a fill, sized to that fill, in the step
that fills it: an OCO of a take-profit and a stop when it asked for both.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Generic, Protocol, TypeVar

from coinwire.core.conditional import check_bracket, check_conditional, check_oco, fill_price
from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.execution import accept_conditional, fire, place_order, release_hold, resolve_oco, settle_fills
from coinwire.core.funds import oco_holds
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import PERPETUAL, Instrument
from coinwire.core.ledger import Balance
from coinwire.core.matching import MatchingEngine
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, OrderType
from coinwire.core.perp_execution import PerpStep, place_perp_order, release_perp_hold, settle_perp_fills
from coinwire.core.wallets import WalletLine
from coinwire.venues.base import Execution, OpenOrders, VenueHost

__all__ = ["ExitPlan", "SimClock", "SimulatedHost", "SimulatedVenue", "Step", "CLOSE", "OPEN", "INTRABAR", "is_conditional"]

CLOSE, OPEN, INTRABAR = 0, 1, 2  # wake-up priorities at one instant: closes (and timers), then next opens, then intrabar

Step = Callable[[], Coroutine[Any, Any, None]]
# An entry's exits: (the entry, done with a fill; its average fill price on the tick; now) -> its exit orders, pending
ExitPlan = Callable[[Order, int, int], list[Order]]
_UNTRIGGERED, _TRIGGERED, _DONE = OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED, OrderStatus.DONE
_TRAILING = OrderType.TRAILING_STOP
_PERPETUAL = PERPETUAL


def is_conditional(order: Order) -> bool:
    """A stop, take-profit or trailing stop: each has a level or a trailing distance (plain orders pay three attribute reads)."""
    return bool(order.stop_price or order.trail_ppm or order.trail_delta)


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


class SimulatedVenue(Generic[M]):
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
        # perpetuals: told of every step that changed positions (instrument, step, "order" | "funding" | "liquidation")
        self.on_perp: Callable[[Instrument, PerpStep, str], None] | None = None

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

    async def place(self, order: Order, budget: int | None = None, *, allow_immediate: bool = False) -> Execution:
        """Check, hold and match `order` against the book as it is now; refused orders change nothing and raise.

        A conditional order is checked (`core.conditional.check_conditional` at this venue's
        prices; `allow_immediate` accepts one that would fire at once), held and armed instead.
        The children of `order.bracket` are placed once the order is done with a fill, in the
        step that fills it.
        """
        market = self._placeable(order.symbol)
        self.orders.refuse_duplicate(order, self.name)
        if market.instrument.kind == _PERPETUAL:
            return await self._place_perp(market, order)
        if is_conditional(order):
            return await self._place_conditional(market, order, allow_immediate)
        exits = None
        if order.bracket is not None:
            exits = self._bracket_plan(market, order)  # checked before anything changes: a refusal writes nothing
        now = self.host.now()
        fills, lines = place_order(self.host.ledger, market.engine, order, now, budget=budget)
        execution = Execution([order], fills, lines, placed=order)
        if not order.is_done:
            self._keep(order)
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

    # --- perpetuals: core.perp_execution's path --------------------------------------------------
    async def _place_perp(self, market: M, order: Order) -> Execution:
        """A perpetual's market or limit order: checked, margin held and matched by core at the mark now; refusals raise."""
        if is_conditional(order) or order.bracket is not None:
            raise InvalidInput("not_supported", "a simulated perpetual takes market and limit orders (no stops or exits yet)")
        now = self.host.now()
        step = place_perp_order(self.host.ledger, market.engine, order, now, mark=self.mark_now(market))
        if not order.is_done:
            self._keep(order)
        execution = Execution([order, *step.orders], step.fills, step.lines, placed=order, created=step.orders or None)
        await self.host.record(execution)
        self._placed(market, order)
        await self._positions_changed(market, step, "order")
        return execution

    async def perp_step(self, market: M, step: PerpStep, why: str) -> None:
        """Record what a funding time or a liquidation changed (`step`'s orders are the venue's own: liquidation orders)."""
        if step.orders or step.fills or step.lines:
            await self.host.record(Execution(list(step.orders), step.fills, step.lines, created=list(step.orders) or None))
        await self._positions_changed(market, step, why)

    def _release(self, inst: Instrument, order: Order, now: int) -> list[WalletLine]:
        """A cancelled or expired order's hold goes back (a perpetual's margin hold through core.perp_execution)."""
        if inst.kind == _PERPETUAL:
            return release_perp_hold(self.host.ledger, inst, order, now)
        return release_hold(self.host.ledger, inst, order, now)

    def mark_now(self, market: M) -> int:
        """The mark price of a perpetual now, in price units (each kind of venue knows where it comes from)."""
        return self._price_now(market)

    async def _positions_changed(self, market: M, step: PerpStep, why: str) -> None:
        """After a perpetual's step: the host hears of the positions it changed (`on_perp`), and the venue watches them."""
        if self.on_perp is not None:
            self.on_perp(market.instrument, step, why)

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
            lines = self._release(market.instrument, order, now)
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
        inst = market.instrument
        check_bracket(order, bracket, self._entry(market, order), instrument=inst)
        ids = self.host.order_ids

        def children(parent: Order, entry: int, ts: int) -> list[Order]:
            first = ids.next()
            if bracket.legs == 2:
                ids.next()
            return list(bracket_children(parent, bracket, first, ts, instrument=inst))

        return children

    def _exits(self, market: M, parent: Order, plan: ExitPlan, execution: Execution, now: int) -> list[Order]:
        """The entry is done: its exits, sized to what it filled (none when it filled nothing), held and added to `execution`."""
        if parent.filled_size <= 0:
            return []
        inst = market.instrument
        entry = fill_price(parent, inst)  # its average price, tick half-up: what percentage exits are taken from
        children = plan(parent, entry, now)
        holds: tuple[int | None, ...] = (None,) * len(children)
        if len(children) == 2:
            holds = oco_holds(inst, children[0], children[1])
            self.lists[children[0].list_id] = (children[0].id, children[1].id)
        for child, hold in zip(children, holds, strict=True):
            if is_conditional(child):
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
            if not is_conditional(child) and not child.is_done:
                self._placed(market, child)
        await self._arm(market, children)

    def _sibling(self, order: Order) -> Order | None:
        legs = self.lists.get(order.list_id) if order.list_id else None
        if legs is None:
            return None
        other = legs[1] if legs[0] == order.id else legs[0]
        return None if other == order.id else self.orders.get(other)  # a restored leg whose sibling is done has none

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
            lines = self._release(market.instrument, order, now)
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
            if instrument.kind == _PERPETUAL:
                step = settle_perp_fills(ledger, instrument, order, order_fills, now, mark=self.mark_now(market))
                if order.is_done:
                    self._drop(order)
                await self.host.record(Execution([order, *step.orders], order_fills, step.lines, created=step.orders or None))
                await self._positions_changed(market, step, "order")
                continue
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
                lines = self._release(instrument, order, now)
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
