"""Trade-built candles: exact OHLCV per fixed bucket, and rollups to coarser buckets.

Buckets are aligned to the epoch (UTC). A bucket with no trade is absent, never invented.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["Candle", "CandleSeries", "rollup"]

Candle = list[int]  # [bucket_start_s, open, high, low, close, volume, last_update_s]


class CandleSeries:
    """Candles of one symbol at `seconds` resolution, keeping the newest `keep` buckets."""

    __slots__ = ("seconds", "keep", "candles")

    def __init__(self, seconds: int = 60, keep: int = 10_080) -> None:
        self.seconds = seconds
        self.keep = keep
        self.candles: OrderedDict[int, Candle] = OrderedDict()

    def add(self, ts_ns: int, price: int, size: int) -> None:
        now_s = ts_ns // 1_000_000_000
        start = now_s - now_s % self.seconds
        candle = self.candles.get(start)
        if candle is None:
            if self.candles and start < next(reversed(self.candles)):
                return  # late trade for a bucket already closed and possibly trimmed; ignore
            self.candles[start] = [start, price, price, price, price, size, now_s]
            while len(self.candles) > self.keep:
                self.candles.popitem(last=False)
            return
        if price > candle[2]:
            candle[2] = price
        if price < candle[3]:
            candle[3] = price
        candle[4] = price
        candle[5] += size
        candle[6] = now_s

    def between(self, start_s: int | None, end_s: int | None, received_before: int | None = None) -> list[Candle]:
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


def rollup(candles: list[Candle], seconds: int) -> list[Candle]:
    """Merge consecutive candles into `seconds` buckets: first open, extremes, last close, summed volume."""
    out: list[Candle] = []
    for c in candles:
        start = c[0] - c[0] % seconds
        if out and out[-1][0] == start:
            agg = out[-1]
            agg[2] = max(agg[2], c[2])
            agg[3] = min(agg[3], c[3])
            agg[4] = c[4]
            agg[5] += c[5]
            agg[6] = max(agg[6], c[6])
        else:
            out.append([start, c[1], c[2], c[3], c[4], c[5], c[6]])
    return out
