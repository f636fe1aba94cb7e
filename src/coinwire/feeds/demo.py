"""A seeded synthetic market: books, trades and tickers that look real and replay identically.

`DemoMarket` is the pure generator: given its seed it produces the same messages for
tick n every time (timestamps are passed in). `DemoFeed` wraps it for the event loop:
it supplies wall-clock time, sleeps between ticks and serves the current books as a
`SnapshotSource`. The default feed needs nothing installed and no network.

Each tick, per symbol: a few trades take liquidity at the best levels of the book the
consumer holds, the mid takes a random-walk step, the touch is re-anchored around it,
a handful of levels change size, far levels keep each side at its depth; all level
changes go out as one `BookDelta` whose update ids chain to the previous one, then a
`BookTicker` with the new best bid/ask.

Its past (`DemoMarket.candles`): one-minute candles before the market's first tick come from
a backward random walk of the same volatility, seeded by the same seed, exchange and symbol and
ending at the start price, so a run's warm-up on the demo feed is the same every time; candles
since the first tick are those of the trades it produced.

Perpetual markets (`BTC/USDT:USDT`, `ETH/USDT:USDT`: a symbol with a settle currency) walk like
the spot ones and also send a `MarkPrice` every tick: the mark is the mid, and the funding rate
walks around Binance's 0.01% (never beyond +-0.05%) on its own seeded generator, so spot markets
replay as before. Funding is due every `funding_interval_s` of the instrument (8 hours, as on
Binance), compressed by `funding_speedup` for the demo (60 by default: every 8 minutes); the
next funding time goes out with each mark.

Two demo exchanges with different names walk independently (the exchange name is part of
each symbol's seed), and `premium_bp` starts one exchange's prices that many basis points
above (or, negative, below) the usual start: the same market quoted at different prices on
two venues, which is what a cross-exchange strategy looks for.

An `epoch` (unix seconds) makes the market one that every process can watch: tick n is due at
`epoch + n * interval` and stamped with exactly that time, and a feed started later first steps
the market silently through the ticks already due (tick n is the same for the same seed), then
publishes its books and goes on live. Two processes with the same seed, symbols, interval and
epoch publish the same messages at the same times, as two clients of one exchange see it; a
recording made in one backtests as a paper run in the other traded. The catch-up is bounded
(config.MAX_CATCH_UP steps of one market, ~15 s) so a stale epoch is refused rather than stalling a start.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import zlib
from collections.abc import Callable, Iterable
from itertools import takewhile
from typing import Any

import numpy as np

from coinwire.config import MAX_PREMIUM_BP, demo_ticks_due
from coinwire.core.book import L2Book
from coinwire.core.instruments import PERPETUAL, Instrument
from coinwire.core.orders import Side
from coinwire.core.rollup import OHLCV
from coinwire.feeds.base import Publish, subject_for
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, Markets, MarkPrice, Message, TradeTick, subject
from coinwire.venues.brackets import perpetual_fields

__all__ = ["DemoMarket", "DemoFeed", "demo_instrument", "DEFAULT_SYMBOLS", "PERPETUAL_SYMBOLS", "MAX_PREMIUM_BP",
           "FUNDING_SPEEDUP"]

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
PERPETUAL_SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT")  # what a demo exchange configured with them trades
FUNDING_SPEEDUP = 60  # the demo's funding schedule runs this much faster than the instrument's (8 h -> 8 min)
_FUNDING_INTERVAL_S = 28_800  # Binance's 8 hours
_FUNDING_BASE, _FUNDING_STEP, _FUNDING_CAP = 10_000, 500, 50_000  # 0.01%, its walk per tick, +-0.05% (1e-8 units)
_PERP_FEES = (20_000, 50_000)  # Binance USD-M maker 0.02%, taker 0.05%
_LIQUIDATION_FEE = 500_000  # 0.5% of the liquidated notional (the clearance fee)
# symbol -> (start price in whole quote units, size decimals); prices have 2 decimals, tick 0.01
_PROFILES: dict[str, tuple[int, int]] = {"BTC/USDT": (60_000, 5), "ETH/USDT": (3_000, 4), "SOL/USDT": (150, 3),
                                         "BTC/GBP": (47_000, 8)}  # kripto's market, when configured
_DEFAULT_PROFILE = (100, 3)
_PRICE_DECIMALS = 2
_VOL_PER_TICK = 0.5e-4  # mid moves ~0.5 bp per tick (about 55% a year at 4 ticks a second)
_SPACING = 1.5e-5  # mean gap between levels, as a fraction of the price
_TOUCH_NOTIONAL = 2_000  # quote units resting at the best level, on average
_GROWTH = 0.04  # each level further from the mid holds 4% more
_MAX_FILL = 6  # levels added between the old and new touch when the mid jumps

_CATCH_UP_SLICE = 2_000  # ticks stepped between two yields to the event loop while catching up

_SetLevel = Callable[[int, int], None]


def _profile(symbol: str) -> tuple[int, int]:
    """A market's start price and size decimals: a perpetual's are its spot market's."""
    return _PROFILES.get(symbol.partition(":")[0], _DEFAULT_PROFILE)


