"""Recorded candles: what the platform built from live and paper trades (the store's `candles` table) as history Candles.

The candle recorder (services/candle_recorder.py) keeps 1-minute and 1-hour candles of every
market a feed trades; a backtest reads them with the data spec `recorded:EXCHANGE`, the finest
stored interval of each symbol (the engine rolls it up to the strategy's timeframe). Rows are
exact integers at the instrument's precision; they become the float columns every other
candle source gives (history.candles.Candles), so the engine has one candle path.

Refusals: `invalid_data` (not `recorded:NAME`), `invalid_exchange` (a malformed name),
`unknown_exchange` (neither configured nor ever recorded), `recorded_missing` (nothing recorded
for that exchange or symbol, or nothing inside the range), `empty_range` (end not after start: as BacktestConfig says).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Final

import numpy as np
from sqlalchemy import func, select

from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.symbols import normalize_symbol
from coinwire.history.candles import Candles, format_time, timeframe_seconds
from coinwire.history.formats import timeframe_of_seconds
from coinwire.history.store import SeriesInfo
from coinwire.store.candles import load_candles
from coinwire.store.store import Store
from coinwire.store.tables import candles

__all__ = ["RECORDED", "is_recorded", "load_recorded", "recorded_exchange", "recorded_series"]

RECORDED: Final = "recorded:"
_EXCHANGE: Final = re.compile(r"[a-z0-9][a-z0-9_-]*")


def is_recorded(item: str) -> bool:
    """Whether a `data` item is the recorded-candles spec rather than a path."""
    return str(item).startswith(RECORDED)


def recorded_exchange(item: str) -> str:
    """`recorded:binance` -> `binance`; a malformed spec is refused."""
    if not is_recorded(item):
        raise InvalidInput("invalid_data", f"{item!r} is not recorded:EXCHANGE", data=str(item))
    name = str(item)[len(RECORDED):]
    if not _EXCHANGE.fullmatch(name):
        raise InvalidInput("invalid_exchange", f"data {item!r}: after recorded: comes an exchange name like binance", data=str(item))
    return name


async def recorded_series(store: Store, exchange: str | None = None) -> list[SeriesInfo]:
    """Every recorded series (one exchange's, or all): bars and the open times of the first and last, as `coinwire data list` shows."""
    c = candles.c
    query = (select(c.exchange, c.symbol, c.interval_s, func.count(), func.min(c.open_time), func.max(c.open_time))
             .group_by(c.exchange, c.symbol, c.interval_s).order_by(c.exchange, c.symbol, c.interval_s))
    if exchange is not None:
        query = query.where(c.exchange == exchange)
    await store.settled()  # rows may still be on their way from the store's journal
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [SeriesInfo(exchange=row[0], symbol=row[1], timeframe=timeframe_of_seconds(int(row[2])), rows=int(row[3]),
                       first=int(row[4]), last=int(row[5]), path=RECORDED + row[0]) for row in rows]


async def load_recorded(store: Store, exchange: str, symbols: Sequence[str] | None = None, start: int | None = None,
                        end: int | None = None, known: Collection[str] = ()) -> list[Candles]:
    """The finest recorded candles of `symbols` (None: every recorded symbol) on `exchange`, start <= open time < end.

    `known`: the exchanges this platform has configured (an exchange neither configured nor recorded is unknown).
    """
    if start is not None and end is not None and end <= start:
        raise InvalidInput("empty_range", f"end ({format_time(end)}) must be after start ({format_time(start)})")
    infos = await recorded_series(store, exchange)
    if not infos:
        others = sorted({i.exchange for i in await recorded_series(store)})
        have = f"recorded: {', '.join(others)}" if others else "nothing is recorded yet (paper or live trading records candles)"
        if exchange not in known and exchange not in others:
            raise NotFound("unknown_exchange", f"no exchange {exchange!r} here ({have})", exchange=exchange)
        raise NotFound("recorded_missing", f"no candles are recorded for {exchange} ({have})", exchange=exchange)
    finest: dict[str, SeriesInfo] = {}
    for info in infos:  # sorted by interval within a symbol: the first seen is the finest
        finest.setdefault(info.symbol, info)
    wanted = [normalize_symbol(s) for s in symbols] if symbols else sorted(finest)
    missing = [s for s in wanted if s not in finest]
    if missing:
        raise NotFound("recorded_missing", f"no candles of {', '.join(missing)} are recorded for {exchange} "
                       f"(recorded: {', '.join(sorted(finest))})", exchange=exchange, symbols=missing)
    out: list[Candles] = []
    for symbol in wanted:
        info = finest[symbol]
        stored = await load_candles(store, exchange, symbol, timeframe_seconds(info.timeframe), start, end)
        if stored is None:
            continue
        price, size = 10.0 ** stored.price_decimals, 10.0 ** stored.size_decimals
        bars = stored.candles
        o, h, low, c = (np.asarray(column, dtype=np.float64) / price for column in (bars.open, bars.high, bars.low, bars.close))
        out.append(Candles(exchange, symbol, info.timeframe, bars.time, o, h, low, c, np.asarray(bars.volume, dtype=np.float64) / size))
    if not out:
        span = "; ".join(f"{i.symbol} {format_time(i.first or 0)} .. {format_time(i.last or 0)}" for i in finest.values()
                         if i.symbol in wanted)
        asked = f"{format_time(start) if start is not None else 'the start'} to {format_time(end) if end is not None else 'the end'}"
        raise NotFound("recorded_missing", f"no candles recorded for {exchange} from {asked} (recorded: {span})", exchange=exchange)
    return out

