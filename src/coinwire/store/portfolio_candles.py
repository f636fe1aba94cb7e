"""Portfolio candles in the store: the row shape, the batched writer, range reads as NumPy columns, the newest row per portfolio.

Why the same batched writer as market candles: at every 15-minute boundary every tracked
portfolio closes a candle at the same instant (thousands of them), the thundering herd the
market candles already meet at the top of each minute; and an upsert, so an import that
rebuilds history (or a partial bucket written at shutdown, then rewritten) lands on the same key.
Why NumPy columns on read: the API rolls a year of 15-minute rows up at once (core.rollup).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
from sqlalchemy import case, func, select
from sqlalchemy.sql.dml import Insert

from coinwire.core.portfolio import BUCKET_S, STATUSES, PortfolioCandle, quantize_value, value_from_int
from coinwire.core.rollup import OHLCV
from coinwire.store.candle_writer import BatchWriter
from coinwire.store.candles import upsert_statement
from coinwire.store.store import Store
from coinwire.store.tables import portfolio_candles, preferences

__all__ = [
    "CandleColumns",
    "NewestCandle",
    "display_currencies",
    "PortfolioCandleRow",
    "PortfolioCandleWriter",
    "StoredPortfolioCandles",
    "load_portfolio_candles",
    "newest_portfolio_candles",
    "read_portfolio_candles",
    "write_portfolio_candles",
]

PortfolioKey = tuple[str, str, str]  # scope, scope_id, currency


class PortfolioCandleRow(msgspec.Struct, frozen=True, kw_only=True):
    """One stored 15-minute portfolio candle: [open_time, close_time) in unix s, values as integers at VALUE_DECIMALS."""

    scope: str
    scope_id: str
    currency: str
    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    status: str
    updated_at: int

    @property
    def key(self) -> tuple[str, str, str, int]:
        return self.scope, self.scope_id, self.currency, self.open_time

    @classmethod
    def of(cls, scope: str, scope_id: str, currency: str, candle: PortfolioCandle, updated_at: int) -> PortfolioCandleRow:
        """The stored form of a core candle (values rounded half to even at VALUE_DECIMALS)."""
        # A builder's high and low are the very objects of its open or a later sample (often the
        # close): quantize each object once. A boundary stores 101,000 rows; a quantization is
        # ~0.6 us here, five a row were ~0.3 s.
        first, last, high, low, volume = candle.open, candle.close, candle.high, candle.low, candle.volume
        open_ = quantize_value(first)
        close = open_ if last is first else quantize_value(last)
        return cls(
            scope=scope,
            scope_id=scope_id,
            currency=currency,
            open_time=candle.open_time,
            close_time=candle.open_time + BUCKET_S,
            open=open_,
            high=open_ if high is first else close if high is last else quantize_value(high),
            low=open_ if low is first else close if low is last else quantize_value(low),
            close=close,
            volume=quantize_value(volume) if volume else 0,
            status=candle.status,
            updated_at=updated_at,
        )

    def candle(self) -> PortfolioCandle:
        """The core candle this row stores (exact at VALUE_DECIMALS)."""
        return PortfolioCandle(
            self.open_time,
            value_from_int(self.open),
            value_from_int(self.high),
            value_from_int(self.low),
            value_from_int(self.close),
            value_from_int(self.volume),
            self.status,
        )


class StoredPortfolioCandles(msgspec.Struct, frozen=True):
    """Integer candles of one portfolio read back (values at VALUE_DECIMALS), with each row's status."""

    candles: OHLCV
    statuses: list[str]


class NewestCandle(msgspec.Struct, frozen=True):
    """The newest stored bucket of a portfolio: where a restarted tracker picks up."""

    open_time: int
    close: int  # at VALUE_DECIMALS
    status: str


async def write_portfolio_candles(store: Store, rows: Sequence[PortfolioCandleRow], statement: Insert | None = None) -> None:
    """Upsert rows in ONE transaction; rows with the same key: the last one wins."""
    if not rows:
        return
    latest = {row.key: row for row in rows}  # PostgreSQL refuses to update one row twice in a statement
    params = [msgspec.structs.asdict(row) for row in latest.values()]
    statement = statement if statement is not None else upsert_statement(store.dialect, portfolio_candles)
    await store.write_many(statement, params)


def _series(row: PortfolioCandleRow) -> str:
    return f"{row.scope}\0{row.scope_id}\0{row.currency}"


