"""The simulated venue: the backtests' exchange, on the core (execution, matching, ledger) and a simulated clock.

One order path with the paper venue: `core.execution.place_order` checks, holds and matches
an order on a `core.matching.MatchingEngine`, `settle_fills` settles what market data fills
later and `release_hold` gives a cancelled or expired order's hold back, all on the host's
ledger. Every change is handed to the host as one `Execution` (`VenueHost.record`): the
backtest runtime turns it into the run's report events. Two kinds of market data:

- `CandleVenue`: candles. An order arriving meets a book of one level, the candle's price
  with its volume (`candle_book`); a resting limit fills at its limit on the first later
  candle whose range reaches it, up to that candle's volume (`_touch`), and expires on its
  `cancel_after` (`_expire`). Those wake-ups are events on the `SimClock` the venue shares
  with its host, so they interleave with the run's timers in time order.
- `BookVenue`: a recorded L2 capture, fed one message at a time (`on_market`, then `settle`
  what it filled): the paper venue's book sync and matching per symbol (`PaperMarket` of
  venues/paper.py), consumed
  liquidity and queue positions included; orders expire when the host says the clock passed
  their due time.

The `Venue` protocol's commands are coroutines, and so is every step the venue takes on its
own that changes anything (a candle reaching a limit, an expiry, settling what a market
message filled): a backtest host never suspends, so the runtime runs each to its end at once with `venues.base.completed` (or awaits
it inside its own step), while the contract tests await the same code as any venue's.
Plain synchronous twins would have meant a second, untested path through every command.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Coroutine, Iterator
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from coinwire.core.errors import NotFound, NotReady
from coinwire.core.execution import place_order, release_hold, settle_fills
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Balance
from coinwire.core.matching import Levels, MatchingEngine
from coinwire.core.orders import DoneReason, Fill, Order, Side
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, TradeTick
from coinwire.venues.base import Execution, OpenOrders, VenueHost
from coinwire.venues.paper import PaperMarket

__all__ = ["BookVenue", "CandleMarket", "CandleVenue", "SimClock", "Step", "CLOSE", "OPEN", "INTRABAR"]

CLOSE, OPEN, INTRABAR = 0, 1, 2  # wake-up priorities at one instant: closes (and timers), then next opens, then intrabar
_UNLIMITED = 10**30  # "unlimited" liquidity: more than any order can take

Step = Callable[[], Coroutine[Any, Any, None]]


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

    def __init__(self, name: str, host: VenueHost) -> None:
        self.name = name
        self.status = "ready"
        self.host = host
        self.markets: dict[str, M] = {}
        self.orders = OpenOrders()  # orders not done, by id (what later fills and expiries refer to), with their client_oids

    def market(self, symbol: str) -> M | None:
        return self.markets.get(symbol)

    def currencies(self) -> list[str]:
        return sorted({c for m in self.markets.values() for c in (m.instrument.base, m.instrument.quote)})

    def open_orders(self) -> Iterator[Order]:
        for market in self.markets.values():
            yield from market.engine.open_orders.values()

    def balances(self, account: int) -> dict[str, Balance]:
        return self.host.ledger.account_balances(self.name, account)

    def restore_order(self, order: Order) -> bool:
        """Take back a resting order the host kept (a restart); it rejoins its price's queue at the back."""
        market = self.markets.get(order.symbol)
        if market is None:
            return False
        market.engine.restore(order)
        self._keep(order)
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

    async def place(self, order: Order, budget: int | None = None) -> Execution:
        """Check, hold and match `order` against the book as it is now; refused orders change nothing and raise."""
        market = self._placeable(order.symbol)
        self.orders.refuse_duplicate(order, self.name)
        fills, lines = place_order(self.host.ledger, market.engine, order, self.host.now(), budget=budget)
        execution = Execution([order], fills, lines, placed=order)
        if not order.is_done:
            self._keep(order)
        await self.host.record(execution)  # a backtest host keeps everything: raising here ends the run (the strategy failed)
        self._placed(market, order)
        return execution

    async def cancel(self, order: Order, reason: DoneReason | None = None) -> Execution:
        """Take a resting order off the book (NotFound when it is not resting here) and give its hold back."""
        market = self._market(order.symbol)
        now = self.host.now()
        market.engine.cancel(order.id, now)
        if reason is not None:
            order.done_reason = reason
        self._drop(order)
        execution = Execution([order], lines=release_hold(self.host.ledger, market.instrument, order, now))
        await self.host.record(execution)
        return execution

    async def _settle(self, instrument: Instrument, fills: list[Fill]) -> None:
        """Fills of resting orders that market data caused: settled and recorded one order at a time, in the fills' order."""
        by_order: dict[int, list[Fill]] = {}
        for fill in fills:
            by_order.setdefault(fill.order_id, []).append(fill)
        ledger, now = self.host.ledger, self.host.now()
        for order_id, order_fills in by_order.items():
            order = self.orders[order_id]
            lines = settle_fills(ledger, instrument, order, order_fills, now)
            if order.is_done:
                self._drop(order)
            await self.host.record(Execution([order], order_fills, lines))

    async def _expired(self, instrument: Instrument, orders: list[Order], now: int) -> None:
        for order in orders:
            self._drop(order)
            await self.host.record(Execution([order], lines=release_hold(self.host.ledger, instrument, order, now)))

    # --- what each kind adds ------------------------------------------------------------------
    def _placeable(self, symbol: str) -> M:
        """The market an order for `symbol` can be placed on now (raises when there is none)."""
        market = self.markets.get(symbol)
        return market if market is not None else self._market(symbol)

    def _placed(self, market: M, order: Order) -> None:
        """After a placement is recorded: what the venue does about an order left resting."""


