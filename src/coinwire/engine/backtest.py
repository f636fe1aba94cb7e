"""The backtest runtime: a simulated clock over stored candles, a simulated venue on the core objects.

Event-driven semantics at close to vectorised speed. Indicators are computed in batch over
the whole history once, but a strategy can only read them up to the last closed candle.
Conditions (`watch_cross`) are evaluated in batch too, so the clock jumps straight from one
candle where something can happen to the next: a condition firing, a subscribed candle, a
timer, a pending order reaching the next open, a resting order's price being reached.

Fills go through the same `core.execution.place_order`, matching engine and ledger as the
paper exchange. A candle becomes the book the order meets: a market order placed when a
candle closes fills at the next candle's open (or at the signal candle's close with
`fill="close"`), against a level holding that candle's volume (`liquidity="volume"`, the
default; `"unlimited"` for peers' semantics). Resting limit orders fill at their limit on
the first candle whose low (buys) or high (sells) reaches it, up to that candle's volume.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from datetime import UTC
from functools import partial
from typing import Any

import msgspec
import numpy as np

from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.core.execution import place_order, release_hold, settle_fills
from coinwire.core.ids import IdSequence
from coinwire.core.indicators import indicator_spec
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO_DECIMALS, to_units
from coinwire.core.orders import Order, Side
from coinwire.core.rollup import OHLCV, bucket_ends, bucket_starts, nests, parse_timeframe, rollup
from coinwire.engine.order_args import OrderArgs, order_args, resolve_size
from coinwire.engine.runtime import Runtime
from coinwire.engine.strategy import Indicator, OrderTicket, Strategy, StrategyParams

__all__ = ["BacktestConfig", "BacktestRuntime", "Series", "instrument_for", "timeframe_ns"]

_NS = 1_000_000_000
_CLOSE, _OPEN, _INTRABAR = 0, 1, 2  # event priorities at one instant: closes, then next opens, then intrabar
_UNLIMITED = 10**30
_MONTH_NS = 365 * 86_400 * _NS // 12


def timeframe_ns(timeframe: str) -> int:
    """`5m` -> 300e9, in core.rollup's grammar: exact for s, m, h, d and w (UTC), for months (`1M`, `3M`) a twelfth
    of a 365-day year each: a nominal length that orders timeframes and counts periods a year, never a clock's step
    (a month's candle closes at the next month's first instant, `Series.close_ns`)."""
    tf = parse_timeframe(timeframe)
    seconds = tf.utc_seconds
    return seconds * _NS if seconds is not None else tf.count * _MONTH_NS


class BacktestConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the simulated venue behaves; balances are the run's wallet set (currency -> decimal string)."""

    exchange: str
    balances: dict[str, str]
    fee: str = "0.001"
    fill: str = "open"  # "open": next candle's open; "close": the signal candle's close
    liquidity: str = "volume"  # "volume": a candle's volume is the most it can fill; "unlimited"
    start: int | None = None  # unix seconds, inclusive (bar open time)
    end: int | None = None  # unix seconds, exclusive

    def __post_init__(self) -> None:
        if self.fill not in ("open", "close"):
            raise InvalidInput("invalid_fill", f"fill must be 'open' or 'close', got {self.fill!r}")
        if self.liquidity not in ("volume", "unlimited"):
            raise InvalidInput("invalid_liquidity", f"liquidity must be 'volume' or 'unlimited', got {self.liquidity!r}")
        if not self.balances:
            raise InvalidInput("missing_balance", "a backtest needs a starting balance, e.g. --balance binance:USDT=10000")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InvalidInput("empty_range", "the end of the backtest must be after its start")


