"""Reads stored rates back for people and programs: `GET /api/v1/rates/{exchange}/{symbol}` and `get_rates`.

    since=7d | 24h | 90m | 30s | 2w    that long before now (the seed's data reader asks for the last week)
    since=1723161240000 | 1723161240   unix ms (from 10^11 up) or seconds; since=2024-08-09T00:00Z  ISO 8601
    until=...                          the same grammar (a duration counts back from now); default now

The answer is what the store holds for [since, until), oldest first, prices as the exact decimal
text they were stored with; at most `max_points` rates per answer, `next` being the `since` of
the next page (null on the last). A market is known when the gateway serves it or rates of it
are stored (the retriever also stores markets fetched through CCXT that no exchange here serves).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.numbers import read_int
from coinwire.core.symbols import normalize_symbol, symbol_token
from coinwire.services.ohlcv import MAX_INSTANT, parse_instant
from coinwire.store.rates import MINUTE_MS, has_rates, load_rates
from coinwire.store.store import Store

__all__ = ["DEFAULT_MAX_POINTS", "DEFAULT_SINCE", "RateHistory", "parse_moment"]

DEFAULT_MAX_POINTS = 20_160  # two weeks of minutes: a week's answer is one page
DEFAULT_SINCE = "7d"
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhdw])")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_moment(value: object, name: str, now_ms: int) -> int:
    """Unix ms of `value`: a duration before `now_ms` (`7d`), unix ms or seconds, or an ISO 8601 time.

    InvalidInput `invalid_time` (with the field's name) for anything else, a duration of months
    included (`1M`: its length depends on the month; say `30d`).
    """
    if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
        raise InvalidInput("invalid_time", f"{name} must be a duration like 7d, 24h or 90m, unix ms or an ISO 8601 time, "
                                           f"got {str(value)[:40]!r}", field=name)
    text = str(value).strip()
    match = _DURATION.fullmatch(text)
    if match is not None:
        return now_ms - int(match.group(1)) * _UNIT_MS[match.group(2)]
    number = read_int(text, 0, MAX_INSTANT) if text.isascii() else None
    if number is not None:
        return number if number >= 10**11 else number * 1000
    try:
        seconds = None if text.lstrip("-").isdigit() else parse_instant(text, name)
    except InvalidInput:
        seconds = None
    if seconds is None:
        raise InvalidInput("invalid_time", f"{name} must be a duration like 7d, 24h or 90m, unix ms or an ISO 8601 time, "
                                           f"got {text[:40]!r}", field=name)
    return seconds * 1000


class RateHistory:
    """Stored rates of one market over a time range, paged at `max_points`."""

    def __init__(
        self,
        store: Store,
        served: Callable[[], Mapping[str, Collection[str]]],
        *,
        max_points: int = DEFAULT_MAX_POINTS,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """`served`: the exchanges the gateway serves and their symbols (asked at each read: markets come with feeds)."""
        if max_points < 1:
            raise ValueError("max_points must be >= 1")
        self.store = store
        self.served = served
        self.max_points = max_points
        self.clock = clock

    async def read(self, exchange: object, symbol: object, since: object = None, until: object = None) -> dict[str, Any]:
        """`{exchange, symbol, pair, since, until, rates: [{time, price, source}, ...], next}`, times in unix ms."""
        if not isinstance(exchange, str) or not exchange or len(exchange) > 64:
            raise InvalidInput("invalid_exchange", f"exchange must be a name like 'binance', got {str(exchange)[:70]!r}")
        unified = normalize_symbol(symbol)
        now_ms = self.clock() // 1_000_000
        start = parse_moment(DEFAULT_SINCE if since is None else since, "since", now_ms)
        end = now_ms + 1 if until is None else parse_moment(until, "until", now_ms)
        if start > end:
            raise InvalidInput("invalid_range", f"since ({start}) is after until ({end})", since=start, until=end)
        rows = await load_rates(self.store, exchange, unified, start, end, self.max_points + 1)
        if not rows:
            await self._check_known(exchange, unified)
        more = len(rows) > self.max_points
        rows = rows[: self.max_points]
        return {
            "exchange": exchange, "symbol": unified, "pair": symbol_token(unified), "since": start, "until": end,
            "rates": [{"time": r.minute_ms, "price": str(r.price), "source": r.source} for r in rows],
            "next": rows[-1].minute_ms + MINUTE_MS if more else None,
        }  # fmt: skip

    async def _check_known(self, exchange: str, symbol: str) -> None:
        """NotFound `unknown_exchange` / `unknown_symbol` for a market neither served here nor ever stored."""
        served = self.served()
        symbols = served.get(exchange)
        if symbols is not None and symbol in symbols:
            return
        if await has_rates(self.store, exchange, symbol):
            return
        if symbols is None and not await has_rates(self.store, exchange):
            raise NotFound("unknown_exchange", f"unknown exchange {exchange!r}; known: {sorted(served)}", exchange=exchange)
        raise NotFound("unknown_symbol", f"exchange {exchange} has no market {symbol}", exchange=exchange, symbol=symbol)