class CandleMarket:
    """One symbol at the candle venue: its instrument, matching engine, the candles it fills against, the bar it is at."""

    __slots__ = ("instrument", "engine", "series", "price_scale", "size_scale", "bar")

    def __init__(self, instrument: Instrument, engine: MatchingEngine, series: Any) -> None:
        self.instrument = instrument
        self.engine = engine
        self.series = series  # engine.backtest.Series: the venue reads n, time_ns, low, high and volume
        self.price_scale: int = 10**instrument.price_decimals
        self.size_scale: int = 10**instrument.size_decimals
        self.bar = 0  # the candle an arriving order meets; resting orders are touched from it on

    def price_units(self, value: float) -> int:
        return round(float(value) * self.price_scale)

    def liquidity(self, volume: float, unlimited: bool) -> int:
        return _UNLIMITED if unlimited else int(volume * self.size_scale)


class CandleVenue(_SimulatedVenue[CandleMarket]):
    """The simulated venue over candles: books made of a candle, limits touched by later candles' ranges, expiry.

    `unlimited`: a candle's volume does not bound what it fills (peers' semantics).
    """

    def __init__(self, name: str, host: VenueHost, clock: SimClock, *, unlimited: bool = False) -> None:
        super().__init__(name, host)
        self.clock = clock
        self.unlimited = unlimited

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

    async def candle_book(self, symbol: str, side: Side, bar: int, price: float, volume: float) -> CandleMarket:
        """The book an order of `side` arriving at candle `bar` meets: one level at `price` holding the candle's volume.

        As `set_book`, inlined: it runs for every order of a candle backtest.
        """
        market = self._market(symbol)
        market.bar = bar
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
        """A trade printed at the venue: resting orders it reaches fill at their limit, up to its size."""
        market = self._market(symbol)
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
        depth = market.liquidity(s.volume[k], self.unlimited)
        await self.trade(order.symbol, market.price_units(extreme), depth, order.side.opposite)
        if not order.is_done and k + 1 < s.n:
            self._schedule_touch(order, market, k + 1)

    async def _expire(self, order: Order, market: CandleMarket) -> None:
        if order.is_done:
            return
        now = self.clock.now = max(self.clock.now, order.expires_at or self.clock.now)
        await self._expired(market.instrument, market.engine.expire(now), now)


class BookVenue(_SimulatedVenue[PaperMarket]):
    """The simulated venue over a recorded L2 capture: the paper exchange's book sync and matching, fed by the host."""

    def add_market(self, instrument: Instrument) -> PaperMarket:
        market = PaperMarket(instrument, self.host.fill_ids)
        self.markets[instrument.symbol] = market
        return market

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
        return market.on_market(message) if market is not None else []

    async def settle(self, fills: list[Fill]) -> None:
        """Settle and record what one market message filled (the list `on_market` returned), one order at a time."""
        if fills:
            await self._settle(self.markets[fills[0].symbol].instrument, fills)

    def next_expiry(self) -> int | None:
        """The earliest instant an order here expires (None: nothing will)."""
        due = None
        for market in self.markets.values():
            when = market.engine.next_expiry()
            if when is not None and (due is None or when < due):
                due = when
        return due

    async def expire(self, ts: int) -> None:
        """Orders whose cancel_after has elapsed by `ts` are done (expired), their holds back, at the host's clock."""
        now = self.host.now()
        for market in self.markets.values():
            expired = market.engine.expire(ts)
            if expired:
                await self._expired(market.instrument, expired, now)
