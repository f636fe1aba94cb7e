"""Trade candles: exact integer OHLCV rows built from public trades, per fixed bucket (rollups to coarser buckets: core.rollup).

Buckets are aligned to the epoch (UTC). A bucket with no trade is absent, never invented.
The candle concepts, one a layer: these (core, the live rows the market data service keeps
and the history importer builds from captured trades), store.candles.CandleRow (a stored
row), history.Candles (a validated float series of a candle file or the history store) and
engine.backtest.Series (the engine's series: float arrays with close instants for a clock).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["TradeCandle", "TradeCandles"]

TradeCandle = list[int]  # [bucket_start_s, open, high, low, close, volume, last_update_s, trades]


class TradeCandles:
    """Candles of one symbol at `seconds` resolution, keeping the newest `keep` buckets."""

    __slots__ = ("seconds", "keep", "candles")

    def __init__(self, seconds: int = 60, keep: int = 10_080) -> None:
        self.seconds = seconds
        self.keep = keep
        self.candles: OrderedDict[int, TradeCandle] = OrderedDict()

    def add(self, ts_ns: int, price: int, size: int) -> TradeCandle | None:
        """Fold a trade into its bucket; returns that candle, or None for a trade too late to count."""
        now_s = ts_ns // 1_000_000_000
        start = now_s - now_s % self.seconds
        candle = self.candles.get(start)
        if candle is None:
            if self.candles and start < next(reversed(self.candles)):
                return None  # late trade for a bucket already closed and possibly trimmed; ignore
            candle = self.candles[start] = [start, price, price, price, price, size, now_s, 1]
            while len(self.candles) > self.keep:
                self.candles.popitem(last=False)
            return candle
        if price > candle[2]:
            candle[2] = price
        if price < candle[3]:
            candle[3] = price
        if now_s >= candle[6]:  # a late trade (older than the newest seen) never becomes the close
            candle[4] = price
            candle[6] = now_s
        candle[5] += size
        candle[7] += 1
        return candle

    def between(self, start_s: int | None, end_s: int | None, received_before: int | None = None) -> list[TradeCandle]:
        out = []
        for bucket, candle in self.candles.items():
            if start_s is not None and bucket < start_s:
                continue
            if end_s is not None and bucket > end_s:
                continue
            if received_before is not None and candle[6] >= received_before:
                continue
            out.append(candle)
        return out
