"""CandleRecorder: 1-minute and 1-hour candles from the public trades on the bus, written when they close.

Every `trade.<exchange>.<quote>.<base>` message is folded into its minute and its hour
(core.trade_candles.TradeCandles, exact integers at the instrument's precision, learnt from the
feed's `markets.<exchange>` message). A candle is CLOSED when a later bucket of the same
series has started (market time: right for replays at any speed) or when its end is
`grace` seconds behind the clock (wall time: a quiet market still gets its candle written).
Once a second, every closed candle that changed since it was last written goes to the
CandleWriter queue, so the thousands of series that close at the top of a minute reach the
database together, in a few batched transactions. A late trade re-dirties its candle, which
is then written again (the store upserts).

Forming candles stay in memory: `recent()` serves them to chart queries, and `listeners`
hear every change (the live OHLCV stream).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import structlog

from coinwire.bus.base import Bus, Subscription
from coinwire.core.instruments import Instrument
from coinwire.core.rollup import OHLCV
from coinwire.core.trade_candles import TradeCandle, TradeCandles
from coinwire.messages import Markets, Message, TradeTick
from coinwire.services.listening import stop_listening
from coinwire.store.candle_writer import CandleWriter
from coinwire.store.candles import CandleRow

__all__ = ["CandleRecorder", "INTERVALS"]

log = structlog.get_logger("coinwire.candles")

INTERVALS = (60, 3600)
_KEEP = 4  # buckets kept in memory per series: the forming one and a few closed, for late trades
Listener = Callable[[str, str, int, TradeCandle], None]  # exchange, symbol, interval_s, candle


class _Series:
    __slots__ = ("series", "dirty")

    def __init__(self, interval: int) -> None:
        self.series = TradeCandles(interval, keep=_KEEP)
        self.dirty: set[int] = set()  # bucket starts changed since last written


class CandleRecorder:
    """Subscribe with `await start()`; `await close()` writes what has closed and stops."""

    intervals = INTERVALS

    def __init__(
        self, bus: Bus, writer: CandleWriter, *, clock: Callable[[], int] = time.time_ns, grace: float = 2.0, tick: float = 1.0
    ) -> None:
        self.bus = bus
        self.writer = writer
        self.clock = clock
        self.grace = grace
        self.tick = tick
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.series: dict[tuple[str, str, int], _Series] = {}
        self._dirty: set[tuple[str, str, int]] = set()
        self.listeners: list[Listener] = []
        self.trades = 0
        self.unknown_trades = 0  # trades of a symbol whose markets message was never seen
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subs.append(await self.bus.subscribe("markets.>", self._on_message))
        self._subs.append(await self.bus.subscribe("trade.>", self._on_message))
        self._task = asyncio.create_task(self._loop(), name="coinwire-candle-recorder")

    async def close(self) -> None:
        await stop_listening(self._subs, self._task)
        self._task = None
        self.flush_closed()

    async def _on_message(self, subject: str, message: Message) -> None:
        if isinstance(message, TradeTick):
            self.on_trade(message)
        elif isinstance(message, Markets):
            for inst in message.instruments:
                self.instruments[(message.exchange, inst.symbol)] = inst

    def on_trade(self, trade: TradeTick) -> None:
        """Fold one public trade into its minute and hour."""
        if (trade.exchange, trade.symbol) not in self.instruments:
            self.unknown_trades += 1
            return
        self.trades += 1
        for interval in INTERVALS:
            key = (trade.exchange, trade.symbol, interval)
            state = self.series.get(key)
            if state is None:
                state = self.series[key] = _Series(interval)
            candle = state.series.add(trade.ts, trade.price, trade.size)
            if candle is None:
                continue
            state.dirty.add(candle[0])
            self._dirty.add(key)
            for listener in self.listeners:
                listener(trade.exchange, trade.symbol, interval, candle)

    def flush_closed(self) -> int:
        """Queue every closed, changed candle for writing; returns how many rows were queued."""
        now_s = self.clock() // 1_000_000_000
        rows: list[CandleRow] = []
        for key in list(self._dirty):
            state = self.series[key]
            exchange, symbol, interval = key
            newest = next(reversed(state.series.candles))
            inst = self.instruments[(exchange, symbol)]
            for start in sorted(state.dirty):
                if start == newest and start + interval + self.grace > now_s:
                    continue  # still forming
                candle = state.series.candles.get(start)
                state.dirty.discard(start)
                if candle is not None:
                    rows.append(_row(exchange, symbol, interval, inst, candle))
            if not state.dirty:
                self._dirty.discard(key)
        if rows:
            self.writer.put(rows)
        return len(rows)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                self.flush_closed()
            except Exception:  # a bug must not stop candle recording for good
                log.exception("candle flush failed")

    # --- FormingSource (services.ohlcv) ------------------------------------------------------
    def precision(self, exchange: str, symbol: str) -> tuple[int, int] | None:
        inst = self.instruments.get((exchange, symbol))
        return (inst.price_decimals, inst.size_decimals) if inst is not None else None

    def recent(self, exchange: str, symbol: str, interval_s: int) -> OHLCV | None:
        """The candles held in memory for a series (the forming one last), as integer columns."""
        state = self.series.get((exchange, symbol, interval_s))
        if state is None or not state.series.candles:
            return None
        block = np.array([c[:6] for c in state.series.candles.values()], dtype=np.int64)
        return OHLCV(*(np.ascontiguousarray(block[:, i]) for i in range(6)))


def _row(exchange: str, symbol: str, interval: int, inst: Instrument, candle: TradeCandle) -> CandleRow:
    start, o, h, low, c, v, last_s, trades = candle
    return CandleRow(
        exchange=exchange, symbol=symbol, interval_s=interval, open_time=start, close_time=start + interval,
        price_decimals=inst.price_decimals, size_decimals=inst.size_decimals,
        open=o, high=h, low=low, close=c, volume=v, trades=trades, updated_at=last_s * 1_000_000_000,
    )  # fmt: skip