class Series:
    """The engine's candles: one symbol/timeframe as float arrays, with each bar's close instant for the clock.

    Not history.Candles (the validated, stored series a backtest loads: this is built from
    one, or rolled up from a finer Series, or from a paper run's trades) and not
    core.trade_candles (exact integer candles the market data service builds from trades).
    """

    __slots__ = ("symbol", "timeframe", "time_ns", "close_ns", "open", "high", "low", "close", "volume", "tf_ns", "n")

    def __init__(self, symbol: str, timeframe: str, time_s: np.ndarray, o: np.ndarray, h: np.ndarray, low: np.ndarray,
                 c: np.ndarray, v: np.ndarray) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.tf_ns = timeframe_ns(timeframe)
        self.time_ns = np.asarray(time_s, dtype=np.int64) * _NS
        tf = parse_timeframe(timeframe)
        if tf.utc_seconds is not None:
            self.close_ns = self.time_ns + self.tf_ns
        else:  # months: each bar closes when the next calendar month (quarter, ...) begins
            self.close_ns = bucket_ends(tf, UTC, self.time_ns // _NS) * _NS
        self.open, self.high, self.low, self.close, self.volume = (np.asarray(a, dtype=np.float64) for a in (o, h, low, c, v))
        self.n = len(self.time_ns)

    @classmethod
    def from_candles(cls, candles: Any) -> Series:
        return cls(candles.symbol, candles.timeframe, candles.time, candles.open, candles.high, candles.low, candles.close, candles.volume)

    def column(self, name: str) -> np.ndarray:
        if name not in ("open", "high", "low", "close", "volume"):
            raise InvalidInput("invalid_source", f"indicator source must be open, high, low, close or volume, got {name!r}")
        return getattr(self, name)  # type: ignore[no-any-return]

    def rollup(self, timeframe: str) -> Series:
        """Candles of a coarser timeframe from these, by core.rollup in UTC buckets (weeks from Monday, calendar months)."""
        tf = parse_timeframe(timeframe)
        if not nests(parse_timeframe(self.timeframe), tf):
            raise InvalidInput("invalid_timeframe",
                               f"{timeframe} cannot be made from the loaded {self.timeframe} candles of {self.symbol}: "
                               f"its UTC buckets are not whole runs of them")
        time_s = self.time_ns // _NS
        starts = bucket_starts(tf, UTC, int(time_s[0]), int(time_s[-1]) + 1) if self.n else np.empty(0, np.int64)
        rolled = rollup(OHLCV(time_s, self.open, self.high, self.low, self.close, self.volume), starts)
        return Series(self.symbol, timeframe, *rolled)


def funded_wallet_set(run_id: str, exchange: str, currencies: set[str], balances: dict[str, str], ts: int) -> tuple[Ledger, int]:
    """A backtest's own ledger: the balances credited to the exchange, then all of them given to the run's wallet set."""
    ledger = Ledger({exchange: currencies | set(balances)})
    allocations = []
    for currency, amount in sorted(balances.items()):
        atto = to_units(amount, ATTO_DECIMALS, f"balance of {currency}")
        if atto <= 0:
            raise InvalidInput("invalid_balance", f"the balance of {currency} must be positive, got {amount}")
        ledger.add_virtual_tx(exchange, currency, atto, ts)
        allocations.append((exchange, currency, atto))
    wallet_set, _ = ledger.create_wallet_set(run_id, "backtest", allocations, ts)
    return ledger, wallet_set.id


def _price_decimals(series: Sequence[Series]) -> int:
    """The fewest decimals that hold every price of these candles exactly (at most 10)."""
    for d in range(11):
        scale = 10.0**d
        if all(np.all(np.abs(np.round(a * scale) - a * scale) < 1e-4) for s in series for a in (s.open, s.high, s.low, s.close)):
            return d
    return 10


def instrument_for(exchange: str, symbol: str, series: Sequence[Series], fee: str) -> Instrument:
    """A backtest instrument: prices on the data's own grid, sizes fine enough that rounding never shows."""
    if "/" not in symbol:
        raise InvalidInput("invalid_symbol", f"symbol must look like BTC/USDT, got {symbol!r}")
    base, quote = symbol.split("/", 1)
    pd = _price_decimals(series)
    rate = Instrument.fee_rate(fee)
    if rate < 0 or rate >= 10**8:
        raise InvalidInput("invalid_fee", f"fee must be between 0 and 1, got {fee}")
    return Instrument(exchange=exchange, symbol=symbol, base=base, quote=quote, price_decimals=pd,
                      size_decimals=min(12, ATTO_DECIMALS - pd), maker_fee=rate, taker_fee=rate)


class _Market:
    """One symbol at the simulated venue: its instrument, matching engine and the series it fills against."""

    __slots__ = ("instrument", "engine", "series", "price_scale", "size_scale")

    def __init__(self, instrument: Instrument, engine: MatchingEngine, series: Series) -> None:
        self.instrument = instrument
        self.engine = engine
        self.series = series
        self.price_scale: int = 10**instrument.price_decimals
        self.size_scale: int = 10**instrument.size_decimals

    def price_units(self, value: float) -> int:
        return round(float(value) * self.price_scale)

    def liquidity(self, volume: float, unlimited: bool) -> int:
        return _UNLIMITED if unlimited else int(volume * self.size_scale)


class BacktestRuntime(Runtime):
    """Runs one strategy over candles. `run()` returns when the history is exhausted or the strategy fails."""

    def __init__(self, run_id: str, candles: Sequence[Any], config: BacktestConfig) -> None:
        super().__init__(run_id)
        if not candles:
            raise InvalidInput("history_missing", "a backtest needs candles: pass --data or import history first")
        self.config = config
        self.exchange = config.exchange
        self.exchanges = [config.exchange]  # a candle backtest trades one exchange
        self.series: dict[tuple[str, str], Series] = {}
        for c in candles:
            s = c if isinstance(c, Series) else Series.from_candles(c)
            s = _clip(s, config.start, config.end)
            if s.n:
                self.series[(s.symbol, s.timeframe)] = s
        if not self.series:
            raise InvalidInput("history_missing", "no candles fall inside the requested start and end")
        self.start_ns = int(min(s.time_ns[0] for s in self.series.values()))
        self.end_ns = int(max(s.close_ns[-1] for s in self.series.values()))
        self._now = self.start_ns
        # the venue: one ledger, one matching engine per symbol, all funds in the run's wallet set
        self.fill_ids = IdSequence()
        self.order_ids = IdSequence()
        self.markets: dict[str, _Market] = {}
        by_symbol: dict[str, list[Series]] = {}
        for s in self.series.values():
            by_symbol.setdefault(s.symbol, []).append(s)
        for symbol, group in by_symbol.items():
            finest = min(group, key=lambda s: s.tf_ns)
            inst = instrument_for(self.exchange, symbol, group, config.fee)
            self.markets[symbol] = _Market(inst, MatchingEngine(inst, self.fill_ids), finest)
        currencies = {c for m in self.markets.values() for c in (m.instrument.base, m.instrument.quote)}
        ledger, set_id = funded_wallet_set(run_id, self.exchange, currencies, config.balances, self.start_ns)
        self.use_funds(self.exchange, ledger, set_id, next(iter(self.markets.values())).instrument.quote)
        self.orders: dict[int, Order] = {}
        # event machinery
        self._heap: list[tuple[int, int, int, Callable[[], None]]] = []
        self._seq = 0
        self._candle_subs: list[tuple[Series, Callable[[dict[str, Any]], None]]] = []
        self._crosses: list[tuple[Series, np.ndarray, np.ndarray, Callable[[], None] | None, Callable[[], None] | None]] = []
        self._indicators: list[tuple[Series, np.ndarray]] = []

    # --- clock ---------------------------------------------------------------------------------
    def now_ns(self) -> int:
        return self._now

    def _push(self, ts: int, priority: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ts, priority, self._seq, action))

    def add_timer(self, delay_ns: int, callback: Callable[[], None], repeat: bool) -> None:
        if delay_ns < 0:
            raise InvalidInput("timer_in_past", "at() needs a time after the run's clock")
        first = self._now + delay_ns

        def fire(at: int = first) -> None:
            self.hub.record(at, "in", "clock.timer", {})
            self.deliver("timer", callback)
            if repeat and at + delay_ns <= self.end_ns:
                self._push(at + delay_ns, _CLOSE, lambda: fire(at + delay_ns))

        if first <= self.end_ns:
            self._push(first, _CLOSE, fire)

    # --- data ----------------------------------------------------------------------------------
    def _series(self, symbol: str, timeframe: str) -> Series:
        key = (symbol, timeframe)
        found = self.series.get(key)
        if found is not None:
            return found
        market = self.markets.get(symbol)
        if market is None:
            known = ", ".join(sorted(self.markets)) or "none"
            raise NotFound("history_missing", f"no candles for {symbol} in this backtest (loaded: {known})", symbol=symbol)
        rolled = market.series.rollup(timeframe)
        self.series[key] = rolled
        return rolled

    def _visible(self, s: Series) -> int:
        """Index of the newest candle of `s` closed at or before the clock (-1 before the first)."""
        return int(s.close_ns.searchsorted(self._now, "right")) - 1

    def candles(self, symbol: str, timeframe: str, count: int | None) -> dict[str, np.ndarray]:
        s = self._series(symbol, timeframe)
        end = self._visible(s) + 1
        begin = 0 if count is None else max(0, end - count)
        out = {"time": s.time_ns[begin:end] // _NS}
        for name in ("open", "high", "low", "close", "volume"):
            out[name] = s.column(name)[begin:end]
        for array in out.values():
            array.flags.writeable = False
        return out

    def last_price(self, symbol: str, exchange: str | None = None) -> float:
        market = self.markets.get(symbol)
        if market is None:
            raise NotFound("unknown_symbol", f"no market {symbol} in this backtest")
        i = self._visible(market.series)
        if i < 0:
            raise InvalidInput("no_price_yet", f"no closed candle of {symbol} before {self._now // _NS}")
        return float(market.series.close[i])

    def subscribe_candles(self, symbol: str, timeframe: str, callback: Callable[[dict[str, Any]], None]) -> None:
        self._candle_subs.append((self._series(symbol, timeframe), callback))

    def subscribe(self, kind: str, symbol: str, callback: Callable[[dict[str, Any]], None], exchange: str) -> None:
        raise InvalidInput("not_in_history",
                           f"this backtest has candles only: {kind} of {symbol} needs L2 history (use paper mode on a replay feed)")

    def add_indicator(self, kind: Any, symbol: str, timeframe: str, args: tuple[Any, ...], source: str) -> Indicator:
        spec = indicator_spec(kind)
        s = self._series(symbol, timeframe)
        inputs = spec.stream.inputs
        columns = [s.column(source)] if inputs == ("close",) else [s.column(name) for name in inputs]
        values = spec.batch(*columns, *args)
        if isinstance(values, tuple):
            values = values[0]
        values = np.asarray(values, dtype=np.float64)
        self._indicators.append((s, values))
        return Indicator(self, spec.stream.name, symbol, timeframe, args, len(self._indicators) - 1)

    def indicator_value(self, key: int, index: int) -> float:
        s, values = self._indicators[key]
        i = self._visible(s) + 1 + index
        return float(values[i]) if i >= 0 else math.nan

    def indicator_values(self, key: int) -> np.ndarray:
        s, values = self._indicators[key]
        view = values[: self._visible(s) + 1]
        view.flags.writeable = False
        return view

    def add_cross(self, a: Indicator, b: Indicator | float, above: Callable[[], None] | None, below: Callable[[], None] | None) -> None:
        sa, va = self._indicators[a.key]
        if isinstance(b, Indicator):
            sb, vb = self._indicators[b.key]
            if sb is not sa:
                raise InvalidInput("invalid_condition", "watch_cross compares indicators of the same symbol and timeframe")
        else:
            vb = np.full_like(va, float(b))
        with np.errstate(invalid="ignore"):
            now_above = va > vb
            was_below = va <= vb
        defined = ~(np.isnan(va) | np.isnan(vb))
        ok = defined[1:] & defined[:-1]
        ups = np.flatnonzero(now_above[1:] & was_below[:-1] & ok) + 1
        downs = np.flatnonzero((va[1:] < vb[1:]) & (va[:-1] >= vb[:-1]) & ok) + 1
        self._crosses.append((sa, ups, downs, above, below))

    def report_markets(self) -> dict[str, Any]:
        return self.markets

    def instrument(self, symbol: str, exchange: str | None = None) -> Instrument | None:
        market = self.markets.get(symbol)
        return None if market is None else market.instrument

    # --- orders ------------------------------------------------------------------------------------
    def submit_order(self, side: str, symbol: str, *, exchange: str, size: Any, funds: Any, limit: Any, type: str | None,
                     cancel_after: int) -> OrderTicket:
        market = self.markets.get(symbol)
        if market is None:
            raise NotFound("unknown_symbol", f"no market {symbol} in this backtest (loaded: {', '.join(sorted(self.markets))})")
        args = order_args(market.instrument, side, size=size, funds=funds, limit=limit, type=type, cancel_after=cancel_after)
        ticket = self.new_ticket(symbol, side, exchange)
        self.hub.record(self._now, "out", "venue.make_order",
                        {"client_oid": ticket.client_oid, "symbol": symbol, **args.view(market.instrument)})
        if self.config.fill == "close":
            i = self._visible(market.series)
            self._execute(ticket, args, market, i, market.series.close[i], market.series.volume[i])
        else:
            j = int(market.series.time_ns.searchsorted(self._now, "left"))
            if j >= market.series.n:
                self.finish_unsent(ticket, "expired", "no candle after the signal: the order never reached the venue")
            else:
                self._push(int(market.series.time_ns[j]), _OPEN, lambda: self._at_open(ticket, args, market, j))
        return ticket

    def cancel_order(self, ticket: OrderTicket) -> None:
        self.hub.record(self._now, "out", "venue.cancel_order", {"client_oid": ticket.client_oid})
        if ticket.status == "pending" and ticket.order_id is None:
            self.finish_unsent(ticket, "cancelled", None)
            return
        order = self.orders.get(ticket.order_id or -1)
        if order is None or order.is_done:
            raise InvalidInput("order_done", f"order {ticket.client_oid} is already {ticket.status}")
        market = self.markets[order.symbol]
        market.engine.cancel(order.id, self._now)
        release_hold(self.ledger, market.instrument, order, self._now)
        self.order_update(order)

    def _at_open(self, ticket: OrderTicket, pending: OrderArgs, market: _Market, j: int) -> None:
        if ticket.status != "pending":
            return  # cancelled before it reached the venue
        s = market.series
        self._now = int(s.time_ns[j])
        self._execute(ticket, pending, market, j, s.open[j], s.volume[j])

    def _execute(self, ticket: OrderTicket, pending: OrderArgs, market: _Market, j: int, price: float, volume: float) -> None:
        """The order reaches the venue when the book is this candle's price with its volume."""
        inst = market.instrument
        engine = market.engine
        px = market.price_units(price)
        depth = market.liquidity(volume, self.config.liquidity == "unlimited")
        level = [(px, depth)] if depth > 0 else []
        if pending.side is Side.BUY:
            engine.on_snapshot([], level, self._now)
        else:
            engine.on_snapshot(level, [], self._now)
        size, budget = resolve_size(pending, engine, self.ledger, self.exchange, self.wallet_set_id)
        if size <= 0:
            self.finish_unsent(ticket, "rejected", "nothing to trade: no funds or no liquidity for this order")
            return
        order = Order(id=self.order_ids.next(), client_oid=ticket.client_oid, exchange=self.exchange, symbol=inst.symbol,
                      side=pending.side, type=pending.type, size=size, limit=pending.limit, cancel_after=pending.cancel_after,
                      wallet_set_id=self.wallet_set_id, run_id=self.run_id, created_at=self._now, last_updated_at=self._now)
        ticket.order_id = order.id
        try:
            fills, _ = place_order(self.ledger, engine, order, self._now, budget=budget)
        except CoinwireError as exc:
            self.finish_unsent(ticket, "rejected", f"{exc.code}: {exc.message}")
            return
        self.orders[order.id] = order
        self.ticket_of[order.id] = ticket
        self.record_fills(order, fills, inst)
        if not order.is_done:
            if order.expires_at is not None:
                self._push(order.expires_at, _OPEN, lambda: self._expire(order, market))
            self._schedule_touch(order, market, j)

    def _schedule_touch(self, order: Order, market: _Market, first: int) -> None:
        """Jump to the first candle from `first` on whose range reaches the resting order's limit."""
        s = market.series
        limit = order.limit / market.price_scale
        column, hit = (s.low, np.less_equal) if order.side is Side.BUY else (s.high, np.greater_equal)
        chunk = 256
        start = first
        while start < s.n:
            found = np.flatnonzero(hit(column[start : start + chunk], limit + (1e-9 if order.side is Side.BUY else -1e-9)))
            if len(found):
                k = start + int(found[0])
                self._push(int(s.time_ns[k]), _INTRABAR, partial(self._touch, order, market, k))
                return
            start += chunk
            chunk *= 4

    def _touch(self, order: Order, market: _Market, k: int) -> None:
        if order.is_done:
            return
        s = market.series
        self._now = int(s.time_ns[k])
        extreme = s.low[k] if order.side is Side.BUY else s.high[k]
        depth = market.liquidity(s.volume[k], self.config.liquidity == "unlimited")
        aggressor = Side.SELL if order.side is Side.BUY else Side.BUY
        fills = market.engine.on_trade(market.price_units(extreme), depth, aggressor, self._now) if depth > 0 else []
        if fills:
            settle_fills(self.ledger, market.instrument, order, fills, self._now)
            self.record_fills(order, fills, market.instrument)
        if not order.is_done and k + 1 < s.n:
            self._schedule_touch(order, market, k + 1)

    def _expire(self, order: Order, market: _Market) -> None:
        if order.is_done:
            return
        self._now = max(self._now, order.expires_at or self._now)
        for expired in market.engine.expire(self._now):
            release_hold(self.ledger, market.instrument, expired, self._now)
            self.order_update(expired)

    # --- the run ----------------------------------------------------------------------------------
    def run(self, strategy_cls: type[Strategy], params: StrategyParams) -> Strategy:
        """Start, replay history to the end, stop. Raises StrategyFailed when the strategy raises."""
        strategy = self.start_strategy(strategy_cls, params)
        times, kinds, refs, bars = self._wake_plan()
        self._loop(times, kinds, refs, bars)
        self._now = max(self._now, self.end_ns)
        self.call("on_stop", strategy.on_stop)
        for ticket in self.open_orders():
            if ticket.status == "pending" and ticket.order_id is None:
                self.finish_unsent(ticket, "expired", "the backtest ended before the order reached the venue")
        self.hub.record(self._now, "in", "run.stop", {})
        return strategy

    def _wake_plan(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """Every candle close where a callback fires, in time order: (close ns, kind, which, bar index)."""
        parts_t, parts_kind, parts_ref, parts_bar = [], [], [], []
        for ref, (s, _) in enumerate(self._candle_subs):
            bars = np.arange(s.n)
            parts_t.append(s.close_ns[bars])
            parts_kind.append(np.zeros(s.n, np.int64))
            parts_ref.append(np.full(s.n, ref))
            parts_bar.append(bars)
        for ref, (s, ups, downs, above, below) in enumerate(self._crosses):
            for kind, bars, callback in ((1, ups, above), (2, downs, below)):
                if callback is None or not len(bars):
                    continue
                parts_t.append(s.close_ns[bars])
                parts_kind.append(np.full(len(bars), kind))
                parts_ref.append(np.full(len(bars), ref))
                parts_bar.append(bars)
        if not parts_t:
            return [], [], [], []
        t = np.concatenate(parts_t)
        order = np.argsort(t, kind="stable")
        return (t[order].tolist(), np.concatenate(parts_kind)[order].tolist(),
                np.concatenate(parts_ref)[order].tolist(), np.concatenate(parts_bar)[order].tolist())

    def _loop(self, times: list[int], kinds: list[int], refs: list[int], bars: list[int]) -> None:
        heap = self._heap
        n = len(times)
        i = 0
        subs = self._candle_subs
        crosses = self._crosses
        while i < n or heap:
            if heap and (i >= n or heap[0][0] < times[i] or (heap[0][0] == times[i] and heap[0][1] == _CLOSE)):
                ts, _, _, action = heapq.heappop(heap)
                if ts > self._now:
                    self._now = ts
                action()
                continue
            self._now = times[i]
            kind, ref, bar = kinds[i], refs[i], bars[i]
            i += 1
            if kind == 0:
                s, callback = subs[ref]
                candle = {"symbol": s.symbol, "timeframe": s.timeframe, "time": int(s.time_ns[bar] // _NS), "open": float(s.open[bar]),
                          "high": float(s.high[bar]), "low": float(s.low[bar]), "close": float(s.close[bar]),
                          "volume": float(s.volume[bar])}
                self.hub.record(self._now, "in", "market.candle", candle)
                self.deliver("market.candle", callback, candle)
            else:
                s, _, _, above, below = crosses[ref]
                on_cross = above if kind == 1 else below
                self.hub.record(self._now, "in", "market.cross", {"symbol": s.symbol, "timeframe": s.timeframe,
                                                                   "direction": "above" if kind == 1 else "below",
                                                                   "time": int(s.time_ns[bar] // _NS)})
                self.deliver("market.cross", on_cross)  # type: ignore[arg-type]


def _clip(s: Series, start: int | None, end: int | None) -> Series:
    lo = 0 if start is None else int(np.searchsorted(s.time_ns, start * _NS, side="left"))
    hi = s.n if end is None else int(np.searchsorted(s.time_ns, end * _NS, side="left"))
    if lo == 0 and hi == s.n:
        return s
    return Series(
        s.symbol, s.timeframe, s.time_ns[lo:hi] // _NS, s.open[lo:hi], s.high[lo:hi], s.low[lo:hi], s.close[lo:hi], s.volume[lo:hi]
    )
