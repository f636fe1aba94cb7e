"""Candle rows and the batched CandleWriter on SQLite and a real PostgreSQL: exact round trips, upserts,
thousands of series closing at once in a few transactions, per-series order, failures retried then counted."""

from __future__ import annotations

import asyncio

import pytest

from coinwire.store import Store
from coinwire.store.candle_writer import CandleWriter
from coinwire.store.candles import CandleRow, load_candles, stored_intervals, write_candles
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

T0 = 1_700_000_040  # a minute boundary


def row(symbol: str = "BTC/USDT", minute: int = 0, price: int = 6_173_763, interval: int = 60, **fields: int) -> CandleRow:
    values = {
        "exchange": "binance", "symbol": symbol, "interval_s": interval, "open_time": T0 + minute * interval,
        "close_time": T0 + (minute + 1) * interval, "price_decimals": 2, "size_decimals": 8,
        "open": price, "high": price + 50, "low": price - 70, "close": price + 10,
        "volume": 123_456_789_012_345, "trades": 42, "updated_at": (T0 + 59) * 10**9,
    }  # fmt: skip
    values.update(fields)
    return CandleRow(**values)  # type: ignore[arg-type]


async def test_rows_round_trip_exactly_and_upsert_by_key(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        await write_candles(store, [row(minute=m, price=100 + m) for m in range(3)] + [row("ETH/USDT")])
        await write_candles(store, [row(minute=1, price=999, trades=7)])  # a late trade corrected minute 1
        got = await load_candles(store, "binance", "BTC/USDT", 60)
        assert got is not None and (got.price_decimals, got.size_decimals) == (2, 8)
        assert got.candles.time.tolist() == [T0, T0 + 60, T0 + 120]
        assert got.candles.open.tolist() == [100, 999, 102]
        assert got.candles.volume.tolist() == [123_456_789_012_345] * 3  # beyond float precision: exact
        assert (await load_candles(store, "binance", "BTC/USDT", 60, T0 + 60, T0 + 120)).candles.time.tolist() == [T0 + 60]  # type: ignore[union-attr]
        assert await load_candles(store, "binance", "BTC/USDT", 3600) is None
        await write_candles(store, [row(interval=3600)])
        assert await stored_intervals(store, "binance", "BTC/USDT") == [60, 3600]


async def test_thousands_of_series_closing_at_once_cost_few_transactions(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        writer = CandleWriter(store, max_batch=2_000)
        await writer.start()
        try:
            symbols = [f"C{i:04d}/USDT" for i in range(3_000)]
            writer.put(row(symbol, minute=0, price=1_000 + i) for i, symbol in enumerate(symbols))
            await writer.flush()
            assert writer.rows_written == 3_000 and writer.failed_rows == 0
            # each writer drains whatever is queued: 3,000 rows need at most ceil(3000/2000) per writer
            assert writer.transactions <= 2 * writer.writers
            got = await load_candles(store, "binance", "C2999/USDT", 60)
            assert got is not None and got.candles.open.tolist() == [3_999]
        finally:
            await writer.close()


async def test_versions_of_one_candle_commit_in_the_order_they_were_put(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        writer = CandleWriter(store, writers=3, max_batch=7)
        await writer.start()
        try:
            for version in range(50):
                writer.put([row(symbol, price=version) for symbol in ("A/USDT", "B/USDT", "C/USDT", "D/USDT")])
                if version % 9 == 0:
                    await asyncio.sleep(0)  # let writers commit some versions in between
            await writer.flush()
            for symbol in ("A/USDT", "B/USDT", "C/USDT", "D/USDT"):
                got = await load_candles(store, "binance", symbol, 60)
                assert got is not None and got.candles.open.tolist() == [49]
        finally:
            await writer.close()


async def test_a_failing_batch_is_retried_then_dropped_and_counted(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/candles.db")
    await store.start()
    writer = CandleWriter(store, retries=2, retry_delay=0.01)
    await writer.start()
    try:
        async with store.engine.begin() as conn:  # break the table under the writer
            await conn.exec_driver_sql("ALTER TABLE candles RENAME TO candles_away")
        writer.put([row()])
        await writer.flush()
        assert writer.failed_rows == 1 and writer.transactions == 0
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql("ALTER TABLE candles_away RENAME TO candles")
        writer.put([row(price=5)])
        await writer.flush()  # the writer survived the failures
        got = await load_candles(store, "binance", "BTC/USDT", 60)
        assert got is not None and got.candles.open.tolist() == [5]
    finally:
        await writer.close()
        await store.close()


async def test_put_before_start_is_refused(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/c.db")
    with pytest.raises(RuntimeError):
        CandleWriter(store).put([row()])
    assert CandleWriter(store).writers == 1  # SQLite: one write lock, one writer
