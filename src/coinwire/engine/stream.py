"""The runtime over book and trade messages: market time, candles closed from trades, streaming indicators.

Shared by the L2 backtest (`engine/book_backtest.py`, recorded messages on a simulated clock)
and paper runs (`engine/paper.py`, the gateway's messages as they come). Both hand every
market message to `deliver_market` after the venue's book has taken it, and send the orders the
strategy asked for (`drain`) before the next message. Same messages in, same calls out: that
is why a paper run's fills can match a backtest over the same recording.

The clock is market time: the newest message's timestamp (never running backwards). Before
a message is delivered, every candle that closed and every timer that fell due at or before
its timestamp fires, in time order: candles close when time passes their end, so a strategy
sees only closed candles, built from the trades it has already been shown.

A run may follow several exchanges (`venues`: exchange -> its markets; a paper run whose
wallet set spans them). Book, ticker and trade subscriptions are per exchange and symbol;
candles, indicators and the report's prices are built from the first exchange's trades only,
so one market's candles never mix two venues' prices.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.indicators import Indicator as StreamIndicator
from coinwire.core.indicators import indicator_spec
from coinwire.core.instruments import Instrument
from coinwire.core.matching import MatchingEngine
from coinwire.core.orders import Side
from coinwire.core.rollup import OHLCV, parse_timeframe, utc_bucket
from coinwire.engine.backtest import Series
from coinwire.engine.order_args import order_args
from coinwire.engine.runtime import Runtime
from coinwire.engine.strategy import Indicator, OrderTicket, Strategy, StrategyParams
from coinwire.engine.warmup import Need, explicit_bars
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, Message, TradeTick

__all__ = ["CandleStream", "Command", "StreamMarket", "StreamRuntime"]

_NS = 1_000_000_000
_NEVER = 1 << 62
_BOOK_LEVELS = 10  # levels a side in a book callback
REPORT_TIMEFRAME = "1m"  # the candles a stream run's report values its holdings at

Command = tuple[str, OrderTicket, Any]  # ("order", ticket, (symbol, OrderArgs)) | ("cancel", ticket, None)


class StreamMarket(Protocol):
    """What the runtime reads of a venue's market (a paper or simulated venue's): its instrument, book, last trade, sync state."""

    @property
    def instrument(self) -> Instrument: ...

    @property
    def engine(self) -> MatchingEngine: ...

    @property
    def last_trade(self) -> TradeTick | None: ...

    @property
    def synced(self) -> bool: ...


class CandleStream:
    """Candles of one symbol and timeframe built from trades, with the indicators and crosses read on them."""

    __slots__ = ("callbacks", "close", "closed", "crosses", "end", "high", "indicators", "low", "open", "start", "symbol", "tf",
                 "time", "timeframe", "volume", "_c", "_h", "_l", "_o", "_v")

    def __init__(self, symbol: str, timeframe: str) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.tf = parse_timeframe(timeframe)
        self.start = -1  # open bucket's start (ns); -1 when no trade since the last close
        self.end = _NEVER  # open bucket's end (ns): core.rollup's UTC buckets (weeks from Monday, calendar months)
        self._o = self._h = self._l = self._c = self._v = 0.0
        self.time: list[int] = []  # closed candles, oldest first (start, unix seconds)
        self.open: list[float] = []
        self.high: list[float] = []
        self.low: list[float] = []
        self.close: list[float] = []
        self.volume: list[float] = []
        self.closed = 0
        self.indicators: list[tuple[StreamIndicator, list[float], tuple[str, ...]]] = []
        self.crosses: list[tuple[list[float], list[float] | float, Callable[[], None] | None, Callable[[], None] | None]] = []
        self.callbacks: list[Callable[[dict[str, Any]], None]] = []

    def next_close(self) -> int:
        return self.end if self.start >= 0 else _NEVER

    def add(self, ts: int, price: float, size: float) -> None:
        """A trade at `ts`; the caller has closed the bucket before if `ts` is past its end."""
        if self.start < 0:
            start, end = utc_bucket(self.tf, ts // _NS)
            self.start, self.end = start * _NS, end * _NS
            self._o = self._h = self._l = self._c = price
            self._v = size
            return
        if price > self._h:
            self._h = price
        elif price < self._l:
            self._l = price
        self._c = price
        self._v += size

    def close_bucket(self) -> dict[str, Any]:
        """Close the open candle: append it, update the indicators; returns the candle as the strategy sees it."""
        candle: dict[str, Any] = {"symbol": self.symbol, "timeframe": self.timeframe, "time": self.start // _NS, "open": self._o,
                                  "high": self._h, "low": self._l, "close": self._c, "volume": self._v}
        self.time.append(self.start // _NS)
        self.open.append(self._o)
        self.high.append(self._h)
        self.low.append(self._l)
        self.close.append(self._c)
        self.volume.append(self._v)
        self.closed += 1
        self.start = -1
        for indicator, values, inputs in self.indicators:
            values.append(indicator.update(*(candle[name] for name in inputs)))
        return candle

    def seed(self, candles: OHLCV) -> int:
        """Closed candles of the past, taken before the stream has seen any trade (a run's warm-up); returns how many.

        Indicators are updated through them as if they had closed live; no callback and no
        cross fires for them (they are the past, not events). A stream that has seen trades
        already takes none, so history never overlaps or reorders what the run saw itself.
        """
        if self.closed or self.start >= 0:
            return 0
        n = len(candles.time)
        self.time.extend(int(t) for t in candles.time)
        for name, col in zip(("open", "high", "low", "close", "volume"), candles[1:], strict=True):
            getattr(self, name).extend(float(v) for v in col)
        for i in range(n):
            for indicator, values, inputs in self.indicators:
                values.append(indicator.update(*(getattr(self, name)[i] for name in inputs)))
        self.closed = n
        return n

    def series(self, with_open_bucket: bool) -> Series:
        """The closed candles (and the one still open, for a report at the end) as arrays."""
        columns: list[list[Any]] = [self.time, self.open, self.high, self.low, self.close, self.volume]
        if with_open_bucket and self.start >= 0:
            columns = [c + [v] for c, v in zip(columns, (self.start // _NS, self._o, self._h, self._l, self._c, self._v), strict=True)]
        return Series(self.symbol, self.timeframe, np.array(columns[0], dtype=np.int64), *(np.array(c) for c in columns[1:]))


class StreamRuntime(Runtime):
    """Strategy-facing half of the book-and-trade runtimes; subclasses own the venue and feed messages in."""

    def __init__(self, run_id: str, venues: Mapping[str, Mapping[str, StreamMarket]]) -> None:
        """`venues`: exchange -> symbol -> the venue's market (its book, engine and instrument); the first is the run's default."""
        super().__init__(run_id)
        self._now = 0
        self.venues = venues
        self.exchanges = list(venues)
        self.exchange = self.exchanges[0]
        self.venue_markets = venues[self.exchange]  # the first exchange's markets: its candles, indicators and report
        self.started = False
        self.start_ns = 0
        self.end_ns = 0
        self.commands: list[Command] = []  # orders and cancels waiting to be sent (`drain`)
        self._streams: dict[tuple[str, str], CandleStream] = {}
        self._by_symbol: dict[str, list[CandleStream]] = {}
        self._timers: list[tuple[int, int, int, Callable[[], None]]] = []  # (due, seq, period or 0, callback)
        self._timer_seq = 0
        # kind -> (exchange, symbol) -> callbacks
        self._subs: dict[str, dict[tuple[str, str], list[Callable[[dict[str, Any]], None]]]] = {"book": {}, "trades": {}, "ticker": {}}
        self._indicators: list[list[float]] = []
        self._reported: dict[str, CandleStream] = {}  # symbol -> candles the report values holdings at
        self._report_markets: dict[str, Any] | None = None
        self._report_at = -1  # the run's instant `_report_markets` was built at

    # --- the clock --------------------------------------------------------------------------------
    def now_ns(self) -> int:
        return self._now

    def add_timer(self, delay_ns: int, callback: Callable[[], None], repeat: bool) -> None:
        if delay_ns < 0:
            raise InvalidInput("timer_in_past", "at() needs a time after the run's clock")
        self._timer_seq += 1
        heapq.heappush(self._timers, (self._now + delay_ns, self._timer_seq, delay_ns if repeat else 0, callback))

    def _advance(self, ts: int) -> None:
        """Close candles and fire timers due at or before `ts`, in time order (candles first at one instant)."""
        streams = self._streams.values()
        timers = self._timers
        while True:
            close_at = min((s.end for s in streams if s.start >= 0), default=_NEVER)
            timer_at = timers[0][0] if timers else _NEVER
            due = close_at if close_at <= timer_at else timer_at
            if due > ts:
                return
            if due > self._now:
                self._now = due
            if close_at <= timer_at:
                for stream in list(streams):
                    if stream.start >= 0 and stream.end == close_at:
                        self._close(stream)
            else:
                _, _, period, callback = heapq.heappop(timers)
                if period:
                    self._timer_seq += 1
                    heapq.heappush(timers, (due + period, self._timer_seq, period, callback))
                self.hub.record(self._now, "in", "clock.timer", {})
                self.deliver("timer", callback)

    def _close(self, stream: CandleStream) -> None:
        candle = stream.close_bucket()
        if stream.callbacks:
            self.hub.record(self._now, "in", "market.candle", candle)
            for callback in stream.callbacks:
                self.deliver("market.candle", callback, candle)
        for a, b, above, below in stream.crosses:
            if len(a) < 2:
                continue
            a0, a1 = a[-2], a[-1]
            b0, b1 = (b[-2], b[-1]) if isinstance(b, list) else (b, b)
            if math.isnan(a0) or math.isnan(a1) or math.isnan(b0) or math.isnan(b1):
                continue
            if above is not None and a0 <= b0 and a1 > b1:
                direction, on_cross = "above", above
            elif below is not None and a0 >= b0 and a1 < b1:
                direction, on_cross = "below", below
            else:
                continue
            self.hub.record(self._now, "in", "market.cross", {"symbol": stream.symbol, "timeframe": stream.timeframe,
                                                               "direction": direction, "time": candle["time"]})
            self.deliver("market.cross", on_cross)

    # --- market messages ------------------------------------------------------------------------
    def deliver_market(self, message: Message) -> None:
        """Deliver one market message (already applied to the venue's book) at its timestamp."""
        ts = message.ts  # type: ignore[union-attr]
        if ts > self._now:
            self._advance(ts)
            self._now = ts
        exchange, symbol = message.exchange, message.symbol  # type: ignore[union-attr]
        key = (exchange, symbol)
        if isinstance(message, TradeTick):
            market = self.venues.get(exchange, {}).get(symbol)
            if market is None:
                return
            inst = market.instrument
            price = message.price / 10**inst.price_decimals
            size = message.size / 10**inst.size_decimals
            if exchange == self.exchange:
                for stream in self._by_symbol.get(symbol, ()):
                    stream.add(ts, price, size)
            subs = self._subs["trades"].get(key)
            if subs:
                trade = {"exchange": exchange, "symbol": symbol, "time": ts / _NS, "price": price, "size": size, "side": message.aggressor}
                self._to_subscribers("market.trade", subs, trade)
        elif isinstance(message, (BookDelta, BookSnapshot)):
            subs = self._subs["book"].get(key)
            if subs:
                self._to_subscribers("market.book", subs, self._book_view(exchange, symbol))
        elif isinstance(message, BookTicker):
            subs = self._subs["ticker"].get(key)
            if subs:
                inst = self.venues[exchange][symbol].instrument
                ps, ss = 10**inst.price_decimals, 10**inst.size_decimals
                ticker = {"exchange": exchange, "symbol": symbol, "time": ts / _NS, "bid": message.bid / ps,
                          "bid_size": message.bid_size / ss, "ask": message.ask / ps, "ask_size": message.ask_size / ss}
                self._to_subscribers("market.ticker", subs, ticker)

    def _to_subscribers(self, method: str, subs: list[Callable[[dict[str, Any]], None]], payload: dict[str, Any]) -> None:
        self.hub.record(self._now, "in", method, payload)
        for callback in subs:
            self.deliver(method, callback, payload)

    def _book_view(self, exchange: str, symbol: str) -> dict[str, Any]:
        market = self.venues[exchange][symbol]
        inst = market.instrument
        ps, ss = 10**inst.price_decimals, 10**inst.size_decimals
        book = market.engine.book
        return {"exchange": exchange, "symbol": symbol, "time": self._now / _NS,
                "bids": [[p / ps, s / ss] for p, s in book.levels(Side.BUY, _BOOK_LEVELS)],
                "asks": [[p / ps, s / ss] for p, s in book.levels(Side.SELL, _BOOK_LEVELS)]}

    def start_strategy(self, strategy_cls: type[Strategy], params: StrategyParams) -> Strategy:
        """The run starts at the current clock (funds in place): report candles from here on, then `on_start`."""
        self.started = True
        self.start_ns = self._now
        self.balance_points = [(self._now, self.totals())]
        for symbol in self.venue_markets:
            self._reported[symbol] = self._stream(symbol, REPORT_TIMEFRAME)
        return super().start_strategy(strategy_cls, params)

    # --- data the strategy reads ------------------------------------------------------------------
    def _market(self, symbol: str, exchange: str | None = None) -> StreamMarket:
        """A market of one of the run's exchanges (the first when `exchange` is None)."""
        name = self.venue(exchange)
        markets = self.venues[name]
        market = markets.get(symbol)
        if market is None:
            known = ", ".join(sorted(markets)) or "none"
            raise NotFound("unknown_symbol", f"no market {symbol} on {name} (markets: {known})", symbol=symbol)
        return market

    def _stream(self, symbol: str, timeframe: str) -> CandleStream:
        key = (symbol, timeframe)
        stream = self._streams.get(key)
        if stream is None:
            self._market(symbol)
            stream = self._streams[key] = CandleStream(symbol, timeframe)
            self._by_symbol.setdefault(symbol, []).append(stream)
        return stream

    def instrument(self, symbol: str, exchange: str | None = None) -> Instrument | None:
        market = self.venues.get(exchange or self.exchange, {}).get(symbol)
        return None if market is None else market.instrument

    def candles(self, symbol: str, timeframe: str, count: int | None) -> dict[str, np.ndarray]:
        stream = self._stream(symbol, timeframe)
        begin = 0 if count is None else max(0, stream.closed - count)
        out = {"time": np.array(stream.time[begin:], dtype=np.int64)}
        for name in ("open", "high", "low", "close", "volume"):
            out[name] = np.array(getattr(stream, name)[begin:], dtype=np.float64)
        for array in out.values():
            array.flags.writeable = False
        return out

    def last_price(self, symbol: str, exchange: str | None = None) -> float:
        """The book's mid when both sides have orders, else the last trade."""
        market = self._market(symbol, exchange)
        inst = market.instrument
        bid, ask = market.engine.book.best_bid(), market.engine.book.best_ask()
        if bid is not None and ask is not None:
            return float((bid + ask) / 2 / 10**inst.price_decimals)
        if market.last_trade is not None:
            return float(market.last_trade.price / 10**inst.price_decimals)
        raise InvalidInput("no_price_yet", f"no book or trade of {symbol} yet")

    def subscribe_candles(self, symbol: str, timeframe: str, callback: Callable[[dict[str, Any]], None]) -> None:
        self._stream(symbol, timeframe).callbacks.append(callback)

    def subscribe(self, kind: str, symbol: str, callback: Callable[[dict[str, Any]], None], exchange: str) -> None:
        self._market(symbol, exchange)
        self._subs[kind].setdefault((exchange, symbol), []).append(callback)

    def add_indicator(self, kind: Any, symbol: str, timeframe: str, args: tuple[Any, ...], source: str) -> Indicator:
        spec = indicator_spec(kind)
        stream = self._stream(symbol, timeframe)
        inputs = spec.stream.inputs
        if inputs == ("close",):
            if source not in ("open", "high", "low", "close", "volume"):
                raise InvalidInput("invalid_source", f"indicator source must be open, high, low, close or volume, got {source!r}")
            inputs = (source,)
        streaming = spec.stream(*args)
        values: list[float] = []
        for i in range(stream.closed):  # candles closed before it was declared
            values.append(streaming.update(*(getattr(stream, name)[i] for name in inputs)))
        stream.indicators.append((streaming, values, inputs))
        self._indicators.append(values)
        return Indicator(self, spec.stream.name, symbol, timeframe, args, len(self._indicators) - 1)

    def series_needs(self) -> dict[tuple[str, str], int]:
        """(symbol, timeframe) -> candles of history each series wants: its indicators' warm-up, and windows declared by `warm_up`."""
        out: dict[tuple[str, str], int] = {}
        for key, stream in self._streams.items():
            if stream.indicators or stream.callbacks:
                out[key] = max((indicator.warmup for indicator, _, _ in stream.indicators), default=0)
        for key, bars in self.windows.items():
            out[key] = max(bars, out.get(key, 0))
        return out

    def warm_needs(self, strategy: Strategy) -> list[Need]:
        """The history this run's series need now that `strategy.on_start` has run; the strategy's `warmup` replaces the derived figure."""
        out = []
        explicit = getattr(strategy, "warmup", None)
        for (symbol, timeframe), bars in self.series_needs().items():
            override = explicit_bars(explicit, timeframe)
            bars = bars if override is None else override
            if bars > 0:
                out.append(Need(symbol, timeframe, bars))
        return out

    def seed_history(self, symbol: str, timeframe: str, candles: OHLCV) -> int:
        """Put closed candles of the past under one series (see `CandleStream.seed`); returns how many were taken."""
        return self._stream(symbol, timeframe).seed(candles)

    def indicator_value(self, key: int, index: int) -> float:
        values = self._indicators[key]
        return float(values[index]) if len(values) >= -index else math.nan

    def indicator_values(self, key: int) -> np.ndarray:
        view = np.array(self._indicators[key], dtype=np.float64)
        view.flags.writeable = False
        return view

    def add_cross(self, a: Indicator, b: Indicator | float, above: Callable[[], None] | None, below: Callable[[], None] | None) -> None:
        stream = self._streams[(a.symbol, a.timeframe)]
        if isinstance(b, Indicator) and (b.symbol, b.timeframe) != (a.symbol, a.timeframe):
            raise InvalidInput("invalid_condition", "watch_cross compares indicators of the same symbol and timeframe")
        other = self._indicators[b.key] if isinstance(b, Indicator) else float(b)
        stream.crosses.append((self._indicators[a.key], other, above, below))

    # --- orders: queued here, sent by the venue's `drain` -------------------------------------------
    def submit_order(self, side: str, symbol: str, *, exchange: str, size: Any, funds: Any, limit: Any, type: str | None,
                     cancel_after: int, **conditional: Any) -> OrderTicket:
        market = self._market(symbol, exchange)
        args = order_args(market.instrument, side, size=size, funds=funds, limit=limit, type=type, cancel_after=cancel_after,
                          **conditional)
        ticket = self.new_ticket(symbol, side, exchange, args.type._value_)
        self.order_call(self._now, "venue.make_order", {"client_oid": ticket.client_oid, "exchange": exchange, "symbol": symbol,
                                                               **args.view(market.instrument)})
        self.commands.append(("order", ticket, (symbol, args)))
        return ticket

    def cancel_order(self, ticket: OrderTicket) -> None:
        self.order_call(self._now, "venue.cancel_order", {"client_oid": ticket.client_oid})
        if ticket.status == "pending" and ticket.order_id is None:
            self.finish_unsent(ticket, "cancelled", None)  # not sent yet: its command is skipped
            return
        if ticket.status not in ("pending", "untriggered", "triggered", "open"):
            raise InvalidInput("order_done", f"order {ticket.client_oid} is already {ticket.status}")
        self.commands.append(("cancel", ticket, None))

    def take_commands(self) -> list[tuple[str, OrderTicket, Any]]:
        """The commands to send now, in the order the strategy gave them (skipping orders cancelled before sending)."""
        commands, self.commands = self.commands, []
        return [c for c in commands if not (c[0] == "order" and c[1].status != "pending")]

    def refused(self, ticket: OrderTicket, error: Exception) -> None:
        code = getattr(error, "code", type(error).__name__)
        message = getattr(error, "message", str(error))
        self.finish_unsent(ticket, "rejected", f"{code}: {message}")

    def nothing_to_trade(self, ticket: OrderTicket) -> None:
        self.finish_unsent(ticket, "rejected", "nothing to trade: no funds or no liquidity for this order")

    # --- the report ---------------------------------------------------------------------------------
    def report_markets(self) -> dict[str, Any]:
        """Markets as the report reads them: instrument plus the 1-minute candles of the run.

        Built once per instant of the run's clock: a report made while the run goes on (the
        dashboard's live equity) reads the candles so far, one made after its end reads them all.
        """
        if self._report_markets is None or self._report_at != self._now:
            self._report_at = self._now
            out = {}
            for symbol, stream in self._reported.items():
                series = stream.series(with_open_bucket=True)
                if not series.n:  # no trade during the run: its holdings are valued at the book's mid
                    try:
                        price = self.last_price(symbol)
                    except InvalidInput:
                        continue
                    one = np.array([price])
                    series = Series(symbol, REPORT_TIMEFRAME, np.array([self.start_ns // _NS]), one, one, one, one, np.zeros(1))
                out[symbol] = _ReportMarket(self.venue_markets[symbol].instrument, series)
            self._report_markets = out
        return self._report_markets


class _ReportMarket:
    __slots__ = ("instrument", "series")

    def __init__(self, instrument: Instrument, series: Series) -> None:
        self.instrument = instrument
        self.series = series
