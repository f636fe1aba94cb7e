"""Portfolio candles of any timeframe in any time zone: stored 15-minute buckets plus the forming one, rolled up.

The same query as the market's (services.ohlcv: `bucket_page` checks the timeframe, zone and
range and pages the buckets, `core.rollup` reduces them), over a portfolio's own 15-minute
candles (store.portfolio_candles) and the tracker's forming candle. Values stay exact
integers at VALUE_DECIMALS through the rollup and leave as Decimals.

Buckets the tracker was down for (status `missing`) are left out before the rollup, like gaps
in market candles: a chart shows a hole, never an invented value; a rolled-up bucket is built
from the 15-minute buckets that were observed (partial ones included). A timeframe must be
made of whole 15-minute buckets in the zone asked (15m, 30m, 1h, 4h, 1d, 1w, 1M, ...):
anything finer answers `invalid_timeframe`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from coinwire.core.errors import InvalidInput
from coinwire.core.portfolio import BUCKET_S, PortfolioCandle, quantize_value, value_from_int
from coinwire.core.rollup import OHLCV, rollup
from coinwire.services.ohlcv import DEFAULT_MAX_POINTS, BucketPage, bucket_page
from coinwire.store import Store
from coinwire.store.portfolio_candles import load_portfolio_candles

__all__ = ["FormingPortfolios", "PortfolioOhlcv", "candle_row"]


class FormingPortfolios(Protocol):
    """The forming candle of each portfolio (services.portfolio_tracker.PortfolioTracker)."""

    def forming(self, scope: str, scope_id: str) -> PortfolioCandle | None: ...


def candle_row(candle: PortfolioCandle) -> list[Any]:
    """A candle as the API answers it: `[t, o, h, l, c, v]`, t the bucket's open (unix s), values exact Decimals."""
    return [candle.open_time, candle.open, candle.high, candle.low, candle.close, candle.volume]


class PortfolioOhlcv:
    """Candles of one portfolio in `timeframe` buckets of a zone, paged at `max_points` buckets."""

    def __init__(self, store: Store, tracker: FormingPortfolios | None, *, max_points: int = DEFAULT_MAX_POINTS,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.tracker = tracker  # None: stored candles only (a process that tracks nothing)
        self.max_points = max_points
        self.clock = clock

    def page(self, timeframe: object, tz: object, start: object = None, end: object = None) -> BucketPage:
        """The checked, paged buckets of a query (errors as the market route's), made of whole 15-minute buckets."""
        page = bucket_page(timeframe, tz, start, end, self.max_points, self.clock())
        fixed = page.tf.utc_seconds
        if (fixed is not None and fixed % BUCKET_S) or bool((page.buckets % BUCKET_S).any()):
            raise InvalidInput("invalid_timeframe", f"portfolio candles are made of 15-minute buckets: {page.tf} in {page.tz} "
                               "does not fit them; use 15m, 1h, 4h, 1d, 1w or 1M", timeframe=str(page.tf))
        return page

    async def candles(self, scope: str, scope_id: str, currency: str, page: BucketPage) -> list[list[Any]]:
        """The page's candles `[[t, o, h, l, c, v], ...]` (values Decimal): stored ones, the forming one last."""
        if len(page.buckets) < 2:
            return []
        lo, hi = int(page.buckets[0]), int(page.buckets[-1])
        base = await self.base(scope, scope_id, currency, lo, hi)
        if not len(base.time):
            return []
        rolled = rollup(base, page.buckets[:-1], hi)
        return [[int(t), *(value_from_int(int(x)) for x in values)] for t, *values in zip(*rolled, strict=True)]

    async def base(self, scope: str, scope_id: str, currency: str, lo: int, hi: int) -> OHLCV:
        """The 15-minute candles opening in [lo, hi) as int64 columns: observed stored ones, then the forming one."""
        stored = await load_portfolio_candles(self.store, scope, scope_id, currency, lo, hi)
        if stored is None:
            columns = [np.empty(0, np.int64) for _ in OHLCV._fields]
        else:
            seen = np.asarray(stored.statuses) != "missing"
            columns = [np.asarray(col, dtype=np.int64)[seen] for col in stored.candles]
        forming = self.tracker.forming(scope, scope_id) if self.tracker is not None else None
        if forming is not None and lo <= forming.open_time < hi:
            keep = columns[0] < forming.open_time  # the forming bucket is newer than anything stored for it
            row = [forming.open_time, *(quantize_value(v) for v in (forming.open, forming.high, forming.low, forming.close,
                                                                      forming.volume))]
            columns = [np.r_[col[keep], np.int64(x)] for col, x in zip(columns, row, strict=True)]
        return OHLCV(*columns)

