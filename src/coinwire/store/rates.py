"""Rate rows in the store: one price per market per minute, written once, read back by time range.

Why INSERT .. ON CONFLICT DO NOTHING (not the candles' upsert): a rate is the seed's rate
writer's record of what the market was at that minute, idempotent by (market, minute); a
retriever that runs twice for one minute (a retry, a second process, a restart) must leave
the first rate as it was and tell its caller nothing new was written, so that nothing is
published twice. `RETURNING` names the rows the database actually took, on SQLite and
PostgreSQL alike, in the same statement: no read-then-write race between two writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from coinwire.store.store import Store
from coinwire.store.tables import rates

__all__ = ["MINUTE_MS", "RateRow", "has_rates", "insert_rates", "load_rates"]

MINUTE_MS = 60_000


class RateRow(msgspec.Struct, frozen=True, kw_only=True):
    """The rate of one market for the minute starting at `minute_ms` (unix ms), with where and when it was taken."""

    exchange: str
    symbol: str
    minute_ms: int
    price: Decimal
    source: str  # "ticker" (the ticker cache) | "ccxt" (fetched from the exchange)
    received_ms: int

    @property
    def key(self) -> tuple[str, str, int]:
        return self.exchange, self.symbol, self.minute_ms


@lru_cache(maxsize=4)
def _insert_statement(dialect: str) -> Insert:
    statement = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(rates)
    return statement.on_conflict_do_nothing(index_elements=[rates.c.exchange, rates.c.symbol, rates.c.minute_ms]).returning(
        rates.c.exchange, rates.c.symbol, rates.c.minute_ms
    )


async def insert_rates(store: Store, rows: Sequence[RateRow]) -> list[RateRow]:
    """Write the rows whose (exchange, symbol, minute) is not stored yet, in one transaction; returns those written.

    Of several rows for one minute in `rows`, the first is the one offered. A minute not on a
    minute boundary is refused (ValueError): it would make a second key for the same minute.
    """
    offered: dict[tuple[str, str, int], RateRow] = {}
    for row in rows:
        if row.minute_ms % MINUTE_MS:
            raise ValueError(f"minute_ms {row.minute_ms} is not the start of a minute")
        offered.setdefault(row.key, row)
    if not offered:
        return []
    params = [
        {"exchange": r.exchange, "symbol": r.symbol, "minute_ms": r.minute_ms, "price": str(r.price), "source": r.source,
         "received_ms": r.received_ms}
        for r in offered.values()
    ]
    async with store.engine.begin() as conn:
        result = await conn.execute(_insert_statement(store.dialect), params)
        written = {(e, s, int(m)) for e, s, m in result.all()}
    return [row for key, row in offered.items() if key in written]


async def load_rates(store: Store, exchange: str, symbol: str, start_ms: int, end_ms: int, limit: int) -> list[RateRow]:
    """Rows with start_ms <= minute_ms < end_ms, oldest first, at most `limit` of them."""
    c = rates.c
    query = (
        select(c.exchange, c.symbol, c.minute_ms, c.price, c.source, c.received_ms)
        .where(c.exchange == exchange, c.symbol == symbol, c.minute_ms >= start_ms, c.minute_ms < end_ms)
        .order_by(c.minute_ms)
        .limit(limit)
    )
    await store.settled()  # change sets acknowledged by the journal are in the database first
    async with store.engine.connect() as conn:
        found = (await conn.execute(query)).all()
    return [
        RateRow(exchange=e, symbol=s, minute_ms=int(m), price=Decimal(p), source=src, received_ms=int(r))
        for e, s, m, p, src, r in found
    ]


async def has_rates(store: Store, exchange: str, symbol: str | None = None) -> bool:
    """Whether any rate of the exchange (of its `symbol`, when given) is stored: one primary-key seek."""
    c = rates.c
    query = select(c.minute_ms).where(c.exchange == exchange)
    if symbol is not None:
        query = query.where(c.symbol == symbol)
    await store.settled()
    async with store.engine.connect() as conn:
        return (await conn.execute(query.limit(1))).first() is not None
