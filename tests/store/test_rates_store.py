"""Rate rows on SQLite (directly and beside its journal) and PostgreSQL: a minute is written once, and
`insert_rates` says which rows the database took; ranges read back exactly, oldest first."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from coinwire.store import Store
from coinwire.store.rates import RateRow, insert_rates, load_rates
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

T0 = 1_723_161_240_000  # a minute's start, unix ms


def rate(minute: int, price: str, symbol: str = "BTC/USDT", source: str = "ticker") -> RateRow:
    return RateRow(exchange="demo", symbol=symbol, minute_ms=T0 + minute * 60_000, price=Decimal(price), source=source,
                   received_ms=T0 + minute * 60_000 + 250)


async def test_a_minute_is_written_once_and_the_caller_learns_which_rows_were_new(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        first = [rate(0, "61000.10"), rate(1, "61000.20"), rate(0, "1.5", symbol="SOL/USDT")]
        assert await insert_rates(store, first) == first
        again = [rate(1, "99999.99", source="ccxt"), rate(2, "61000.30")]  # minute 1 again, at another price
        assert await insert_rates(store, again) == [again[1]]
        assert await insert_rates(store, again) == []
        assert await insert_rates(store, []) == []
        stored = await load_rates(store, "demo", "BTC/USDT", T0, T0 + 10 * 60_000, 100)
        assert stored == [first[0], first[1], again[1]]  # minute 1 kept its first price, exactly
        assert stored[1].price == Decimal("61000.20") and stored[1].source == "ticker"


async def test_two_rows_for_one_minute_in_one_call_write_the_first(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        written = await insert_rates(store, [rate(0, "1.00"), rate(0, "2.00")])
        assert [r.price for r in written] == [Decimal("1.00")]
        assert [r.price for r in await load_rates(store, "demo", "BTC/USDT", T0, T0 + 60_000, 10)] == [Decimal("1.00")]


async def test_ranges_are_half_open_ordered_limited_and_per_market(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        rows = [rate(m, f"{100 + m}.{m:02d}") for m in (5, 1, 3, 0, 4, 2)] + [rate(1, "7", symbol="ETH/USDT")]
        await insert_rates(store, rows)
        got = await load_rates(store, "demo", "BTC/USDT", T0 + 60_000, T0 + 4 * 60_000, 100)
        assert [r.minute_ms for r in got] == [T0 + 60_000, T0 + 120_000, T0 + 180_000]
        assert [str(r.price) for r in got] == ["101.01", "102.02", "103.03"]
        assert len(await load_rates(store, "demo", "BTC/USDT", T0, T0 + 10 * 60_000, 2)) == 2
        assert await load_rates(store, "other", "BTC/USDT", T0, T0 + 10 * 60_000, 100) == []
        assert [r.price for r in await load_rates(store, "demo", "ETH/USDT", 0, 2**62, 100)] == [Decimal("7")]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)  # a journal has one server (test_journal)
async def test_concurrent_writers_of_the_same_minute_write_it_once_between_them(database: Database) -> None:  # noqa: F811
    first, second = database.store(), database.store()
    await first.start()
    await second.start()
    try:
        rows = [rate(m, f"{m}.5") for m in range(20)]
        results = await asyncio.gather(insert_rates(first, rows), insert_rates(second, rows))
        assert sorted(r.minute_ms for result in results for r in result) == [r.minute_ms for r in rows]
    finally:
        await first.close()
        await second.close()


async def test_a_minute_off_its_boundary_is_refused(tmp_path: object) -> None:
    async with Store(f"sqlite:///{tmp_path}/s.db") as store:
        with pytest.raises(ValueError, match="start of a minute"):
            await insert_rates(store, [RateRow(exchange="demo", symbol="BTC/USDT", minute_ms=T0 + 1, price=Decimal(1),
                                               source="ticker", received_ms=T0)])
