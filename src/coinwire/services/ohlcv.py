"""OHLCV answers: the seed's paper-market points, and candles of any timeframe and time zone from stored data.

`OhlcvQuery.candles` reads the finest-needed base candles from the store's `candles` table
(1-minute and 1-hour candles recorded from trades), the history store (imported or
downloaded series) and the candles still forming in memory (services.candle_recorder), merges
them (store over history, forming over both) and rolls them up with core.rollup. It picks
the COARSEST base whose grid every requested bucket boundary lies on, so a year of daily
candles in Europe/London reads 8,760 hourly rows, not 525,600 minutes, while a daily chart
in Asia/Kathmandu (+05:45) falls back to minutes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.numbers import read_int
from coinwire.core.rollup import OHLCV, Timeframe, bucket_starts, parse_timeframe, rollup
from coinwire.core.symbols import normalize_symbol, symbol_token
from coinwire.history.candles import Candles, concat, parse_time, timeframe_seconds
from coinwire.history.store import HistoryStore
from coinwire.store.candles import load_candles, stored_intervals
from coinwire.store.store import Store

__all__ = ["DEFAULT_MAX_POINTS", "BucketPage", "FormingSource", "OhlcvQuery", "bucket_page", "ohlcv_points", "parse_instant", "zone"]

_FREQS = {"highest": None, "daily": Timeframe(1, "d")}
DEFAULT_MAX_POINTS = 5_000


def ohlcv_points(market: Any, start: int | None, end: int | None, received_before: int | None, freq: str) -> dict[str, Any]:
    """Points are `[time, low, high, open, close, volume, received_at]`, as in the seed (daily: UTC days)."""
    if freq not in _FREQS:
        raise InvalidInput("invalid_freq", f"freq must be one of {sorted(_FREQS)}, got {freq!r}")
    if start is not None and end is not None and start > end:
        raise InvalidInput("invalid_range", "start is after end")
    inst = market.instrument
    rows = market.candles.between(start, end, received_before)
    daily = _FREQS[freq]
    if daily is not None and rows:
        block = np.array([row[:7] for row in rows], dtype=np.int64)
        first, last = int(block[0, 0]), int(block[-1, 0]) + 60
        rolled = rollup(OHLCV(*block[:, :6].T), bucket_starts(daily, UTC, first, last), last)
        received = np.zeros(len(rolled.time), dtype=np.int64)
        np.maximum.at(received, np.searchsorted(rolled.time, block[:, 0], side="right") - 1, block[:, 6])
        rows = [[*map(int, candle), int(at)] for *candle, at in zip(*rolled, received, strict=True)]
    points = [
        [c[0], inst.price_str(c[3]), inst.price_str(c[2]), inst.price_str(c[1]), inst.price_str(c[4]), inst.size_str(c[5]), c[6]]
        for c in rows
    ]
    return {
        "exchange": inst.exchange,
        "pair": symbol_token(inst.symbol),
        "generated_at": int(time.time()),
        "points": points,
    }


def zone(name: object) -> tzinfo:
    """The IANA time zone `name` (`Europe/London`, `UTC`); InvalidInput `invalid_timezone` when unknown."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise InvalidInput("invalid_timezone", f"tz must be an IANA time zone like Europe/London or UTC, got {name!r}", tz=str(name))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "invalid_timezone", f"unknown time zone {name!r}: use an IANA name like Europe/London, America/New_York or UTC", tz=name
        ) from None


MAX_INSTANT = 253_402_300_799_999  # 9999-12-31T23:59:59.999 in milliseconds


