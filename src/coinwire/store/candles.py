"""Candle rows in the store: the row shape, one batched upsert, and range reads as NumPy columns.

Why an upsert: a candle is written when its minute closes, and written again if a late trade
(or a re-fetch) changes it; the row with the newest data wins, whatever was there before.
Why NumPy columns on read: a chart rolls a year of rows up at once (core.rollup).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import msgspec
import numpy as np
from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from coinwire.core.rollup import OHLCV
from coinwire.store.store import Store
from coinwire.store.tables import candles

__all__ = ["CandleRow", "StoredCandles", "load_candles", "stored_intervals", "upsert_statement", "write_candles"]


class CandleRow(msgspec.Struct, frozen=True, kw_only=True):
    """One closed (or re-written) candle: [open_time, close_time) in unix seconds, prices and volume as
    integers at `price_decimals` / `size_decimals`, `updated_at` the ns time of the newest trade in it."""

    exchange: str
    symbol: str
    interval_s: int
    open_time: int
    close_time: int
    price_decimals: int
    size_decimals: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int
    updated_at: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        return self.exchange, self.symbol, self.interval_s, self.open_time


class StoredCandles(msgspec.Struct, frozen=True):
    """Integer candles read back, with their precision (the newest row's, should it ever have changed)."""

    candles: OHLCV
    price_decimals: int
    size_decimals: int


@lru_cache(maxsize=8)
def upsert_statement(dialect: str, table: Table = candles) -> Insert:
    """INSERT .. ON CONFLICT (the table's primary key) DO UPDATE every other column, on SQLite or PostgreSQL.

    One statement object per dialect and table: the SQLite writer compiles each statement
    it meets once and keeps it, so a fresh object per call would be compiled every time.
    """
    statement = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    key = list(table.primary_key.columns)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if not c.primary_key}
    return statement.on_conflict_do_update(index_elements=key, set_=updates)


async def write_candles(store: Store, rows: Sequence[CandleRow], statement: Insert | None = None) -> None:
    """Upsert rows in ONE transaction (one executemany). Rows with the same key: the last one wins.

    Through `Store.write_many`: on SQLite that is the single-hop writer (about 1 us of
    parameters a row instead of SQLAlchemy's ~10), which roughly doubles ingest.
    """
    if not rows:
        return
    latest = {row.key: row for row in rows}  # PostgreSQL refuses to update one row twice in a statement
    params = [msgspec.structs.asdict(row) for row in latest.values()]
    await store.write_many(statement if statement is not None else upsert_statement(store.dialect), params)


async def load_candles(
    store: Store, exchange: str, symbol: str, interval_s: int, start: int | None = None, end: int | None = None
) -> StoredCandles | None:
    """Rows with start <= open_time < end in time order, as int64 columns; None when there is none."""
    c = candles.c
    query = (
        select(c.open_time, c.open, c.high, c.low, c.close, c.volume, c.price_decimals, c.size_decimals)
        .where(c.exchange == exchange, c.symbol == symbol, c.interval_s == interval_s)
        .order_by(c.open_time)
    )
    if start is not None:
        query = query.where(c.open_time >= start)
    if end is not None:
        query = query.where(c.open_time < end)
    await store.settled()  # rows written may still be on their way from the store's journal
    async with store.engine.connect() as conn:
        rows: list[Any] = list((await conn.execute(query)).all())
    if not rows:
        return None
    # np.array() would index every Row element by element (seconds for a year of minutes)
    block = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=len(rows) * 8).reshape(-1, 8)
    columns = OHLCV(*(np.ascontiguousarray(block[:, i]) for i in range(6)))
    return StoredCandles(columns, int(block[-1, 6]), int(block[-1, 7]))


async def stored_intervals(store: Store, exchange: str, symbol: str) -> list[int]:
    """The intervals (s) stored for a series, finest first: one primary-key seek per interval, not a scan."""
    c = candles.c
    found: list[int] = []
    await store.settled()
    async with store.engine.connect() as conn:
        while True:
            query = select(func.min(c.interval_s)).where(c.exchange == exchange, c.symbol == symbol)
            if found:
                query = query.where(c.interval_s > found[-1])
            interval = (await conn.execute(query)).scalar()
            if interval is None:
                return found
            found.append(int(interval))