def demo_instrument(exchange: str, symbol: str) -> Instrument:
    """The demo market for `symbol`: tick 0.01, a step suited to its price, 0.1% fees.

    A perpetual (`BTC/USDT:USDT`): linear, settled in USDT, one contract one base unit, Binance's
    USD-M fees and published leverage brackets of the same symbol, 8-hour funding.
    """
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    size_decimals = _profile(symbol)[1]
    if settle:
        maker, taker = _PERP_FEES
        published: dict[str, Any] = {"funding_interval_s": _FUNDING_INTERVAL_S, "liquidation_fee": _LIQUIDATION_FEE}
        published |= perpetual_fields("binanceusdm", symbol)  # Binance's tiers and clearance fee where shipped
        return Instrument(
            exchange=exchange, symbol=symbol, base=base, quote=quote, price_decimals=_PRICE_DECIMALS,
            size_decimals=size_decimals, min_size=1, min_notional=5 * 10**18, maker_fee=maker, taker_fee=taker,
            kind=PERPETUAL, settle=settle, **published,
        )
    return Instrument(
        exchange=exchange,
        symbol=symbol,
        base=base,
        quote=quote,
        price_decimals=_PRICE_DECIMALS,
        size_decimals=size_decimals,
        min_size=1,
        min_notional=5 * 10**18,
        maker_fee=100_000,
        taker_fee=100_000,
    )


