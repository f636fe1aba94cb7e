"""The backtest runtime: a simulated clock over stored candles, a simulated venue on the core objects.

Event-driven semantics at close to vectorised speed. Indicators are computed in batch over
the whole history once, but a strategy can only read them up to the last closed candle.
Conditions (`watch_cross`) are evaluated in batch too, so the clock jumps straight from one
candle where something can happen to the next: a condition firing, a subscribed candle, a
timer, a pending order reaching the next open, a resting order's price being reached.

Orders trade on the simulated venue (`venues/simulated_candles.py`, `CandleVenue`): the same
`core.execution.place_order`, matching engine and ledger as the paper venue, with this
runtime as its host (`engine/venue_host.py`) turning each change into the report's events.
A candle becomes the book the order meets: a market order placed when a candle closes
fills at the next candle's open (or at the signal candle's close with `fill="close"`),
against a level holding that candle's volume (`liquidity="volume"`, the default;
`"unlimited"` for peers' semantics). Resting limit orders fill at their limit on the first
candle whose low (buys) or high (sells) reaches it, up to that candle's volume. The venue's
wake-ups (a touch, an expiry) and the run's (timers, an order reaching the next open) share
one `SimClock`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any, NamedTuple

import msgspec
import numpy as np

from coinwire.core.errors import CoinwireError, InvalidInput, NotFound
from coinwire.core.ids import IdSequence
from coinwire.core.indicators import indicator_spec
from coinwire.core.instruments import PERPETUAL, Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.numbers import ATTO_DECIMALS, to_units
from coinwire.core.orders import Order
from coinwire.core.rollup import OHLCV, bucket_ends, bucket_starts, nests, parse_timeframe, rollup
from coinwire.engine.order_args import OrderArgs, order_args, prepare_conditional, resolve_size
from coinwire.engine.rules import CandleAnalysis, RuleRunner, run_rule_sets
from coinwire.engine.runtime import Runtime
from coinwire.engine.strategy import Indicator, OrderTicket, Strategy, StrategyParams
from coinwire.engine.venue_host import RunHost
from coinwire.venues.base import completed
from coinwire.venues.brackets import perpetual_fields
from coinwire.venues.intrabar import check_mode
from coinwire.venues.simulated import CLOSE, OPEN, SimClock
from coinwire.venues.simulated_candles import CandleMarket, CandleVenue
from coinwire.venues.simulated_perp import PerpFeed

__all__ = ["BacktestConfig", "BacktestRuntime", "PerpHistory", "Series", "instrument_for", "perpetual_instrument", "timeframe_ns"]

_NS = 1_000_000_000
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
    intrabar: str = "pessimistic"  # the path inside a bar stops and targets meet: "pessimistic", "ohlc", "olhc" (venues/intrabar.py)
    start: int | None = None  # unix seconds, inclusive (bar open time)
    end: int | None = None  # unix seconds, exclusive
    rules: list[dict[str, Any]] = []  # rule sets scoped to the run, in core.rules' JSON form (engine/rules.py)

    def __post_init__(self) -> None:
        if self.fill not in ("open", "close"):
            raise InvalidInput("invalid_fill", f"fill must be 'open' or 'close', got {self.fill!r}")
        if self.liquidity not in ("volume", "unlimited"):
            raise InvalidInput("invalid_liquidity", f"liquidity must be 'volume' or 'unlimited', got {self.liquidity!r}")
        check_mode(self.intrabar)
        if not self.balances:
            raise InvalidInput("missing_balance", "a backtest needs a starting balance, e.g. --balance binance:USDT=10000")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InvalidInput("empty_range", "the end of the backtest must be after its start")
        run_rule_sets(self.rules)  # refused here, before any candle is read


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


class PerpHistory(NamedTuple):
    """A perpetual's two other recorded series beside its trade candles: mark-price candles and funding rates (ns, 1e-8)."""

    mark: Series | None
    funding: list[tuple[int, int]]
    gaps: list[tuple[int, int]]  # (first, last) funding times (ns) the series lacks


