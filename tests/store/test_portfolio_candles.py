"""Portfolio candle rows and their batched writer on SQLite and a real PostgreSQL: exact round trips, upserts,
thousands of portfolios closing at one boundary in few transactions, range reads with statuses, newest row per portfolio."""

from __future__ import annotations

from decimal import Decimal

from coinwire.core.portfolio import BUCKET_S, PortfolioCandle
from coinwire.store.portfolio_candles import (
    NewestCandle,
    PortfolioCandleRow,
    PortfolioCandleWriter,
    load_portfolio_candles,
    newest_portfolio_candles,
    write_portfolio_candles,
)
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

T0 = 1_767_225_600  # a 15-minute boundary


def candle(i: int, close: str = "100.5", status: str = "complete") -> PortfolioCandle:
    return PortfolioCandle(
        T0 + i * BUCKET_S, Decimal("100"), Decimal("101.123456789"), Decimal("99.99999999"), Decimal(close), Decimal("7"), status
    )


def row(scope_id: str, i: int, close: str = "100.5", status: str = "complete", scope: str = "account") -> PortfolioCandleRow:
    return PortfolioCandleRow.of(scope, scope_id, "USD", candle(i, close, status), (T0 + i * BUCKET_S) * 10**9)


async def test_rows_round_trip_exactly_and_upsert_by_key(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        await write_portfolio_candles(store, [row("1", i) for i in range(3)] + [row("2", 0), row("1", 0, scope="run")])
        await write_portfolio_candles(store, [row("1", 1, close="123456789.12345678", status="partial")])
        got = await load_portfolio_candles(store, "account", "1", "USD")
        assert got is not None
        assert got.candles.time.tolist() == [T0, T0 + BUCKET_S, T0 + 2 * BUCKET_S]
        assert got.candles.close.tolist() == [10_050_000_000, 12_345_678_912_345_678, 10_050_000_000]
        assert got.candles.high.tolist() == [10_112_345_679] * 3  # 101.123456789 rounded half to even at 8 places
        assert got.statuses == ["complete", "partial", "complete"]
        ranged = await load_portfolio_candles(store, "account", "1", "USD", T0 + BUCKET_S, T0 + 2 * BUCKET_S)
        assert ranged is not None and ranged.candles.time.tolist() == [T0 + BUCKET_S]
        assert await load_portfolio_candles(store, "account", "1", "EUR") is None
        assert await load_portfolio_candles(store, "wallet_set", "1", "USD") is None
        back = row("1", 1, close="123456789.12345678").candle()
        assert back.close == Decimal("123456789.12345678") and back.low == Decimal("99.99999999")


async def test_newest_row_per_portfolio(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        await write_portfolio_candles(store, [row("1", i, close=str(i)) for i in range(4)] + [row("2", 9, status="partial")])
        newest = await newest_portfolio_candles(store)
        assert newest == {
            ("account", "1", "USD"): NewestCandle(T0 + 3 * BUCKET_S, 300_000_000, "complete"),
            ("account", "2", "USD"): NewestCandle(T0 + 9 * BUCKET_S, 10_050_000_000, "partial"),
        }
        assert await newest_portfolio_candles(store, "run") == {}


async def test_thousands_of_portfolios_closing_at_one_boundary_cost_few_transactions(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        writer = PortfolioCandleWriter(store, max_batch=2_000)
        await writer.start()
        try:
            writer.put(row(str(i), 0, close=str(i)) for i in range(3_000))
            await writer.flush()
            assert writer.rows_written == 3_000 and writer.failed_rows == 0
            assert writer.transactions <= 2 * writer.writers
            got = await load_portfolio_candles(store, "account", "2999", "USD")
            assert got is not None and got.candles.close.tolist() == [299_900_000_000]
        finally:
            await writer.close()