def parse_instant(value: object, name: str) -> int | None:
    """Unix seconds (or milliseconds) or ISO 8601 (`2021-03-28`, `2021-03-28T12:00+01:00`); None stays None.

    Numbers are ASCII digits within year 9999 in milliseconds (MAX_INSTANT): `int()` would read
    other scripts' digits, and a time beyond what numpy's int64 buckets hold would overflow.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput("invalid_time", f"{name} must be unix seconds or an ISO 8601 time, got {value!r}", field=name)
    number: object = value
    if isinstance(value, float) and math.isfinite(value):
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():  # digits of any script: ASCII ones only
        number = read_int(value.strip(), -MAX_INSTANT, MAX_INSTANT) if value.isascii() else None
    if isinstance(number, int) and -MAX_INSTANT <= number <= MAX_INSTANT:
        return number // 1000 if number >= 10**11 else number
    if not isinstance(value, str) or number is None:
        raise InvalidInput("invalid_time", f"{name} must be unix seconds or an ISO 8601 time, got {str(value)[:40]!r}", field=name)
    try:
        return parse_time(value)
    except InvalidInput:
        raise InvalidInput("invalid_time", f"{name} must be unix seconds or an ISO 8601 time, got {value!r}", field=name) from None


class BucketPage(NamedTuple):
    """One page of a candle query: its timeframe and zone, the range it answers, and where the next page starts."""

    tf: Timeframe
    tz: tzinfo
    start: int  # unix s, as asked (or the default)
    end: int
    buckets: npt.NDArray[np.int64]  # the page's bucket starts and, last, the end of its last bucket (empty: none)
    next: int | None  # the next page's start (None: this is the last)


def bucket_page(timeframe: object, tz: object, start: object, end: object, max_points: int, now_ns: int) -> BucketPage:
    """The buckets a candle query answers (market and portfolio candles alike), checked and paged.

    Errors: `invalid_timeframe`, `invalid_timezone`, `invalid_time`, `invalid_range`. Buckets
    overlap [start, end) and are whole (the first may begin before `start`); at most
    `max_points` of them, `next` being the start of the next page. start/end default to the
    last `max_points` buckets up to `now_ns`.
    """
    tf = parse_timeframe(timeframe)
    zone_info = zone(tz)
    start_s, end_s = parse_instant(start, "start"), parse_instant(end, "end")
    if end_s is None:
        end_s = now_ns // 1_000_000_000 + 1
    if start_s is None:  # the newest page: its first bucket may begin before this
        start_s = end_s - (max_points - 1) * tf.seconds
    if start_s > end_s:
        raise InvalidInput("invalid_range", f"start ({start_s}) is after end ({end_s})", start=start_s, end=end_s)
    if start_s == end_s:
        return BucketPage(tf, zone_info, start_s, end_s, np.empty(0, np.int64), None)
    grid = bucket_starts(tf, zone_info, start_s, end_s + tf.seconds + 1)
    count = int(np.searchsorted(grid, end_s, side="left"))
    following = None
    if count > max_points:
        count = max_points
        following = int(grid[count])
    buckets = grid[: count + 1] if count < len(grid) else np.r_[grid, grid[-1] + tf.seconds]
    return BucketPage(tf, zone_info, start_s, end_s, buckets, following)


class FormingSource(Protocol):
    """Candles still forming in memory (services.candle_recorder.CandleRecorder)."""

    @property
    def intervals(self) -> tuple[int, ...]: ...

    def recent(self, exchange: str, symbol: str, interval_s: int) -> OHLCV | None: ...

    def precision(self, exchange: str, symbol: str) -> tuple[int, int] | None: ...


Base = tuple[OHLCV, int]  # float candles and their interval (s)


class OhlcvQuery:
    """Candles of `timeframe` buckets in `tz` for one series, paged at `max_points` buckets."""

    def __init__(
        self,
        store: Store | None,
        history: HistoryStore | None,
        forming: FormingSource | None = None,
        *,
        max_points: int = DEFAULT_MAX_POINTS,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.history = history
        self.forming = forming
        self.max_points = max_points
        self.clock = clock

    async def candles(
        self,
        exchange: str,
        symbol: str,
        timeframe: object = "1h",
        tz: object = "UTC",
        start: object = None,
        end: object = None,
    ) -> dict[str, Any]:
        """`{exchange, symbol, timeframe, tz, start, end, candles: [[time, open, high, low, close, volume], ...], next}`.

        Buckets overlap [start, end) and are whole (the first may begin before `start`); at
        most `max_points` of them per answer, `next` being the `start` of the next page (null
        on the last). start/end default to the last `max_points` buckets up to now.
        """
        if not isinstance(exchange, str) or not exchange:
            raise InvalidInput("invalid_exchange", f"exchange must be a name like 'binance', got {exchange!r}")
        symbol = normalize_symbol(symbol)
        page = bucket_page(timeframe, tz, start, end, self.max_points, self.clock())
        answer: dict[str, Any] = {
            "exchange": exchange, "symbol": symbol, "timeframe": str(page.tf), "tz": str(tz),
            "start": page.start, "end": page.end, "candles": [], "next": page.next,
        }  # fmt: skip
        if not len(page.buckets):
            return answer
        buckets = page.buckets
        base = await self._base(exchange, symbol, buckets)
        if base is not None:
            rolled = rollup(base[0], buckets[:-1], int(buckets[-1]))
            answer["candles"] = np.column_stack([rolled.time.astype(np.float64), *rolled[1:]]).tolist()
            for row in answer["candles"]:
                row[0] = int(row[0])
        return answer

    async def _base(self, exchange: str, symbol: str, boundaries: np.ndarray) -> Base | None:
        """The coarsest base candles on whose grid every boundary lies, from every source, merged."""
        lo, hi = int(boundaries[0]), int(boundaries[-1])
        options: dict[int, list[str]] = {}
        if self.store is not None:
            for interval in await stored_intervals(self.store, exchange, symbol):
                options.setdefault(interval, []).append("store")
        if self.forming is not None and self.forming.precision(exchange, symbol) is not None:
            for interval in self.forming.intervals:
                options.setdefault(interval, []).append("forming")
        history = {}
        if self.history is not None:
            history = {
                timeframe_seconds(info.timeframe): info
                for info in self.history.list()
                if info.exchange == exchange and info.symbol == symbol and info.rows
            }
            for interval in history:
                options.setdefault(interval, []).append("history")
        for interval in sorted(options, reverse=True):
            anchor = int(history[interval].first or 0) if interval in history and "store" not in options[interval] else 0
            if ((boundaries - anchor) % interval).any():
                continue
            parts: list[OHLCV] = []
            if "history" in options[interval]:
                info = history[interval]
                series = self.history.load(exchange, symbol, info.timeframe) if self.history else None
                if series is not None:
                    part = series.slice(lo, hi)
                    parts.append(OHLCV(part.time, part.open, part.high, part.low, part.close, part.volume))
            if "store" in options[interval] and self.store is not None:
                stored = await load_candles(self.store, exchange, symbol, interval, lo, hi)
                if stored is not None:
                    parts.append(_scaled(stored.candles, stored.price_decimals, stored.size_decimals))
            if "forming" in options[interval] and self.forming is not None:
                recent = self.forming.recent(exchange, symbol, interval)
                precision = self.forming.precision(exchange, symbol)
                if recent is not None and precision is not None:
                    keep = (recent.time >= lo) & (recent.time < hi)
                    parts.append(_scaled(OHLCV._make(col[keep] for col in recent), *precision))
            merged = _merge([p for p in parts if len(p.time)], exchange, symbol, interval)
            return (merged, interval) if merged is not None else None
        if not options:
            return None
        raise NotFound(
            "no_fitting_candles",
            f"no stored candles of {exchange} {symbol} fit these buckets: stored intervals "
            f"{sorted(options)} s do not divide the bucket boundaries (record or download finer candles)",
            exchange=exchange,
            symbol=symbol,
        )


def _scaled(candles: OHLCV, price_decimals: int, size_decimals: int) -> OHLCV:
    """Integer candles at an instrument's precision as floats (each the double nearest the exact decimal)."""
    price, size = 10.0**price_decimals, 10.0**size_decimals
    return OHLCV._make((
        candles.time.astype(np.int64),
        *(np.asarray(col, dtype=np.float64) / price for col in candles[1:5]),
        np.asarray(candles.volume, dtype=np.float64) / size,
    ))


def _merge(parts: list[OHLCV], exchange: str, symbol: str, interval: int) -> OHLCV | None:
    """One series from several (history.candles.concat): on equal times the LATER part wins
    (store over history, forming over both)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    merged = concat([Candles(exchange, symbol, f"{interval}s", *part, validate=False) for part in parts])
    return OHLCV(merged.time, merged.open, merged.high, merged.low, merged.close, merged.volume)