def perpetual_instrument(exchange: str, symbol: str, series: Sequence[Series], fee: str) -> Instrument:
    """A backtest's linear perpetual `BASE/QUOTE:SETTLE`: the spot grid rules of `instrument_for`, one base per contract, and
    the exchange's leverage brackets, clearance fee and funding interval for the symbol as coinwire ships them (refdata;
    Binance USD-M's for an exchange it ships none for)."""
    if ":" not in symbol:
        raise InvalidInput("invalid_symbol", f"a perpetual's symbol looks like XRP/USDT:USDT, got {symbol!r}")
    pair, settle = symbol.split(":", 1)
    spot = instrument_for(exchange, pair, series, fee)
    fields = perpetual_fields(exchange, symbol) or perpetual_fields("binanceusdm", symbol)
    if not fields:
        raise InvalidInput("unknown_perpetual", f"coinwire has no leverage brackets for {symbol}: a backtest of it cannot margin it")
    return msgspec.structs.replace(spot, symbol=symbol, kind=PERPETUAL, settle=settle, **fields)


class BacktestRuntime(Runtime):
    """Runs one strategy over candles. `run()` returns when the history is exhausted or the strategy fails."""

    def __init__(self, run_id: str, candles: Sequence[Any], config: BacktestConfig,
                 perpetuals: Mapping[str, PerpHistory] | None = None) -> None:
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
        # the simulated venue and the clock it shares with the run: one matching engine per symbol, all funds in the run's wallet set
        self.clock = SimClock(self.start_ns)
        self.order_ids = IdSequence()
        self.host = RunHost(self, IdSequence(), self.order_ids)
        self.sim = CandleVenue(config.exchange, self.host, self.clock, unlimited=config.liquidity == "unlimited",
                               intrabar=config.intrabar)
        self.markets: dict[str, CandleMarket] = self.sim.markets
        by_symbol: dict[str, list[Series]] = {}
        for s in self.series.values():
            by_symbol.setdefault(s.symbol, []).append(s)
        for symbol, group in by_symbol.items():
            finest = min(group, key=lambda s: s.tf_ns)
            history = (perpetuals or {}).get(symbol)
            if history is None:
                self.sim.add_market(instrument_for(self.exchange, symbol, group, config.fee), finest)
                continue
            mark = None if history.mark is None else _clip(history.mark, config.start, config.end)
            inst = perpetual_instrument(self.exchange, symbol, [*group, *([mark] if mark is not None and mark.n else [])], config.fee)
            self.sim.add_market(inst, finest)
            self.sim.add_feed(symbol, PerpFeed(mark, history.funding, inst.price_decimals))
            self.perp.gaps[symbol] = [(max(a, self.start_ns), min(b, self.end_ns - 1)) for a, b in history.gaps
                                      if b >= self.start_ns and a < self.end_ns]
        if self.sim.feeds:
            self.sim.on_perp = self.on_perp
        ledger, set_id = funded_wallet_set(run_id, self.exchange, set(self.sim.currencies()), config.balances, self.start_ns)
        self.use_funds(self.exchange, ledger, set_id, next(iter(self.markets.values())).instrument.quote)
        self.orders: dict[int, Order] = self.host.orders
        # event machinery
        self._candle_subs: list[tuple[Series, Callable[[dict[str, Any]], None]]] = []
        self._crosses: list[tuple[Series, np.ndarray, np.ndarray, Callable[[], None] | None, Callable[[], None] | None]] = []
        self._indicators: list[tuple[Series, np.ndarray]] = []
        if config.rules:
            rule_sets = run_rule_sets(config.rules)
            self.rules = RuleRunner(rule_sets, self, analysis=CandleAnalysis(rule_sets, self.exchange, self._series))

    # --- clock ---------------------------------------------------------------------------------
    def now_ns(self) -> int:
        return self.clock.now

    def add_timer(self, delay_ns: int, callback: Callable[[], None], repeat: bool) -> None:
        if delay_ns < 0:
            raise InvalidInput("timer_in_past", "at() needs a time after the run's clock")
        first = self.clock.now + delay_ns

        async def fire(at: int = first) -> None:
            self.hub.record(at, "in", "clock.timer", {})
            self.deliver("timer", callback)
            if repeat and at + delay_ns <= self.end_ns:
                self.clock.at(at + delay_ns, CLOSE, lambda: fire(at + delay_ns))

        if first <= self.end_ns:
            self.clock.at(first, CLOSE, fire)

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
        rolled: Series = market.series.rollup(timeframe)
        self.series[key] = rolled
        return rolled

    def _visible(self, s: Series) -> int:
        """Index of the newest candle of `s` closed at or before the clock (-1 before the first)."""
        return int(s.close_ns.searchsorted(self.clock.now, "right")) - 1

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
            raise InvalidInput("no_price_yet", f"no closed candle of {symbol} before {self.clock.now // _NS}")
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

    # --- perpetuals -----------------------------------------------------------------------------
    def mark_units(self, inst: Instrument) -> int:
        market = self.markets.get(inst.symbol)
        return super().mark_units(inst) if market is None else self.sim.mark_now(market)

    def liquidation_units(self, inst: Instrument, pos: Any, mark: int) -> int | None:
        return self.sim.liquidation_price(inst, pos)

    # --- orders: sent to the simulated venue ----------------------------------------------------
    def submit_order(self, side: str, symbol: str, *, exchange: str, size: Any, funds: Any, limit: Any, type: str | None,
                     cancel_after: int, **conditional: Any) -> OrderTicket:
        market = self.markets.get(symbol)
        if market is None:
            raise NotFound("unknown_symbol", f"no market {symbol} in this backtest (loaded: {', '.join(sorted(self.markets))})")
        args = order_args(market.instrument, side, size=size, funds=funds, limit=limit, type=type, cancel_after=cancel_after,
                          **conditional)
        ticket = self.new_ticket(symbol, side, exchange, args.type._value_)
        now = self.clock.now
        self.order_call(now, "venue.make_order", {"client_oid": ticket.client_oid, "symbol": symbol, **args.view(market.instrument)})
        s = market.series
        if self.config.fill == "close":
            i = self._visible(s)
            completed(self._execute(ticket, args, market, i, s.close[i], s.volume[i], point=3))
        else:
            j = int(s.time_ns.searchsorted(now, "left"))
            if j >= s.n:
                self.finish_unsent(ticket, "expired", "no candle after the signal: the order never reached the venue")
            else:
                self.clock.at(int(s.time_ns[j]), OPEN, lambda: self._at_open(ticket, args, market, j))
        return ticket

    def cancel_order(self, ticket: OrderTicket) -> None:
        self.order_call(self.clock.now, "venue.cancel_order", {"client_oid": ticket.client_oid})
        if ticket.status == "pending" and ticket.order_id is None:
            self.finish_unsent(ticket, "cancelled", None)
            return
        order = self.orders.get(ticket.order_id or -1)
        if order is None or order.is_done:
            raise InvalidInput("order_done", f"order {ticket.client_oid} is already {ticket.status}")
        completed(self.sim.cancel(order))

    async def _at_open(self, ticket: OrderTicket, pending: OrderArgs, market: CandleMarket, j: int) -> None:
        if ticket.status != "pending":
            return  # cancelled before it reached the venue
        self.clock.now = int(market.series.time_ns[j])
        await self._execute(ticket, pending, market, j, market.series.open[j], market.series.volume[j])

    async def _execute(self, ticket: OrderTicket, pending: OrderArgs, market: CandleMarket, j: int, price: float, volume: float,
                       point: int = 0) -> None:
        """The order reaches the venue when the book is this candle's price with its volume (at its open, or `point` 3: its close)."""
        await self.sim.candle_book(market.instrument.symbol, pending.side, j, price, volume, point)
        if market.instrument.is_perpetual:
            size, budget = self.perp_size(market.instrument, market.engine, pending), None
        else:
            size, budget = resolve_size(pending, market.engine, self.ledger, self.exchange, self.wallet_set_id)
        if size <= 0:
            self.finish_unsent(ticket, "rejected", "nothing to trade: no funds or no liquidity for this order")
            return
        now = self.clock.now
        inst = market.instrument
        order = Order(id=self.order_ids.next(), client_oid=ticket.client_oid, exchange=self.exchange, symbol=inst.symbol,
                      side=pending.side, type=pending.type, size=size, limit=pending.limit, cancel_after=pending.cancel_after,
                      wallet_set_id=self.wallet_set_id, run_id=self.run_id, created_at=now, last_updated_at=now,
                      reduce_only=pending.reduce_only)
        ticket.order_id = order.id
        try:
            if pending.cond is not None or pending.exits is not None:
                prepare_conditional(order, pending)
            await self.sim.place(order, budget, allow_immediate=pending.cond is not None and pending.cond.allow_immediate)
        except CoinwireError as exc:
            self.finish_unsent(ticket, "rejected", f"{exc.code}: {exc.message}")

    # --- the run ----------------------------------------------------------------------------------
    def run(self, strategy_cls: type[Strategy], params: StrategyParams) -> Strategy:
        """Start, replay history to the end, stop. Raises StrategyFailed when the strategy raises."""
        strategy = self.start_strategy(strategy_cls, params)
        self.sim.start_funding(self.start_ns, self.end_ns)
        times, kinds, refs, bars = self._wake_plan()
        self._loop(times, kinds, refs, bars)
        self.clock.now = max(self.clock.now, self.end_ns)
        if self.halted is None:
            self.call("on_stop", strategy.on_stop)
        for ticket in self.open_orders():
            if ticket.status == "pending" and ticket.order_id is None:
                self.finish_unsent(ticket, "expired", "the backtest ended before the order reached the venue")
        self.hub.record(self.clock.now, "in", "run.stop", {})
        return strategy

    def _wake_plan(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """Every candle close where a callback fires, in time order: (close ns, kind, which, bar index).

        With rule sets attached, every close of every market's bars too (kind 3), first at its
        instant: a rule sees the portfolio at each close before the strategy acts on that candle.
        Without them nothing is added: the clock still jumps between the candles that matter.
        Recorded outside signals of subscribed providers are kind 4, at their own time, after a
        candle that closes at the same instant (a signal at t follows the candle closed at or before t).
        """
        parts_t, parts_kind, parts_ref, parts_bar = [], [], [], []
        if self.rules is not None:
            closes = np.unique(np.concatenate([m.series.close_ns for m in self.markets.values()]))
            parts_t.append(closes)
            parts_kind.append(np.full(len(closes), 3))
            parts_ref.append(np.zeros(len(closes), np.int64))
            parts_bar.append(np.zeros(len(closes), np.int64))
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
        replayed = [k for k, sig in enumerate(self.recorded_signals)
                    if sig["provider"] in self.signal_callbacks and self.start_ns <= sig["ts"] <= self.end_ns]
        if replayed:  # last, so a sort that keeps order puts a signal at a close after that close's candle (no look-ahead)
            parts_t.append(np.array([self.recorded_signals[k]["ts"] for k in replayed], np.int64))
            parts_kind.append(np.full(len(replayed), 4))
            parts_ref.append(np.array(replayed, np.int64))
            parts_bar.append(np.zeros(len(replayed), np.int64))
        if not parts_t:
            return [], [], [], []
        t = np.concatenate(parts_t)
        order = np.argsort(t, kind="stable")
        return (t[order].tolist(), np.concatenate(parts_kind)[order].tolist(),
                np.concatenate(parts_ref)[order].tolist(), np.concatenate(parts_bar)[order].tolist())

    def _loop(self, times: list[int], kinds: list[int], refs: list[int], bars: list[int]) -> None:
        clock = self.clock
        heap = clock.events
        n = len(times)
        i = 0
        subs = self._candle_subs
        crosses = self._crosses
        while i < n or heap:
            if self.halted is not None and i < n:
                i = n  # stopped by a rule set: only the venue's own steps (orders already sent) still run
                if not heap:
                    break
            if heap and (i >= n or heap[0][0] < times[i] or (heap[0][0] == times[i] and heap[0][1] == CLOSE)):
                ts, _, _, step = heapq.heappop(heap)
                if ts > clock.now:
                    clock.now = ts
                completed(step())
                continue
            now = clock.now = times[i]
            kind, ref, bar = kinds[i], refs[i], bars[i]
            i += 1
            if kind == 3:
                self.rules.sample_close(now)
            elif kind == 4:
                self.deliver_outside_signal(self.recorded_signals[ref])
            elif kind == 0:
                s, callback = subs[ref]
                candle = {"symbol": s.symbol, "timeframe": s.timeframe, "time": int(s.time_ns[bar] // _NS), "open": float(s.open[bar]),
                          "high": float(s.high[bar]), "low": float(s.low[bar]), "close": float(s.close[bar]),
                          "volume": float(s.volume[bar])}
                self.hub.record(now, "in", "market.candle", candle)
                self.deliver("market.candle", callback, candle)
            else:
                s, _, _, above, below = crosses[ref]
                on_cross = above if kind == 1 else below
                self.hub.record(now, "in", "market.cross", {"symbol": s.symbol, "timeframe": s.timeframe,
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
