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

A year of one portfolio is 35,040 rows: read from the store each time, the row fetch alone
passes the 50 ms a chart may take. So each portfolio's stored candles stay in memory once read
(the least recently read leave beyond CACHE_ROWS rows): each query reads only the newest rows
(a bucket that just closed, a restart's marks) and, every RECHECK_S seconds, the rows written
since (by their `updated_at`: an import's rewrite of older buckets).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.portfolio import BUCKET_S, STATUSES, PortfolioCandle, quantize_value, value_from_int
from coinwire.core.rollup import OHLCV, rollup
from coinwire.services.ohlcv import DEFAULT_MAX_POINTS, BucketPage, bucket_page
from coinwire.store import Store
from coinwire.store.portfolio_candles import read_portfolio_candles

__all__ = ["CACHE_ROWS", "RECHECK_S", "FormingPortfolios", "PortfolioOhlcv"]

RECHECK_S = 60  # seconds between passes over every row of a portfolio held in memory (an older bucket rewritten shows by then)
WRITE_DELAY_S = 300  # rows stamped up to this long before they are committed (the batched writer's queue and retries)
CACHE_ROWS = 1_000_000  # stored candles kept in memory across portfolios (~56 MB): 28 portfolio-years of 15-minute buckets
_MISSING = STATUSES.index("missing")


class FormingPortfolios(Protocol):
    """The forming candle of each portfolio (services.portfolio_tracker.PortfolioTracker)."""

    def forming(self, scope: str, scope_id: str) -> PortfolioCandle | None:
        """The bucket being built (None: not valued yet); NotFound when the portfolio is not tracked."""
        ...


Changed = tuple[npt.NDArray[np.int64], list[npt.NDArray[np.int64]], npt.NDArray[np.bool_], int]  # times, values, observed, stamp


class _Stored:
    """One portfolio's stored candles in time order (int64 columns), which were observed, and how fresh they are."""

    __slots__ = ("time", "columns", "observed", "stamp", "checked_at")

    def __init__(self, time_: npt.NDArray[np.int64], values: list[npt.NDArray[np.int64]], observed: npt.NDArray[np.bool_],
                 stamp: int, *, checked_at: int) -> None:
        self.time, self.observed = time_, observed
        self.columns = [time_, *values]
        self.stamp = stamp  # the newest `updated_at` of the last pass over every row
        self.checked_at = checked_at  # when that pass was (ns)

    def merged(self, changed: Changed, checked: int | None = None) -> _Stored:
        """These rows with the changed ones written over them (same open time) or put in their place.

        `checked`: the changes are a pass over every row (its stamp counts); None: a read of the newest rows.
        """
        times, values, observed, stamp = changed
        every = np.r_[self.time, times]
        order = np.argsort(every, kind="stable")  # a changed row sorts after the row it replaces
        ordered = every[order]
        last = order[np.r_[ordered[1:] != ordered[:-1], True]] if len(ordered) else order
        return _Stored(every[last], [np.r_[old, new][last] for old, new in zip(self.columns[1:], values, strict=True)],
                       np.r_[self.observed, observed][last], max(self.stamp, stamp) if checked is not None else self.stamp,
                       checked_at=checked if checked is not None else self.checked_at)


async def _rows_since(store: Store, scope: str, scope_id: str, currency: str, *, updated_after: int | None = None,
                      opened_from: int | None = None) -> Changed:
    """A portfolio's rows stamped after `updated_after` (-1: all of them) or opening at or after `opened_from`, in time order."""
    read = await read_portfolio_candles(store, scope, scope_id, currency, start=opened_from, updated_after=updated_after)
    return (read.candles.time, [np.asarray(col, dtype=np.int64) for col in read.candles[1:]], read.status != _MISSING,
            int(read.updated_at.max()) if len(read.updated_at) else -1)


class PortfolioOhlcv:
    """Candles of one portfolio in `timeframe` buckets of a zone, paged at `max_points` buckets."""

    def __init__(self, store: Store, tracker: FormingPortfolios | None, *, max_points: int = DEFAULT_MAX_POINTS,
                 clock: Callable[[], int] = time.time_ns, cache_rows: int = CACHE_ROWS) -> None:
        self.store = store
        self.tracker = tracker  # None: stored candles only (a process that tracks nothing)
        self.max_points = max_points
        self.clock = clock
        self.cache_rows = cache_rows  # the least recently read portfolios leave memory beyond this many rows
        self._cache: OrderedDict[tuple[str, str, str], _Stored] = OrderedDict()

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
        cached = await self._stored(scope, scope_id, currency)
        a, b = np.searchsorted(cached.time, [lo, hi], side="left")
        keep = cached.observed[a:b]
        columns = [col[a:b][keep] for col in cached.columns]
        forming = self._forming(scope, scope_id)
        if forming is not None and lo <= forming.open_time < hi:
            newer = columns[0] < forming.open_time  # the forming bucket is newer than anything stored for it
            row = [forming.open_time, *(quantize_value(v) for v in (forming.open, forming.high, forming.low, forming.close,
                                                                      forming.volume))]
            columns = [np.r_[col[newer], np.int64(x)] for col, x in zip(columns, row, strict=True)]
        return OHLCV(*columns)

    async def _stored(self, scope: str, scope_id: str, currency: str) -> _Stored:
        """A portfolio's stored candles, kept in memory and brought up to date with what was written since.

        Each read takes the rows from the newest one held on (an index range: the bucket that
        just closed, a restart's marks), and at most every RECHECK_S seconds every row whose
        `updated_at` (the time it was stamped for writing) is newer than the newest seen by the
        last such pass, less WRITE_DELAY_S for rows stamped before and committed after it:
        so an older bucket rewritten (an import) shows within RECHECK_S. Rows are only ever
        upserted, never deleted.
        """
        key = (scope, scope_id, currency)
        now = self.clock()
        cached = self._cache.pop(key, None)
        if cached is None or now - cached.checked_at >= RECHECK_S * 1_000_000_000:
            since = -1 if cached is None else cached.stamp - WRITE_DELAY_S * 1_000_000_000
            changed = await _rows_since(self.store, scope, scope_id, currency, updated_after=since)
            cached = _Stored(*changed, checked_at=now) if cached is None else cached.merged(changed, checked=now)
        else:
            changed = await _rows_since(self.store, scope, scope_id, currency, opened_from=int(cached.time[-1]) if len(cached.time) else 0)
            cached = cached.merged(changed)
        self._cache[key] = cached  # the newest last: evicted least recently used first
        self._evict()
        return cached

    def _evict(self) -> None:
        total = sum(len(c.time) for c in self._cache.values())
        while total > self.cache_rows and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            total -= len(dropped.time)

    def _forming(self, scope: str, scope_id: str) -> PortfolioCandle | None:
        """The tracker's forming candle; None when nothing is tracked for it (stored candles are still answered)."""
        if self.tracker is None:
            return None
        try:
            return self.tracker.forming(scope, scope_id)
        except NotFound:  # checked readable by the caller, but not tracked in this process (yet)
            return None

