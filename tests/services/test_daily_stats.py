"""Daily stats land at each owner's local midnight (New York, London, Kathmandu, across DST changes), with figures
equal to an independent computation, missed days caught up, missing closes never invented (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from coinwire.auth.preferences import PreferencesRepository
from coinwire.bus.memory import MemoryBus
from coinwire.cache.memory import MemoryCache
from coinwire.config.market_data import MarketDataConfig
from coinwire.core.accounts import Account
from coinwire.core.daily_stats import DailyStats
from coinwire.core.numbers import ATTO
from coinwire.core.orders import Fill, OrderType, Side
from coinwire.core.portfolio import BUCKET_S, PortfolioCandle
from coinwire.core.wallets import LineKind, Wallet, WalletLine, WalletSet
from coinwire.services.daily_stats import DailyStatsRecorder
from coinwire.services.market_data import MarketData
from coinwire.store.codec import ChangeSet
from coinwire.store.portfolio_candles import PortfolioCandleRow, write_portfolio_candles
from coinwire.store.portfolio_daily import load_days
from coinwire.store.store import Store
from tests.store.test_store_contract import BTC_USDT, Database, database, order, store  # noqa: F401 - fixtures

NS = 1_000_000_000
SETTLE = 60
FIRST = int(datetime(2026, 3, 6, tzinfo=UTC).timestamp())  # first candle's open
LAST_CLOSE = int(datetime(2026, 3, 31, tzinfo=UTC).timestamp())  # last candle's close
ZONES = {1: "America/New_York", 2: "Europe/London", 3: "Asia/Kathmandu"}
ACCOUNTS = {"11": 1, "12": 2, "13": 3}
DEPOSIT_AT = int(datetime(2026, 3, 12, 15, 0, 7, tzinfo=UTC).timestamp()) * NS  # account 11: +500 USDT
ALLOCATED_AT = int(datetime(2026, 3, 15, 9, tzinfo=UTC).timestamp()) * NS  # run-x: +200 USDT from account 12
BUY_AT, SELL_AT = (int(datetime(2026, 3, 12, h, tzinfo=UTC).timestamp()) * NS for h in (10, 20))
DROPPED = int(datetime(2026, 3, 19, 18, 15, tzinfo=UTC).timestamp())  # account 13: no candle ends at Kathmandu's midnight
MISSING = int(datetime(2026, 3, 10, tzinfo=UTC).timestamp())  # account 12: the candle ending at London's midnight is "missing"
STOPPED = int(datetime(2026, 3, 20, tzinfo=UTC).timestamp())  # account 12: "partial", stored before its end
STARTED = int(datetime(2026, 3, 22, tzinfo=UTC).timestamp())  # account 12: "partial", the tracker came up inside it


def value(scope_id: str, end: int) -> Decimal:
    """The portfolio's value at a boundary: a slow drift, plus what was moved in before (the reference of every close)."""
    base = Decimal(1000 + 100 * int(ACCOUNTS.get(scope_id, 9))) + Decimal((end - FIRST) // BUCKET_S) * Decimal("0.25")
    if scope_id == "11" and end * NS >= DEPOSIT_AT:
        base += 500
    if scope_id == "run-x":
        base = Decimal(0) if end * NS < ALLOCATED_AT else Decimal(200) + Decimal((end - FIRST) % 7)
    return base


def candles(scope: str, scope_id: str) -> list[PortfolioCandleRow]:
    rows = []
    for open_time in range(FIRST, LAST_CLOSE, BUCKET_S):
        end = open_time + BUCKET_S
        if scope_id == "13" and end == DROPPED:
            continue
        close = value(scope_id, end)
        status, written = "complete", end * NS
        if scope_id == "12" and end == MISSING:
            status = "missing"
        if scope_id == "12" and end == STOPPED:  # stored when the server stopped inside it: not the value at its end
            status, written = "partial", (end - 60) * NS
        if scope_id == "12" and end == STARTED:  # the server came up inside it: its close is the value at its end
            status = "partial"
        candle = PortfolioCandle(open_time, close, close, close, close, Decimal(0), status)
        rows.append(PortfolioCandleRow.of(scope, scope_id, "USD", candle, written))
    return rows


def line(id: int, wallet_id: int, ts: int, kind: LineKind, amount: str, fill_id: int | None = None) -> WalletLine:
    return WalletLine(id=id, wallet_id=wallet_id, ts=ts, kind=kind, movement=int(Decimal(amount) * ATTO), fill_id=fill_id)


def fill(id: int, side: Side, ts: int, notional: str) -> Fill:
    return Fill(id=id, order_id=1, client_oid="oid-1", exchange="binance", symbol="BTC/USDT", side=side, order_type=OrderType.LIMIT,
                price=5_000_000, size=10_000, notional=int(Decimal(notional) * ATTO), fee=0, maker=True, ts=ts, account_id=11)


async def seed(store: Store) -> None:  # noqa: F811
    """Three owners in three zones, their accounts' wallets, lines and fills, a run of user 2, and every portfolio's candles."""
    prefs = PreferencesRepository(store)
    for user_id, zone in ZONES.items():
        await prefs.update(user_id, {"time_zone": zone})
    changes = ChangeSet()
    changes.accounts = tuple(Account(id=int(a), exchange="binance", kind="paper", name=f"acct {a}", owner_id=u, created_at=FIRST * NS)
                             for a, u in ACCOUNTS.items())
    changes.wallet_sets = [WalletSet(id=500, run_id="run-x", description="run x", created_at=FIRST * NS)]
    changes.wallets = [Wallet(id=101, exchange="binance", currency="USDT", account_id=11),
                       Wallet(id=102, exchange="binance", currency="BTC", account_id=11),
                       Wallet(id=121, exchange="binance", currency="USDT", account_id=12),
                       Wallet(id=122, exchange="binance", currency="USDT", account_id=12, wallet_set_id=500),
                       Wallet(id=131, exchange="binance", currency="USDT", account_id=13)]
    changes.add_order(order(1, account_id=11, wallet_set_id=None), BTC_USDT)
    changes.add_fill(fill(1, Side.BUY, BUY_AT, "5000"), BTC_USDT)
    changes.add_fill(fill(2, Side.SELL, SELL_AT, "5100"), BTC_USDT)
    changes.wallet_lines = [
        line(1, 101, FIRST * NS, LineKind.VIRTUAL_TX, "10000"),
        line(2, 121, FIRST * NS, LineKind.VIRTUAL_TX, "10000"),
        line(3, 131, FIRST * NS, LineKind.VIRTUAL_TX, "10000"),
        line(4, 102, BUY_AT, LineKind.TRADE, "0.1", 1), line(5, 101, BUY_AT, LineKind.TRADE, "-5000", 1),
        line(6, 101, BUY_AT, LineKind.FEE, "-5", 1),
        line(7, 102, SELL_AT, LineKind.TRADE, "-0.1", 2), line(8, 101, SELL_AT, LineKind.TRADE, "5100", 2),
        line(9, 101, SELL_AT, LineKind.FEE, "-5.1", 2),
        line(10, 101, DEPOSIT_AT, LineKind.VIRTUAL_TX, "500"),
        line(11, 121, ALLOCATED_AT, LineKind.ALLOCATE, "-200"), line(12, 122, ALLOCATED_AT, LineKind.ALLOCATE, "200"),
    ]
    changes.owners = (("run", "run-x", 2), ("wallet_set", "500", 2))
    await store.apply(changes)
    rows = [r for scope_id in ACCOUNTS for r in candles("account", scope_id)] + candles("run", "run-x")
    await write_portfolio_candles(store, rows)


@pytest.fixture
async def recorder(store: Store) -> AsyncIterator[DailyStatsRecorder]:  # noqa: F811
    await seed(store)
    bus = MemoryBus()
    await bus.start()
    market = MarketData(MarketDataConfig(), bus, MemoryCache(), store)  # converts USDT at its peg to USD
    try:
        yield DailyStatsRecorder(store, market, pegs=MarketDataConfig().pegs, settle_seconds=SETTLE, clock=lambda: 0)
    finally:
        await bus.close()


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


async def days_of(store: Store, scope: str, scope_id: str) -> dict[str, DailyStats]:  # noqa: F811
    return {d.day: d for d in await load_days(store, scope, scope_id)}


@pytest.mark.parametrize(("scope_id", "day", "start", "end"), [
    ("11", "2026-03-08", "2026-03-08T05:00", "2026-03-09T04:00"),  # New York springs forward: 23 hours
    ("12", "2026-03-29", "2026-03-29T00:00", "2026-03-29T23:00"),  # London springs forward: 23 hours
    ("13", "2026-03-10", "2026-03-09T18:15", "2026-03-10T18:15"),  # Kathmandu, UTC+05:45
])
async def test_a_day_lands_once_its_owners_midnight_has_passed(recorder: DailyStatsRecorder, store: Store,  # noqa: F811
                                                               scope_id: str, day: str, start: str, end: str) -> None:
    midnight = utc(end)
    await recorder.run_pass((midnight + SETTLE - 1) * NS)
    assert day not in await days_of(store, "account", scope_id)  # the midnight passed, but not the writer's settle time
    await recorder.run_pass((midnight + SETTLE) * NS)
    recorded = (await days_of(store, "account", scope_id))[day]
    assert (recorded.start, recorded.end, recorded.status) == (utc(start), midnight, "recorded")
    assert recorded.closing == value(scope_id, midnight)
    later = await days_of(store, "account", scope_id)
    assert max(later) == day  # nothing after it yet


async def test_every_day_equals_an_independent_computation_and_missed_days_are_caught_up(
        recorder: DailyStatsRecorder, store: Store) -> None:  # noqa: F811
    written = await recorder.run_pass((LAST_CLOSE + 7 * 86_400) * NS)  # the server was down for all of it: caught up at once
    assert written > 0
    assert await recorder.run_pass((LAST_CLOSE + 8 * 86_400) * NS) == 0  # idempotent: nothing more to record
    for scope, scope_id, owner in [("account", "11", 1), ("account", "12", 2), ("account", "13", 3), ("run", "run-x", 2)]:
        tz = ZoneInfo(ZONES[owner])
        days = await days_of(store, scope, scope_id)
        first = datetime.fromtimestamp(FIRST, UTC).astimezone(tz).date()
        last = datetime.fromtimestamp(LAST_CLOSE, UTC).astimezone(tz).date() - timedelta(days=1)
        expected_days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        if datetime.combine(last + timedelta(days=1), datetime.min.time(), tz).timestamp() > LAST_CLOSE:
            expected_days.pop()  # its closing midnight is after the newest candle: it waits
        assert sorted(days) == expected_days, scope_id
        for name, got in days.items():
            d = date.fromisoformat(name)
            start = int(datetime.combine(d, datetime.min.time(), tz).timestamp())
            end = int(datetime.combine(d + timedelta(days=1), datetime.min.time(), tz).timestamp())
            assert (got.start, got.end) == (start, end)
            if (scope_id, end) in {("13", DROPPED), ("12", MISSING), ("12", STOPPED)}:
                assert got.status == "missing" and got.closing is None and got.pnl is None
                continue
            assert got.status == "recorded" and got.closing == value(scope_id, end)
            moved_in = Decimal(10_000) if scope_id in ACCOUNTS and start < FIRST <= end else Decimal(0)  # the funding
            if scope_id == "11" and start * NS < DEPOSIT_AT <= end * NS:
                moved_in += 500
            if scope_id == "run-x" and start * NS < ALLOCATED_AT <= end * NS:
                moved_in = Decimal(200)
            assert got.deposits == moved_in and got.withdrawals == 0
            opening_missing = start <= FIRST or (scope_id, start) in {("13", DROPPED), ("12", MISSING), ("12", STOPPED)}
            if opening_missing:
                assert got.opening is None and got.pnl is None
            else:
                assert got.opening == value(scope_id, start)
                assert got.pnl == value(scope_id, end) - value(scope_id, start) - moved_in
            trading_day = scope_id == "11" and start * NS < BUY_AT <= end * NS
            assert got.trades == (2 if trading_day else 0)
            assert got.fees == (Decimal("10.1") if trading_day else 0)
            if trading_day:  # bought 0.1 BTC for 5000, sold it for 5100: +100 against its cost, 10.1 of fees
                assert got.realised == Decimal("89.9") and got.win_rate == 1 and got.closing_trades == 1
            closes = [value(scope_id, o.end) for o in days.values() if o.end <= end and o.closing is not None]
            assert got.peak == max(closes)
    # the allocation is the run's deposit, and nothing for the account it came from
    account12 = (await days_of(store, "account", "12"))["2026-03-15"]
    assert account12.deposits == 0 and account12.withdrawals == 0


async def test_a_pass_with_no_midnight_since_the_last_reads_nothing_and_a_waiting_day_is_looked_at_again(
        recorder: DailyStatsRecorder, store: Store) -> None:  # noqa: F811
    first = utc("2026-03-12T06:00")  # after New York's (04:00 UTC) and before everyone else's next midnight
    assert await recorder.run_pass(first * NS) > 0
    newcomer = [r for r in candles("account", "11") if r.open_time < first]
    await write_portfolio_candles(store, [PortfolioCandleRow.of("wallet_set", "500", "USD", r.candle(), r.updated_at)
                                          for r in newcomer])
    assert await recorder.run_pass((first + 900) * NS) == 0  # no midnight since: the new portfolio waits
    kathmandu_midnight = utc("2026-03-12T18:15")
    assert await recorder.run_pass((kathmandu_midnight + SETTLE) * NS) > 0  # one zone's midnight: every due day
    assert "2026-03-11" in await days_of(store, "wallet_set", "500")  # London's day (its owner's zone)

    # a day whose closing candle the tracker has not stored yet waits, and is looked at on the next pass
    london_midnight = utc("2026-03-13T00:00")
    await recorder.run_pass((london_midnight + SETTLE) * NS)
    assert "2026-03-12" not in await days_of(store, "wallet_set", "500")  # the set's candles stop before it
    late = [r for r in candles("account", "11") if first <= r.open_time < london_midnight]
    await write_portfolio_candles(store, [PortfolioCandleRow.of("wallet_set", "500", "USD", r.candle(), r.updated_at)
                                          for r in late])
    assert await recorder.run_pass((london_midnight + 900) * NS) > 0  # no midnight since, but a day was waiting
    assert (await days_of(store, "wallet_set", "500"))["2026-03-12"].closing == value("11", london_midnight)