class PortfolioCandleWriter(BatchWriter[PortfolioCandleRow]):
    """The batched writer (store.candle_writer.BatchWriter) for portfolio candles: `put` queues, writers batch upserts."""

    def __init__(
        self, store: Store, writers: int | None = None, max_batch: int = 5_000, retries: int = 3, retry_delay: float = 0.5
    ) -> None:
        super().__init__(
            store,
            series=_series,
            write=write_portfolio_candles,
            statement=upsert_statement(store.dialect, portfolio_candles),
            name="portfolio-candle",
            writers=writers,
            max_batch=max_batch,
            retries=retries,
            retry_delay=retry_delay,
        )


class CandleColumns(NamedTuple):
    """Stored candles of one portfolio as int64 columns in time order: values at VALUE_DECIMALS, each row's status (its
    index in core.portfolio.STATUSES) and when it was stamped for writing (ns)."""

    candles: OHLCV
    status: npt.NDArray[np.int64]
    updated_at: npt.NDArray[np.int64]


async def read_portfolio_candles(store: Store, scope: str, scope_id: str, currency: str, *, start: int | None = None,
                                 end: int | None = None, updated_after: int | None = None) -> CandleColumns:
    """Rows with start <= open_time < end (stamped after `updated_after`, if given) as int64 columns, in one pass.

    Why integers only: a year of a portfolio is 35,040 rows, read whole when a chart first asks;
    one flat int64 block (the status as its index) is built without a Python object per value.
    """
    c = portfolio_candles.c
    status = case(*((c.status == name, index) for index, name in enumerate(STATUSES)), else_=-1)
    query = (select(c.open_time, c.open, c.high, c.low, c.close, c.volume, status, c.updated_at)
             .where(c.scope == scope, c.scope_id == scope_id, c.currency == currency).order_by(c.open_time))
    if start is not None:
        query = query.where(c.open_time >= start)
    if end is not None:
        query = query.where(c.open_time < end)
    if updated_after is not None:
        query = query.where(c.updated_at > updated_after)
    await store.settled()  # rows written may still be on their way from the store's journal
    async with store.engine.connect() as conn:
        rows: list[Any] = list((await conn.execute(query)).all())
    # np.array() would index every Row element by element
    block = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=len(rows) * 8).reshape(-1, 8)
    columns = [np.ascontiguousarray(block[:, i]) for i in range(8)]
    return CandleColumns(OHLCV(*columns[:6]), columns[6], columns[7])


async def load_portfolio_candles(
    store: Store, scope: str, scope_id: str, currency: str, start: int | None = None, end: int | None = None
) -> StoredPortfolioCandles | None:
    """Rows with start <= open_time < end in time order, as int64 columns plus statuses; None when there is none."""
    read = await read_portfolio_candles(store, scope, scope_id, currency, start=start, end=end)
    if not len(read.status):
        return None
    return StoredPortfolioCandles(read.candles, [STATUSES[i] for i in read.status.tolist()])


async def newest_portfolio_candles(store: Store, scope: str | None = None) -> dict[PortfolioKey, NewestCandle]:
    """The newest stored bucket of every portfolio (of one scope, if given): one grouped read at start-up."""
    c = portfolio_candles.c
    newest = select(c.scope, c.scope_id, c.currency, func.max(c.open_time).label("open_time")).group_by(c.scope, c.scope_id, c.currency)
    if scope is not None:
        newest = newest.where(c.scope == scope)
    sub = newest.subquery()
    query = select(c.scope, c.scope_id, c.currency, c.open_time, c.close, c.status).join(
        sub,
        (c.scope == sub.c.scope) & (c.scope_id == sub.c.scope_id) & (c.currency == sub.c.currency) & (c.open_time == sub.c.open_time),
    )
    await store.settled()
    async with store.engine.connect() as conn:
        rows: list[Any] = list((await conn.execute(query)).all())
    return {(r[0], r[1], r[2]): NewestCandle(int(r[3]), int(r[4]), r[5]) for r in rows}


async def display_currencies(store: Store) -> dict[int, str]:
    """Every user's display currency that was ever set (auth.preferences; absent: its default, USD), in one read."""
    await store.settled()
    async with store.engine.connect() as conn:
        rows: list[Any] = list((await conn.execute(select(preferences.c.user_id, preferences.c.currency))).all())
    return {int(r[0]): str(r[1]) for r in rows}
