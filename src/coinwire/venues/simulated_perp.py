"""Perpetuals at the simulated venues: mark prices, the funding series and liquidation checks a backtest drives.

A candle backtest of a perpetual has three recorded series (freqtrade's futures layout): the
trade candles orders fill against, the mark-price candles, and the funding rates. This module
holds the last two for one market (`PerpFeed`) and answers what the venue needs from them:

- `mark_at(ts)`: the mark when something happens at `ts` (an order reaching the venue, a
  funding time): the close of the last mark candle closed at or before `ts`, else the open of
  the mark candle `ts` falls in; where the mark candles do not cover `ts` (none, or a file
  that ends before the trades), the trade candles' (the price itself).
- `funding_due(start, end)`: the funding times inside the run with their recorded rates. A
  missing rate is reported (the data's gaps; `funding_gaps` for a recording without any),
  never invented: nothing is paid at a gap.
- `first_breach(...)`: the first mark candle from a bar on whose worst price for the position
  (its low for a long, its high for a short) reaches a liquidation price, found with NumPy;
  that is where the venue tests the position against core's liquidation rule.

Positions, margin, funding payments and liquidations themselves are core's
(`core.perp_execution`), the one path every venue takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from coinwire.core.margin import funding_times

__all__ = ["PerpFeed", "funding_gaps"]

_NS = 1_000_000_000


def funding_gaps(times_ns: Sequence[int], interval_s: int, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """The funding times in [start, end) the interval expects and `times_ns` lacks, as (first missing, last missing) ranges."""
    present = set(times_ns)
    gaps: list[tuple[int, int]] = []
    for ts in funding_times(interval_s, start_ns, end_ns):
        if ts in present:
            continue
        if gaps and gaps[-1][1] == ts - interval_s * _NS:
            gaps[-1] = (gaps[-1][0], ts)
        else:
            gaps.append((ts, ts))
    return gaps


class PerpFeed:
    """A perpetual market's mark candles (an engine.backtest.Series, or None) and funding rates (ns, 1e-8) for the venue."""

    __slots__ = ("mark", "funding", "price_scale", "_units")

    def __init__(self, mark: Any | None, funding: Sequence[tuple[int, int]], price_decimals: int) -> None:
        self.mark = mark
        self.funding = sorted(funding)
        self.price_scale: int = 10**price_decimals
        self._units: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def price_units(self, value: float) -> int:
        return round(float(value) * self.price_scale)

    def _covering(self, ts: int, fallback: Any) -> Any:
        """The mark candles when they cover `ts` (from their first open to their last close), else the trade candles."""
        s = self.mark
        if s is not None and s.n and int(s.time_ns[0]) <= ts <= int(s.close_ns[-1]):
            return s
        return fallback

    def mark_at(self, ts: int, fallback: Any) -> int:
        """The mark price at `ts` in price units, from the mark candles (or `fallback`, the trade candles, where they do not cover
        `ts`: a mark file that ends before the trades is never held at its last price)."""
        s = self._covering(ts, fallback)
        i = int(s.close_ns.searchsorted(ts, "right")) - 1
        if i >= 0:
            return self.price_units(s.close[i])
        return self.price_units(s.open[0])

    def funding_due(self, start_ns: int, end_ns: int) -> list[tuple[int, int]]:
        """(ts, rate) of every recorded funding time in [start, end)."""
        return [(ts, rate) for ts, rate in self.funding if start_ns <= ts < end_ns]

    def first_breach(self, fallback: Any, from_ns: int, long: bool, price: int) -> tuple[int, int, int] | None:
        """(open ns, close ns, worst price in units) of the first candle closing after `from_ns` whose worst price for a long
        (its low) or a short (its high) reaches `price`: the mark candles where they cover the time, the trade candles elsewhere."""
        mark = self.mark if self.mark is not None and self.mark.n else None
        spans: list[tuple[Any, int, int]] = []  # (series, from ns, until ns): where each one stands for the mark
        if mark is None:
            spans.append((fallback, from_ns, 2**63 - 1))
        else:
            first, last = int(mark.time_ns[0]), int(mark.close_ns[-1])
            if from_ns < first:
                spans.append((fallback, from_ns, first))
            spans.append((mark, max(from_ns, first), last))
            spans.append((fallback, max(from_ns, last), 2**63 - 1))
        for s, start, until in spans:
            found = self._breach(s, start, until, long, price)
            if found is not None:
                return found
        return None

    def _breach(self, s: Any, start: int, until: int, long: bool, price: int) -> tuple[int, int, int] | None:
        low, high = self._extremes(s)
        first = int(s.close_ns.searchsorted(start, "right"))
        stop = int(s.time_ns.searchsorted(until, "left"))
        column = low[first:stop] if long else high[first:stop]
        found = np.flatnonzero(column <= price if long else column >= price)
        if not len(found):
            return None
        k = first + int(found[0])
        return int(s.time_ns[k]), int(s.close_ns[k]), int(column[found[0]])

    def _extremes(self, s: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lows and highs of `s` in price units, made once per series."""
        key = id(s)
        cached = self._units.get(key)
        if cached is None:
            cached = self._units[key] = (np.round(s.low * self.price_scale).astype(np.int64),
                                         np.round(s.high * self.price_scale).astype(np.int64))
        return cached
