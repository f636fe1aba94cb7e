"""The simulated venue over candles: a candle backtest's exchange (the shared part is venues/simulated.py).

An order arriving meets a book of one level, the candle's price with its volume
(`candle_book`); a resting limit fills at its limit on the first later candle whose range
reaches it, up to that candle's volume (`_touch`), and expires on its `cancel_after`
(`_expire`). Conditional orders fire where the bar's assumed path reaches their level
(`venues/intrabar.py`, `--intrabar`), their market order meeting one level at that price
with the bar's volume (`_bar`, `_walk`); an armed order's first candle that can reach its
level is found with NumPy (`_watch`). Those wake-ups are events on the `SimClock` the venue
shares with its host, so they interleave with the run's timers in time order.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.matching import Levels, MatchingEngine
from coinwire.core.orders import DoneReason, Order, OrderStatus, OrderType, Side, TriggerSource
from coinwire.core.perp_execution import PerpStep, liquidations, settle_funding
from coinwire.core.position_risk import pool_liquidation_price
from coinwire.core.positions import Position
from coinwire.venues.intrabar import Hit, check_mode, first_hit, path
from coinwire.venues.simulated import CLOSE, INTRABAR, OPEN, SimClock, SimulatedHost, SimulatedVenue
from coinwire.venues.simulated_perp import PerpFeed

__all__ = ["CandleMarket", "CandleVenue"]

_UNLIMITED = 10**30  # "unlimited" liquidity: more than any order can take
_UNTRIGGERED, _TRIGGERED = OrderStatus.UNTRIGGERED, OrderStatus.TRIGGERED
_TRAILING = OrderType.TRAILING_STOP


def _fires_down(order: Order) -> bool:
    """Fires as the price falls to its level: a sell stop, a buy take-profit."""
    return (order.side is Side.SELL) is not order.type.takes_profit


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


class CandleVenue(SimulatedVenue[CandleMarket]):
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
        self.feeds: dict[str, PerpFeed] = {}  # perpetual markets: their mark candles and funding rates
        self.liquidation_watch = 0  # bumped on every position change: older liquidation wake-ups lapse

    @property
    def bars_with_both_legs(self) -> int:
        return len(self.both_legs)

    # --- perpetuals: mark candles, funding times, liquidation on the mark's worst price -------------
    def add_feed(self, symbol: str, feed: PerpFeed) -> None:
        """A perpetual market's mark candles and funding rates (venues/simulated_perp.py)."""
        self.feeds[symbol] = feed

    def start_funding(self, start_ns: int, end_ns: int) -> None:
        """Wake up at every recorded funding time of the run (none at a gap: a missing rate is never invented)."""
        for symbol, feed in self.feeds.items():
            market = self.markets[symbol]
            for ts, rate in feed.funding_due(start_ns, end_ns):
                self.clock.at(ts, CLOSE, partial(self._fund, market, ts, rate))

    async def _fund(self, market: CandleMarket, ts: int, rate: int) -> None:
        now = self.clock.now = max(self.clock.now, ts)
        inst = market.instrument
        step = settle_funding(self.host.ledger, inst, rate, self.mark_now(market), now)
        await self.perp_step(market, step, "funding")

    def mark_now(self, market: CandleMarket) -> int:
        feed = self.feeds.get(market.instrument.symbol)
        if feed is None:
            return market.here[2]
        return feed.mark_at(self.clock.now, market.series)

    def liquidation_price(self, inst: Instrument, pos: Position) -> int | None:
        """Where core's rule liquidates `pos` given the ledger as it is now (None: nowhere, e.g. a fully covered long)."""
        return pool_liquidation_price(self.host.ledger, pos, self._marks())

    def _marks(self) -> dict[str, int]:
        return {symbol: self.mark_now(self.markets[symbol]) for symbol in self.feeds}

    async def _positions_changed(self, market: CandleMarket, step: PerpStep, why: str) -> None:
        await super()._positions_changed(market, step, why)
        self._watch_liquidations()

    def _watch_liquidations(self, after: int | None = None) -> None:
        """Wake up at the first mark candle (closing after `after`, else the clock) whose worst price reaches an open position's
        liquidation price; older wake-ups lapse (a change since may have moved the price)."""
        self.liquidation_watch += 1
        version = self.liquidation_watch
        now = self.clock.now
        for symbol, feed in self.feeds.items():
            market = self.markets[symbol]
            inst = market.instrument
            for pos in self.host.ledger.positions.open_positions(self.name, symbol):
                price = self.liquidation_price(inst, pos)
                if price is None or price <= 0:
                    continue
                breach = feed.first_breach(market.series, now if after is None else after, pos.size > 0, price)
                if breach is not None:
                    opens, closes, worst = breach
                    self.clock.at(max(opens, now), INTRABAR, partial(self._liquidation_check, market, version, closes, worst))

    async def _liquidation_check(self, market: CandleMarket, version: int, closes: int, worst: int) -> None:
        """The mark reached its worst price in this bar: core liquidates what its margin rule says at that mark."""
        if version != self.liquidation_watch:
            return  # positions or balances changed since: a newer watch holds
        inst = market.instrument
        step = liquidations(self.host.ledger, inst, worst, self.clock.now, self.host.order_ids, self.host.fill_ids)
        if step.orders or step.lines:
            await self.perp_step(market, step, "liquidation")
            return
        self._watch_liquidations(closes)  # core's rule kept it open at this mark (a rounding apart): from the next bar on

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
        if order.status is not _UNTRIGGERED:  # an untriggered one is watched by `_rearm`
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

    def _unarm(self, market: CandleMarket, order: Order) -> None:
        for key in (order.id, order.list_id):
            group = market.armed.get(key)
            if group is not None and all(o is order or o.status is not _UNTRIGGERED for o in group):
                del market.armed[key]

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
