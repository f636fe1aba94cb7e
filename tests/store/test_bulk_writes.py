"""Store.write_many's bulk path on SQLite and a real PostgreSQL: new keys, rewritten keys, a key twice in a batch,
refusals that leave nothing half written; and the batched writer's lanes (max_batch, order, pending)."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from coinwire.core.errors import InvalidInput
from coinwire.core.portfolio import PortfolioCandle
from coinwire.store.candles import upsert_statement
from coinwire.store.portfolio_candles import PortfolioCandleRow, PortfolioCandleWriter
from coinwire.store.store import Store
from coinwire.store.tables import portfolio_candles
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

T0 = 1_767_225_600  # a 15-minute boundary


def row(scope_id: str, close: int, open_time: int = T0, status: str = "complete") -> dict[str, Any]:
    return {"scope": "account", "scope_id": scope_id, "currency": "USD", "open_time": open_time, "close_time": open_time + 900,
            "open": 1, "high": max(close, 1), "low": min(close, 1), "close": close, "volume": 0, "status": status,
            "updated_at": open_time * 10**9}  # fmt: skip


def filler(n: int = 150) -> list[dict[str, Any]]:
    """Rows of other portfolios: a batch large enough for PostgreSQL's bulk path (Store takes it from 100 rows)."""
    return [row(f"f{i}", 1) for i in range(n)]


async def closes(store: Store) -> dict[tuple[str, int], tuple[int, str]]:
    c = portfolio_candles.c
    await store.settled()  # with the journal: what was appended is applied by its helper
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(c.scope_id, c.open_time, c.close, c.status))).all()
    return {(r[0], int(r[1])): (int(r[2]), r[3]) for r in rows}


async def test_new_rows_then_a_batch_rewriting_some_and_adding_others(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        upsert = upsert_statement(store.dialect, portfolio_candles)
        await store.write_many(upsert, [row(str(i), 100 + i) for i in range(2_000)])  # every key new (PostgreSQL: COPY)
        # half the keys exist: PostgreSQL refuses the COPY (unique violation) and upserts the same rows instead
        await store.write_many(upsert, [row(str(i), 5_000 + i, status="partial") for i in range(1_000, 3_000)])
        got = await closes(store)
        assert len(got) == 3_000
        assert got[("0", T0)] == (100, "complete") and got[("999", T0)] == (1_099, "complete")
        assert got[("1000", T0)] == (6_000, "partial") and got[("2999", T0)] == (7_999, "partial")


async def test_one_key_twice_in_a_batch_the_last_wins(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        upsert = upsert_statement(store.dialect, portfolio_candles)
        await store.write_many(upsert, [row("1", 1), *filler()])
        # PostgreSQL refuses an upsert touching one row twice in one statement: the rows go one by one, in order
        await store.write_many(upsert, [row("1", 7), row("2", 3), *filler(), row("1", 8)])
        got = await closes(store)
        assert len(got) == 152 and got[("1", T0)] == (8, "complete") and got[("2", T0)] == (3, "complete")


async def test_a_do_nothing_insert_keeps_what_is_stored_and_adds_the_rest(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        dialect = sqlite if store.dialect == "sqlite" else postgresql
        nothing = dialect.insert(portfolio_candles).on_conflict_do_nothing()
        await store.write_many(nothing, [row("1", 1)])
        await store.write_many(nothing, [row("1", 9), row("2", 2), *filler()])
        got = await closes(store)
        assert len(got) == 152 and got[("1", T0)] == (1, "complete") and got[("2", T0)] == (2, "complete")


# not through the journal: there a bulk write is acknowledged once appended, and its refusal comes when it is applied
@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
async def test_a_plain_insert_meeting_a_stored_key_is_refused_and_writes_nothing(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        await store.write_many(insert(portfolio_candles), [row("1", 1)])
        with pytest.raises((IntegrityError, sqlite3.IntegrityError)):  # SQLite's single-hop writer raises the driver's own
            await store.write_many(insert(portfolio_candles), [row("2", 2), *filler(), row("1", 9), row("3", 3)])
        assert await closes(store) == {("1", T0): (1, "complete")}


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_value_too_long_is_refused_with_its_code_and_writes_nothing(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        upsert = upsert_statement(store.dialect, portfolio_candles)
        await store.write_many(upsert, [row("1", 1)])  # a small batch: one statement a row
        for rows in ([row("2", 2), *filler(), row("x" * 65, 3)], [row("1", 5), *filler(), row("x" * 65, 3)]):  # new keys; a stored one
            with pytest.raises(InvalidInput) as refused:
                await store.write_many(upsert, rows)
            assert refused.value.code == "store_value_refused" and "too long" in str(refused.value)
        assert await closes(store) == {("1", T0): (1, "complete")}


async def test_the_writer_commits_in_batches_of_at_most_max_batch_in_the_order_put(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        writer = PortfolioCandleWriter(store, max_batch=300)
        await writer.start()
        try:

            def candle_row(scope_id: str, close: int) -> PortfolioCandleRow:
                value = Decimal(close)
                return PortfolioCandleRow.of("account", scope_id, "USD", PortfolioCandle(T0, value, value, value, value, Decimal(0)), T0)

            writer.put(candle_row(str(i), 1) for i in range(1_000))  # a generator, as market candles come
            assert writer.pending == 1_000
            writer.put([candle_row(str(i), 2) for i in range(500)])  # a second version of half of them
            await asyncio.sleep(0)
            await writer.flush()
            assert writer.pending == 0 and writer.rows_put == 1_500 and writer.rows_written == 1_500
            # each writer's lane: its rows cut into batches of at most max_batch
            assert writer.writers <= writer.transactions <= 1_500 // 300 + writer.writers
            got = await closes(store)
            assert len(got) == 1_000
            assert {got[(str(i), T0)][0] for i in range(500)} == {200_000_000}  # the later version, at 8 places
            assert {got[(str(i), T0)][0] for i in range(500, 1_000)} == {100_000_000}
        finally:
            await writer.close()
