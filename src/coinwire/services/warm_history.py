"""Where a run's warm-up finds its candles: the history store, the stored candles, a CCXT download, the demo feed's past.

Each class is an `engine.warmup.HistorySource`; `warm_sources` lists them in the order a run
tries them (the first that has every candle a series needs wins, see `load_warmup`):

1. `HistoryStoreSource`: series imported or downloaded into the history store
   (`coinwire data import|download`), at the run's timeframe or rolled up from a finer one.
2. `StoredCandlesSource`: the candles this server recorded from public trades
   (services/candle_recorder.py, the `candles` table and the ones still forming), read
   through the charts' own query (services/ohlcv.OhlcvQuery).
4. `CcxtDownloadSource`: `fetch_ohlcv` of an exchange whose feed is `ccxt`, through the
   CCXT client the feed makes (venues/ccxt_client.py; errors through venues/ccxt_errors.py).
5. `DemoPastSource`: a demo feed's own deterministic past (feeds/demo.DemoMarket.candles).

3. `StoredRatesSource`: the rates this server stored (services/rates.py, one price per market
   per minute), as candles: a minute's rate is its open, high, low and close, its volume 0, then
   rolled up. Close-based windows (moving averages, the decider's weekly mean) see the prices
   they would have seen live; high/low ranges are narrower and volume is absent, so it comes
   after the recorded candles, which have both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

import numpy as np

from coinwire.config import ExchangeConfig
from coinwire.core.errors import CoinwireError
from coinwire.core.rollup import OHLCV, bucket_starts, nests, parse_timeframe, rollup
from coinwire.engine.warmup import HistorySource
from coinwire.feeds.demo import DemoFeed
from coinwire.history.store import HistoryStore
from coinwire.services.ohlcv import OhlcvQuery
from coinwire.store import Store
from coinwire.store.rates import load_rates
from coinwire.venues.ccxt_client import close_client, make_client
from coinwire.venues.ccxt_errors import translate

__all__ = ["CcxtDownloadSource", "DemoPastSource", "HistoryStoreSource", "StoredCandlesSource", "StoredRatesSource", "warm_sources"]


def _empty() -> OHLCV:
    return OHLCV(np.empty(0, np.int64), *(np.empty(0, np.float64) for _ in range(5)))


def _roll(candles: OHLCV, timeframe: str, start: int, end: int) -> OHLCV:
    """Finer candles as candles of `timeframe` in [start, end) (UTC buckets)."""
    if not len(candles.time):
        return _empty()
    starts = bucket_starts(parse_timeframe(timeframe), UTC, start, end)
    if not len(starts):
        return _empty()
    return rollup(candles, starts, end)


class HistoryStoreSource:
    """Series of the history store: the run's timeframe itself, else the finest stored one that nests in it, rolled up."""

    name = "the history store"

    def __init__(self, history: HistoryStore) -> None:
        self.history = history

    async def candles(self, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> OHLCV | None:
        return await asyncio.to_thread(self._read, exchange, symbol, timeframe, start, end)

    def _read(self, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> OHLCV | None:
        wanted = parse_timeframe(timeframe)
        stored = [info for info in self.history.list() if info.exchange == exchange and info.symbol == symbol and info.rows]
        usable = [info for info in stored if nests(parse_timeframe(info.timeframe), wanted)]
        if not usable:
            return None
        info = min(usable, key=lambda i: (parse_timeframe(i.timeframe) != wanted, -parse_timeframe(i.timeframe).seconds))
        series = self.history.load(exchange, symbol, info.timeframe).slice(start, end)
        columns = OHLCV(np.array(series.time), *(np.array(getattr(series, c)) for c in ("open", "high", "low", "close", "volume")))
        return columns if info.timeframe == timeframe else _roll(columns, timeframe, start, end)


class StoredCandlesSource:
    """The candles this server recorded from public trades (stored and still forming), through the charts' query."""

    name = "stored candles"

    def __init__(self, query: OhlcvQuery) -> None:
        self.query = query

    async def candles(self, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> OHLCV | None:
        tf = parse_timeframe(timeframe)
        query = OhlcvQuery(self.query.store, None, self.query.forming, max_points=(end - start) // tf.seconds + 2,
                           clock=self.query.clock)
        try:
            answer = await query.candles(exchange, symbol, timeframe, "UTC", start, end)
        except CoinwireError as exc:
            if exc.code == "no_fitting_candles":
                return None
            raise
        rows = [row for row in answer["candles"] if start <= row[0] < end]
        if not rows:
            return _empty()
        block = np.array(rows, dtype=np.float64)
        return OHLCV(block[:, 0].astype(np.int64), *(block[:, i] for i in range(1, 6)))


class StoredRatesSource:
    """The stored rates (store/rates.py) as candles: each minute's rate its open, high, low and close, volume 0."""

    name = "stored rates"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def candles(self, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> OHLCV | None:
        limit = (end - start) // 60 + 1
        rows = await load_rates(self.store, exchange, symbol, start * 1000, end * 1000, limit)
        if not rows:
            return None
        time = np.array([row.minute_ms // 1000 for row in rows], dtype=np.int64)
        price = np.array([float(row.price) for row in rows], dtype=np.float64)
        minutes = OHLCV(time, price, price.copy(), price.copy(), price.copy(), np.zeros(len(rows)))
        return minutes if timeframe == "1m" else _roll(minutes, timeframe, start, end)


class CcxtDownloadSource:
    """`fetch_ohlcv` of the exchanges whose feed is `ccxt`, through the same CCXT client the feed makes (its URLs and options).

    Pages until `end`; a failure passes the one CCXT error table (venues/ccxt_errors.py) and
    reaches the run log as that error's message. No retry here: a run's start should not wait
    out a backoff, and the warm-up policy decides what a missing download means.
    """

    name = "a download"
    page = 1000  # candles asked for per request

    def __init__(self, exchanges: Mapping[str, ExchangeConfig]) -> None:
        """`exchanges`: coinwire exchange name -> its config; only those whose feed is `ccxt` are served."""
        self.exchanges = {name: cfg for name, cfg in exchanges.items() if cfg.feed == "ccxt"}

    async def candles(self, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> OHLCV | None:
        cfg = self.exchanges.get(exchange)
        if cfg is None:
            return None
        client = make_client(cfg.ccxt_id or cfg.name, urls=cfg.ccxt_urls, options=cfg.ccxt_options, timeout=cfg.ccxt_timeout)
        step = parse_timeframe(timeframe).seconds * 1000
        rows: list[list[float]] = []
        cursor = start * 1000
        try:
            while cursor < end * 1000:
                try:
                    page = await client.fetch_ohlcv(symbol, timeframe, since=cursor, limit=self.page)
                except Exception as exc:  # every CCXT failure passes through the one table
                    raise translate(exc, exchange=exchange, operation="fetch_ohlcv") from exc
                page = [row for row in page if cursor <= row[0] < end * 1000]
                if not page:
                    break
                rows.extend(page)
                cursor = int(page[-1][0]) + step
        finally:
            await close_client(client, exchange)
        if not rows:
            return _empty()
        block = np.array([row[:6] for row in rows], dtype=np.float64)
        return OHLCV(block[:, 0].astype(np.int64) // 1000, *(block[:, i] for i in range(1, 6)))


class DemoPastSource:
    """A demo feed's own past: the deterministic walk before its first tick, its own trades since (feeds/demo.py)."""

    name = "the demo feed's past"

    def __init__(self, feeds: Mapping[str, DemoFeed]) -> None:
        self.feeds = dict(feeds)

    async def candles(self, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> OHLCV | None:
        feed = self.feeds.get(exchange)
        if feed is None or symbol not in {i.symbol for i in feed.instruments()}:
            return None
        minutes = feed.market.candles(symbol, start, end)
        return minutes if timeframe == "1m" else _roll(minutes, timeframe, start, end)


def warm_sources(history: HistoryStore | None, query: OhlcvQuery | None, exchanges: Sequence[ExchangeConfig],
                 feeds: Sequence[Any]) -> list[HistorySource]:
    """The sources in the order a run tries them, for this process's exchanges and feeds (`feeds[i]` is `exchanges[i]`'s)."""
    sources: list[HistorySource] = []
    if history is not None:
        sources.append(HistoryStoreSource(history))
    if query is not None:
        sources.append(StoredCandlesSource(query))
        if query.store is not None:
            sources.append(StoredRatesSource(query.store))
    by_name = {cfg.name: cfg for cfg in exchanges}
    if any(cfg.feed == "ccxt" for cfg in exchanges):
        sources.append(CcxtDownloadSource(by_name))
    demo = {cfg.name: feed for cfg, feed in zip(exchanges, feeds, strict=True) if isinstance(feed, DemoFeed)}
    if demo:
        sources.append(DemoPastSource(demo))
    return sources