class _Symbol:
    """One symbol's generator state."""

    __slots__ = ("instrument", "rng", "book", "update_id", "trade_id", "mid", "spacing", "touch_size", "start_mid", "past_seed",
                 "minutes", "funding_rng", "funding_rate")

    def __init__(self, instrument: Instrument, seed: int, levels: int, premium_bp: float = 0.0) -> None:
        self.instrument = instrument
        self.rng = random.Random(f"{seed}:{instrument.exchange}:{instrument.symbol}")
        # a perpetual's funding walks on a generator of its own: the book's draws stay the spot market's
        self.funding_rng = random.Random(f"{seed}:{instrument.exchange}:{instrument.symbol}:funding")
        self.funding_rate = _FUNDING_BASE
        start = _profile(instrument.symbol)[0]
        self.mid = round(start * 10**instrument.price_decimals * (1 + premium_bp / 10_000))
        self.start_mid = self.mid
        self.past_seed = zlib.crc32(f"{seed}:{instrument.exchange}:{instrument.symbol}:past".encode())
        self.minutes: dict[int, list[float]] = {}  # minute start (unix s) -> [open, high, low, close, volume] of its trades
        self.spacing = max(1, round(self.mid * _SPACING))  # mean level gap in ticks
        self.touch_size: int = max(1, _TOUCH_NOTIONAL * 10**instrument.size_decimals // start)
        self.book = L2Book()
        self.update_id = 1
        self.trade_id = 0
        bid = self.mid - 1
        ask = bid + 1
        for i in range(levels):
            self.book.set_bid(bid, self.size(i))
            self.book.set_ask(ask, self.size(i))
            bid -= self.gap()
            ask += self.gap()

    def gap(self) -> int:
        return self.rng.randint(1, 2 * self.spacing - 1)

    def size(self, distance: int) -> int:
        """A level size that grows with its distance (in levels) from the touch."""
        scale = self.touch_size * (1.0 + _GROWTH * distance) * self.rng.uniform(0.4, 1.6)
        return max(1, round(scale))


class DemoMarket:
    """Deterministic synthetic books for several symbols; `step(ts)` produces one tick.

    `premium_bp`: start prices this many basis points above the usual ones (below when negative).
    """

    def __init__(
        self, exchange: str = "demo", symbols: Iterable[str] = DEFAULT_SYMBOLS, seed: int = 7, levels: int = 150,
        premium_bp: float = 0.0, tick_seconds: float = 0.25, funding_speedup: int = FUNDING_SPEEDUP,
    ) -> None:
        """`tick_seconds`: the time between two ticks, which sets how far the past's minutes walk.

        `funding_speedup`: perpetuals' funding comes this many times more often than their instrument's interval.
        """
        if funding_speedup < 1:
            raise ValueError("funding_speedup must be a positive integer")
        if levels < 2:
            raise ValueError("a demo book needs at least 2 levels a side")
        if not -MAX_PREMIUM_BP <= premium_bp <= MAX_PREMIUM_BP:
            raise ValueError(f"a demo premium is between -{MAX_PREMIUM_BP} and {MAX_PREMIUM_BP} basis points, got {premium_bp}")
        self.exchange = exchange
        self.levels = levels
        self.funding_speedup = funding_speedup
        self.ticks = 0
        self.ts = 0
        self.origin: int | None = None  # unix s of the first tick (or stamped snapshot): where the past ends
        self._minute_vol = _VOL_PER_TICK * math.sqrt(60 / max(tick_seconds, 0.001))
        self._symbols = {s: _Symbol(demo_instrument(exchange, s), seed, levels, premium_bp) for s in symbols}

    def instruments(self) -> list[Instrument]:
        return [state.instrument for state in self._symbols.values()]

    def book(self, symbol: str) -> L2Book:
        """The generator's own book for `symbol` (read it, do not change it)."""
        return self._symbols[symbol].book

    def snapshot(self, symbol: str, ts: int | None = None) -> BookSnapshot:
        """The full current book of `symbol` (stamped with the last tick's time by default)."""
        state = self._symbols[symbol]
        book = state.book
        if ts is not None and self.origin is None:
            self.origin = ts // 1_000_000_000
        return BookSnapshot(
            self.exchange,
            symbol,
            self.ts if ts is None else ts,
            state.update_id,
            book.levels(Side.BUY),
            book.levels(Side.SELL),
        )

    def step(self, ts: int) -> list[Message]:
        """The next tick for every symbol: trades, one delta, one ticker each."""
        self.ticks += 1
        self.ts = ts
        if self.origin is None:
            self.origin = ts // 1_000_000_000
        out: list[Message] = []
        for symbol, state in self._symbols.items():
            self._step_symbol(symbol, state, ts, out)
        return out

    # --- one symbol -------------------------------------------------------------------------
    def _step_symbol(self, symbol: str, state: _Symbol, ts: int, out: list[Message]) -> None:
        rng = state.rng
        book = state.book
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}

        def set_bid(price: int, size: int) -> None:
            book.set_bid(price, size)
            bids[price] = size

        def set_ask(price: int, size: int) -> None:
            book.set_ask(price, size)
            asks[price] = size

        # 1. trades take liquidity at the touch the consumer currently sees
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            sell = rng.random() < 0.5
            price = book.best_bid() if sell else book.best_ask()
            if price is None:
                break
            resting = (book.bids if sell else book.asks)[price]
            taken = resting if rng.random() < 0.2 else max(1, round(resting * rng.uniform(0.02, 0.5)))
            state.trade_id += 1
            out.append(TradeTick(self.exchange, symbol, ts, str(state.trade_id), price, taken, "sell" if sell else "buy"))
            self._record(state, ts, price, taken)
            (set_bid if sell else set_ask)(price, resting - taken)

        # 2. the mid takes a random-walk step; 3. the touch follows it
        state.mid = max(10 * self.levels, state.mid + round(rng.gauss(0.0, state.mid * _VOL_PER_TICK)))
        spread = rng.choice((1, 1, 1, 2, 3))
        new_bid = state.mid - (spread + 1) // 2
        new_ask = new_bid + spread
        for price in list(takewhile(lambda p: p > new_bid, book.iter_prices(Side.BUY))):
            set_bid(price, 0)
        for price in list(takewhile(lambda p: p < new_ask, book.iter_prices(Side.SELL))):
            set_ask(price, 0)
        self._fill_touch(state, book.best_bid(), new_bid, -1, set_bid)
        self._fill_touch(state, book.best_ask(), new_ask, 1, set_ask)

        # 4. a handful of resting levels change size
        for _ in range(rng.randint(2, 6)):
            sell = rng.random() < 0.5
            prices = book.prices(Side.SELL if sell else Side.BUY)
            index = min(len(prices) - 1, int(rng.expovariate(1 / 8)))
            price = prices[index]
            size = state.size(index)
            (set_ask if sell else set_bid)(price, size)

        # 5. far levels keep each side at its depth
        self._trim(state, Side.BUY, set_bid)
        self._trim(state, Side.SELL, set_ask)

        first = state.update_id + 1
        state.update_id += max(1, len(bids) + len(asks))
        out.append(
            BookDelta(self.exchange, symbol, ts, first, state.update_id, sorted(bids.items()), sorted(asks.items()))
        )
        (bid, bid_size), (ask, ask_size) = book.levels(Side.BUY, 1)[0], book.levels(Side.SELL, 1)[0]
        out.append(BookTicker(self.exchange, symbol, ts, state.update_id, bid, bid_size, ask, ask_size))
        if state.instrument.kind == PERPETUAL:
            out.append(self._mark(state, ts, (bid + ask) // 2))

    def funding_period_ns(self, instrument: Instrument) -> int:
        """The demo's time between two funding times of a perpetual: its interval, compressed."""
        return max(1, instrument.funding_interval_s * 1_000_000_000 // self.funding_speedup)

    def _mark(self, state: _Symbol, ts: int, mid: int) -> MarkPrice:
        """The perpetual's mark (the mid) and the funding rate of its next funding time, which walks a little each tick."""
        rng = state.funding_rng
        step = rng.randint(-_FUNDING_STEP, _FUNDING_STEP) + (_FUNDING_BASE - state.funding_rate) // 50  # pulled back to 0.01%
        state.funding_rate = max(-_FUNDING_CAP, min(_FUNDING_CAP, state.funding_rate + step))
        period = self.funding_period_ns(state.instrument)
        return MarkPrice(self.exchange, state.instrument.symbol, ts, mid, state.funding_rate, (ts // period + 1) * period)

    @staticmethod
    def _record(state: _Symbol, ts: int, price: int, size: int) -> None:
        """The trade in its minute's candle (the market's own history since its first tick)."""
        inst = state.instrument
        p, q = price / 10**inst.price_decimals, size / 10**inst.size_decimals
        minute = ts // 1_000_000_000 // 60 * 60
        row = state.minutes.get(minute)
        if row is None:
            state.minutes[minute] = [p, p, p, p, q]
        else:
            row[1], row[2], row[3], row[4] = max(row[1], p), min(row[2], p), p, row[4] + q

    def candles(self, symbol: str, start: int, end: int) -> OHLCV:
        """One-minute candles of `symbol` starting in [start, end) (unix s), oldest first, prices in quote units.

        Before the first tick: the past, a backward walk from the start price (same for the same
        seed, exchange and symbol, whatever the range asked: minute k before the start is drawn
        from its own day's generator). Since: the minutes in which the market traded.
        """
        state = self._symbols[symbol]
        origin = (self.origin if self.origin is not None else end) // 60 * 60
        start, end = start // 60 * 60, -(-end // 60) * 60
        rows: list[tuple[float, ...]] = []
        if start < origin:
            rows.extend(self._past(state, origin, start, min(end, origin)))
        rows.extend((float(t), *state.minutes[t]) for t in sorted(state.minutes) if max(start, origin) <= t < end)
        if not rows:
            return OHLCV(np.empty(0, np.int64), *(np.empty(0, np.float64) for _ in range(5)))
        block = np.array(rows, dtype=np.float64)
        return OHLCV(block[:, 0].astype(np.int64), *(block[:, i] for i in range(1, 6)))

    def _past(self, state: _Symbol, origin: int, start: int, end: int) -> list[tuple[float, ...]]:
        """Minutes in [start, end) before `origin`: minute k before it (k = 1, 2, ...) closes at price(origin - 60 (k - 1))."""
        deepest = (origin - start) // 60
        days = -(-deepest // 1440)
        steps = np.concatenate([np.random.default_rng([state.past_seed, day]).standard_normal((1440, 4)) for day in range(days)])
        vol = self._minute_vol
        inst = state.instrument
        tick = 10.0**-inst.price_decimals
        # closes[k] is the price at origin - 60 k; walking back divides by each minute's move
        log_moves = np.concatenate([[0.0], np.cumsum(steps[:deepest, 0] * vol)])
        closes = state.start_mid * tick * np.exp(-log_moves)
        k = np.arange(deepest, 0, -1)  # oldest first
        t = origin - 60 * k
        keep = (t >= start) & (t < end)
        k, t = k[keep], t[keep]
        close, opened, z = closes[k - 1], closes[k], steps[k - 1]
        high = np.maximum(opened, close) * (1 + np.abs(z[:, 1]) * vol / 2)
        low = np.minimum(opened, close) * (1 - np.abs(z[:, 2]) * vol / 2)
        volume = np.round(np.abs(z[:, 3]) * _TOUCH_NOTIONAL / close * 4, inst.size_decimals) + 10.0**-inst.size_decimals
        d = inst.price_decimals
        columns = (t.astype(np.float64), np.round(opened, d), np.round(high, d), np.round(low, d), np.round(close, d), volume)
        return [tuple(float(v) for v in row) for row in zip(*columns, strict=True)]

    @staticmethod
    def _fill_touch(state: _Symbol, best: int | None, target: int, away: int, set_level: _SetLevel) -> None:
        """Put a level at `target` and a few between it and the old best (`away` = -1 bids, +1 asks)."""
        if best is not None and (target - best) * away >= 0:
            return  # the touch is already at or inside the target
        price = target
        for distance in range(_MAX_FILL):
            if best is not None and (price - best) * away >= 0:
                break
            set_level(price, state.size(distance))
            price += away * state.gap()

    def _trim(self, state: _Symbol, side: Side, set_level: _SetLevel) -> None:
        """Drop levels beyond the depth and add far ones until the side is full again."""
        book = state.book
        away = -1 if side is Side.BUY else 1
        depth = book.depth(side)
        if depth > self.levels:
            for price in book.prices(side)[self.levels :]:
                set_level(price, 0)
        while book.depth(side) < self.levels:
            price = book.prices(side)[-1] + away * state.gap()
            if price <= 0:
                break
            set_level(price, state.size(book.depth(side)))


class DemoFeed:
    """The demo market on the event loop: a tick every `interval` seconds, stamped with wall time.

    `epoch` (unix seconds): tick n is due at `epoch + n * interval` and stamped with that time, and
    the feed catches up silently with the ticks due before it publishes (see the module docstring).
    """

    name = "demo"

    def __init__(
        self,
        exchange: str = "demo",
        symbols: Iterable[str] = DEFAULT_SYMBOLS,
        seed: int = 7,
        interval: float = 0.25,
        levels: int = 150,
        premium_bp: float = 0.0,
        funding_speedup: int = FUNDING_SPEEDUP,
        epoch: int | None = None,
    ) -> None:
        if interval < 0:
            raise ValueError("interval must be >= 0 seconds")
        if epoch is not None and (interval <= 0 or epoch < 0):
            raise ValueError("a demo epoch needs an interval above 0 and unix seconds >= 0")
        self.exchange = exchange
        self.interval = interval
        self.epoch = epoch
        self.market = DemoMarket(exchange, symbols, seed, levels, premium_bp, tick_seconds=interval or 0.25,
                                 funding_speedup=funding_speedup)
        self._interval_ns = round(interval * 1_000_000_000)
        self._closed = False
        if epoch is not None:
            self.market.origin = epoch  # the past ends at the epoch in every process, whenever each started
            self.due(time.time_ns())  # a stale epoch is refused where the feed is built, not when it first runs

    def instruments(self) -> list[Instrument]:
        return self.market.instruments()

    def snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        """The current book (None for a market this feed does not serve)."""
        if exchange != self.exchange or symbol not in {i.symbol for i in self.market.instruments()}:
            return None
        return self.market.snapshot(symbol)

    def tick_time(self, n: int) -> int:
        """When tick n of a feed with an epoch is due, unix ns: what it is stamped with."""
        assert self.epoch is not None
        return self.epoch * 1_000_000_000 + n * self._interval_ns

    def due(self, now: int) -> int:
        """How many ticks of the epoch's market are due at `now` (unix ns); ConfigError (a ValueError) when catching up
        would take too long."""
        assert self.epoch is not None
        return demo_ticks_due(self.exchange, self.epoch, self.interval, len(self.market.instruments()), self.market.ticks, now)

    async def _catch_up(self) -> None:
        """Step the market silently through the ticks due since the epoch, yielding to the loop now and then."""
        market = self.market
        while (target := self.due(time.time_ns())) > market.ticks:
            for _ in range(min(target - market.ticks, _CATCH_UP_SLICE)):
                market.step(self.tick_time(market.ticks + 1))
            await asyncio.sleep(0)

    async def run(self, publish: Publish) -> None:
        """Publish `Markets`, a snapshot per symbol, then ticks on a fixed schedule until closed."""
        self._closed = False
        market = self.market
        await publish(subject("markets", self.exchange), Markets(self.exchange, market.instruments()))
        if self.epoch is not None:
            await self._catch_up()
        now = time.time_ns() if self.epoch is None else self.tick_time(market.ticks)
        for instrument in market.instruments():
            snapshot = market.snapshot(instrument.symbol, now)
            await publish(subject_for(snapshot), snapshot)
        if self.epoch is not None:
            await self._run_on_epoch(publish)
            return
        clock = asyncio.get_running_loop().time
        due = clock()
        while not self._closed:
            due += self.interval
            await asyncio.sleep(max(0.0, due - clock()))
            if self._closed:
                return
            for message in market.step(time.time_ns()):
                await publish(subject_for(message), message)

    async def _run_on_epoch(self, publish: Publish) -> None:
        """Each next tick at its due time on the wall clock, stamped with that time."""
        market = self.market
        while not self._closed:
            ts = self.tick_time(market.ticks + 1)
            await asyncio.sleep(max(0.0, (ts - time.time_ns()) / 1e9))
            if self._closed:
                return
            for message in market.step(ts):
                await publish(subject_for(message), message)

    async def close(self) -> None:
        """Stop before the next tick."""
        self._closed = True
