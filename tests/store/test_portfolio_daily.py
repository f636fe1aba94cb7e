"""Daily stats rows on SQLite and a real PostgreSQL: exact round trips, an idempotent upsert per day, ranges and pages,
each portfolio's latest day and peak."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from coinwire.core.daily_stats import DailyStats
from coinwire.store.portfolio_daily import last_days, load_days, write_days
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

DAY0 = date(2026, 3, 1)


def day(i: int, closing: str = "1000.12345678", status: str = "recorded") -> DailyStats:
    d = DAY0 + timedelta(days=i)
    start = 1_772_323_200 + i * 86_400
    if status == "missing":
        return DailyStats(day=d.isoformat(), start=start, end=start + 86_400, currency="EUR", status=status)
    return DailyStats(day=d.isoformat(), start=start, end=start + 86_400, currency="EUR", status=status,
                      closing=Decimal(closing), opening=Decimal("990"), pnl=Decimal("-0.5"), realised=Decimal("1.25"),
                      unrealised=Decimal("-1.75"), fees=Decimal("0.00000001"), funding=Decimal("-2"), deposits=Decimal("11"),
                      withdrawals=Decimal(0), trades=7, closing_trades=3, winning_trades=2, win_rate=Decimal(2) / 3,
                      exposure=Decimal("0.5"), peak=Decimal("1200"), drawdown=Decimal("0.1"))


async def test_days_round_trip_upsert_and_page(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        await write_days(store, "account", "7", [day(i) for i in range(5)], now_ns=1)
        await write_days(store, "account", "7", [day(2, closing="123456789.5"), day(3, status="missing")], now_ns=2)
        await write_days(store, "run", "r-1", [day(0, closing="5")], now_ns=3)
        got = await load_days(store, "account", "7")
        assert [d.day for d in got] == [(DAY0 + timedelta(days=i)).isoformat() for i in range(5)]
        assert got[0] == DailyStats(**{**{f: getattr(day(0), f) for f in DailyStats.__struct_fields__},
                                       "win_rate": Decimal("0.66666667")})  # stored at 8 decimals
        assert got[2].closing == Decimal("123456789.5") and got[3].status == "missing" and got[3].closing is None
        assert [d.day for d in await load_days(store, "account", "7", start="2026-03-02", end="2026-03-04")] == \
            ["2026-03-02", "2026-03-03", "2026-03-04"]
        assert [d.day for d in await load_days(store, "account", "7", after="2026-03-03", limit=1)] == ["2026-03-04"]
        assert await load_days(store, "account", "8") == []
        latest = await last_days(store)
        assert set(latest) == {("account", "7"), ("run", "r-1")}
        assert latest[("account", "7")][0].day == "2026-03-05" and latest[("account", "7")][1] == Decimal("123456789.5")
        assert latest[("run", "r-1")][1] == Decimal(5)
