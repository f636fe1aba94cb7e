"""Candle download through CCXT `fetch_ohlcv`, page by page, closed bars only.

Why page ourselves rather than CCXT's `paginate`: we stop exactly at `until`, drop the bar
that is still open (a backtest must never see a bar that later changes), report progress
as pages arrive, and retry only what the one CCXT error table (venues.ccxt_errors) calls
retryable, with its backoff.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from typing import Any

import numpy as np

from coinwire.core.errors import InvalidInput
from coinwire.core.symbols import normalize_symbol
from coinwire.history.candles import Candles, timeframe_seconds
from coinwire.venues.ccxt_errors import Backoff, translate

__all__ = ["download", "make_exchange", "rehost_urls"]

MAX_RETRIES = 5


def make_exchange(name: str, api_url: str | None = None, timeout_ms: int = 30_000) -> Any:
    """A CCXT exchange instance by id (`binance`), its REST calls optionally sent to `api_url`."""
    import ccxt

    if name not in ccxt.exchanges:
        raise InvalidInput("unknown_exchange", f"{name!r} is not a CCXT exchange id (like binance, kraken, okx)", exchange=name)
    exchange = getattr(ccxt, name)({"enableRateLimit": True, "timeout": timeout_ms})
    if api_url:
        exchange.urls["api"] = rehost_urls(exchange.urls["api"], api_url)
    return exchange


def rehost_urls(urls: Any, base: str) -> Any:
    """Every URL in CCXT's `urls['api']` (a string or nested dicts) with its scheme and host
    replaced by `base`, paths kept: for a mirror such as https://data-api.binance.vision or
    a local test server."""
    if isinstance(urls, dict):
        return {key: rehost_urls(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        path = urls.partition("://")[2].partition("/")[2]
        return base.rstrip("/") + "/" + path
    return urls


def download(
    exchange: Any,
    symbol: str,
    timeframe: str,
    since: int,
    until: int | None = None,
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    backoff: Backoff | None = None,
    retries: int = MAX_RETRIES,
) -> Candles:
    """Closed bars with since <= open time < until (unix s; until None: up to now).

    `progress(bars_so_far, last_open_time_s)` is called after every page. Network and
    exchange failures raise CcxtError (`exchange_network_error`, `exchange_bad_symbol`, ...)
    after at most `retries` retries in a row of the retryable ones.
    """
    symbol = normalize_symbol(symbol)
    step_ms = timeframe_seconds(timeframe) * 1000
    backoff = backoff or Backoff()
    name = str(exchange.id)

    def call(operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # every CCXT failure passes through the one table
                try:
                    error = translate(exc, exchange=name, operation=operation)
                except TypeError:
                    raise exc from None
                if not error.retryable or backoff.attempts >= retries:
                    raise error from exc
                sleep(backoff.next_delay(error))
                continue
            backoff.reset()
            return result

    call("load_markets", exchange.load_markets)
    if exchange.timeframes and timeframe not in exchange.timeframes:
        raise InvalidInput(
            "unsupported_timeframe",
            f"{name} has no {timeframe} candles; it offers {', '.join(exchange.timeframes)}",
            timeframe=timeframe,
        )
    now_ms = int(exchange.milliseconds())
    end_ms = now_ms if until is None else min(until * 1000, now_ms)
    cursor = since * 1000
    rows: list[list[float]] = []
    while cursor < end_ms:
        page = call("fetch_ohlcv", exchange.fetch_ohlcv, symbol, timeframe, since=cursor, limit=limit)
        page = [row for row in page if cursor <= row[0] < end_ms and row[0] + step_ms <= now_ms]
        if not page:
            break
        rows.extend(page)
        cursor = int(page[-1][0]) + step_ms
        if progress is not None:
            progress(len(rows), int(page[-1][0]) // 1000)
    if not rows:
        return Candles.empty(name, symbol, timeframe)
    block = np.array([row[:6] for row in rows], dtype=np.float64)
    return Candles(name, symbol, timeframe, block[:, 0].astype(np.int64) // 1000, *(block[:, i] for i in range(1, 6)))
