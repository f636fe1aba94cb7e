"""Portfolio candles read back and rolled up: equal to an independent rollup in UTC, Europe/London across a DST
change and Asia/Kathmandu; missing buckets left out, never invented; exact decimals; paging and errors as the market's."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coinwire.core.errors import InvalidInput
from coinwire.core.portfolio import BUCKET_S, PortfolioCandle
from coinwire.services.portfolio_ohlcv import RECHECK_S, PortfolioOhlcv
from coinwire.store import Store
from coinwire.store.portfolio_candles import PortfolioCandleRow, write_portfolio_candles

# 2026-03-27 00:00 UTC: Europe/London springs forward on Sunday 2026-03-29 01:00 UTC
T0 = int(datetime(2026, 3, 27, tzinfo=UTC).timestamp())
DAYS = 5
MISSING = {100, 101, 102, 300}  # buckets the tracker was down for


def candles() -> list[PortfolioCandle]:
    """Five days of 15-minute candles with exact 8-decimal values, a few of them missing and one partial."""
    rnd = random.Random(26)
    out, value = [], Decimal("1000.00000000")
    for i in range(DAYS * 96):
        opened = value
        samples = [opened + Decimal(rnd.randint(-5_000_000_000, 5_000_000_000)).scaleb(-8) for _ in range(3)]
        value = samples[-1]
        status = "missing" if i in MISSING else "partial" if i == 7 else "complete"
        out.append(PortfolioCandle(T0 + i * BUCKET_S, opened, max(opened, *samples), min(opened, *samples), value,
                                   Decimal(rnd.randint(0, 10**10)).scaleb(-8), status))
    return out


@pytest.fixture
async def query(tmp_path: Path) -> AsyncIterator[PortfolioOhlcv]:
    store = Store(f"sqlite:///{tmp_path}/portfolio.db")
    await store.start()
    rows = [PortfolioCandleRow.of("account", "7", "EUR", c, 1) for c in candles()]
    rows.append(PortfolioCandleRow.of("account", "8", "EUR", candles()[0], 1))  # another portfolio: never mixed in
    rows.append(PortfolioCandleRow.of("account", "7", "USD", candles()[0], 1))  # another currency: not this one's
    await write_portfolio_candles(store, rows)
    try:
        yield PortfolioOhlcv(store, None, max_points=5_000, clock=lambda: (T0 + DAYS * 86_400) * 10**9)
    finally:
        await store.close()


def independent_rollup(timeframe: timedelta | str, tz: str, series: list[PortfolioCandle] | None = None) -> list[list[object]]:
    """Buckets by local wall clock, written plainly: the observed 15-minute candles grouped by their local bucket (a day
    from local midnight, a week from Monday's, a month from the 1st's)."""
    zone = ZoneInfo(tz)
    groups: dict[int, list[PortfolioCandle]] = {}
    for c in candles() if series is None else series:
        if c.status == "missing":
            continue
        local = datetime.fromtimestamp(c.open_time, zone)
        if timeframe == "1d":
            start = datetime(local.year, local.month, local.day, tzinfo=zone)
        elif timeframe == "1w":
            monday = local.date() - timedelta(days=local.weekday())
            start = datetime(monday.year, monday.month, monday.day, tzinfo=zone)
        elif timeframe == "1M":
            start = datetime(local.year, local.month, 1, tzinfo=zone)
        else:
            assert isinstance(timeframe, timedelta)
            step = int(timeframe.total_seconds())
            wall = int(local.replace(tzinfo=UTC).timestamp())
            start = datetime.fromtimestamp(wall - wall % step, UTC).replace(tzinfo=zone)
        groups.setdefault(int(start.timestamp()), []).append(c)
    return [[t, g[0].open, max(c.high for c in g), min(c.low for c in g), g[-1].close, sum((c.volume for c in g), Decimal(0))]
            for t, g in sorted(groups.items())]


@pytest.mark.parametrize("tz", ["UTC", "Europe/London", "Asia/Kathmandu"])
@pytest.mark.parametrize(("timeframe", "step"), [("1h", timedelta(hours=1)), ("4h", timedelta(hours=4)), ("1d", "1d")])
async def test_rollups_equal_an_independent_rollup(query: PortfolioOhlcv, tz: str, timeframe: str, step: timedelta | str) -> None:
    page = query.page(timeframe, tz, T0, T0 + DAYS * 86_400)
    got = await query.candles("account", "7", "EUR", page)
    assert got == independent_rollup(step, tz)
    assert all(isinstance(v, Decimal) for row in got for v in row[1:])
    if tz == "Europe/London" and timeframe == "1d":  # the day of the change is 23 hours long
        starts = [row[0] for row in got]
        assert starts[3] - starts[2] == 23 * 3600


# Two stretches of 15-minute candles: 2026-02-20 to 2026-04-08 (London springs forward on Sunday 2026-03-29, weeks and the
# months February to April) and 2026-10-12 to 2026-11-04 (London falls back on Sunday 2026-10-25), nothing stored between
SPANS = [(datetime(2026, 2, 20, 9, tzinfo=UTC), datetime(2026, 4, 8, 3, tzinfo=UTC)),
         (datetime(2026, 10, 12, 14, tzinfo=UTC), datetime(2026, 11, 4, 20, tzinfo=UTC))]


def long_candles() -> list[PortfolioCandle]:
    """Weeks of candles with exact 8-decimal values; one whole local day (2026-03-02, every zone here) missing."""
    rnd = random.Random(2026)
    out, value = [], Decimal("5000.00000000")
    gone = (int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()), int(datetime(2026, 3, 3, 12, tzinfo=UTC).timestamp()))
    for first, last in SPANS:
        for t in range(int(first.timestamp()), int(last.timestamp()), BUCKET_S):
            opened = value
            samples = [opened + Decimal(rnd.randint(-900_000_000, 900_000_000)).scaleb(-8) for _ in range(2)]
            value = samples[-1]
            status = "missing" if gone[0] <= t < gone[1] else "complete"
            out.append(PortfolioCandle(t, opened, max(opened, *samples), min(opened, *samples), value,
                                       Decimal(rnd.randint(0, 10**9)).scaleb(-8), status))
    return out


@pytest.fixture(scope="module")
def long_series() -> list[PortfolioCandle]:
    return long_candles()


@pytest.mark.parametrize("tz", ["Europe/London", "Asia/Kathmandu"])
@pytest.mark.parametrize("timeframe", ["1w", "1M"])
async def test_weeks_and_months_equal_an_independent_rollup(tmp_path: Path, long_series: list[PortfolioCandle], tz: str,
                                                            timeframe: str) -> None:
    """Weeks from local Monday and calendar months, across both of London's DST changes and in Kathmandu's +05:45."""
    async with Store(f"sqlite:///{tmp_path}/long.db") as store:
        await write_portfolio_candles(store, [PortfolioCandleRow.of("run", "r-9", "USD", c, 1) for c in long_series])
        query = PortfolioOhlcv(store, None, max_points=5_000, clock=lambda: int(SPANS[-1][1].timestamp()) * 10**9)
        page = query.page(timeframe, tz, int(SPANS[0][0].timestamp()), int(SPANS[-1][1].timestamp()))
        got = await query.candles("run", "r-9", "USD", page)
    want = independent_rollup(timeframe, tz, long_series)
    assert got == want
    zone = ZoneInfo(tz)
    starts = [datetime.fromtimestamp(row[0], zone) for row in got]
    assert all((s.hour, s.minute) == (0, 0) for s in starts)  # each opens at a local midnight
    if timeframe == "1w":
        assert {s.weekday() for s in starts} == {0} and len(got) == 8 + 4  # Mondays; none for the months not stored
    else:
        assert [(s.year, s.month) for s in starts] == [(2026, m) for m in (2, 3, 4, 10, 11)] and {s.day for s in starts} == {1}
    if tz == "Europe/London":
        by_start = {row[0]: row for row in got}
        if timeframe == "1w":  # the weeks of the changes are an hour short and an hour long
            spring = int(datetime(2026, 3, 23, tzinfo=zone).timestamp())
            autumn = int(datetime(2026, 10, 19, tzinfo=zone).timestamp())
            assert spring == int(datetime(2026, 3, 23, tzinfo=UTC).timestamp()) and spring + 7 * 86_400 - 3600 in by_start
            assert autumn == int(datetime(2026, 10, 18, 23, tzinfo=UTC).timestamp()) and autumn + 7 * 86_400 + 3600 in by_start
        else:  # April opens at 23:00 UTC on 31 March (BST), November at midnight UTC (GMT again)
            assert int(datetime(2026, 3, 31, 23, tzinfo=UTC).timestamp()) in by_start
            assert int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) in by_start
    else:  # Kathmandu: 00:00 local is 18:15 UTC the day before
        assert all(datetime.fromtimestamp(row[0], UTC).time().isoformat() == "18:15:00" for row in got)


async def test_15m_answers_the_stored_candles_and_leaves_missing_ones_out(query: PortfolioOhlcv) -> None:
    page = query.page("15m", "UTC", T0, T0 + 2 * 86_400)
    got = await query.candles("account", "7", "EUR", page)
    expected = [c for c in candles() if c.status != "missing" and c.open_time < T0 + 2 * 86_400]
    assert got == [[c.open_time, c.open, c.high, c.low, c.close, c.volume] for c in expected]
    assert {T0 + i * BUCKET_S for i in MISSING} & {row[0] for row in got} == set()


async def test_pages_at_max_points_and_says_where_the_next_starts(query: PortfolioOhlcv) -> None:
    query.max_points = 10
    page = query.page("1h", "UTC", T0, T0 + 86_400)
    got = await query.candles("account", "7", "EUR", page)
    assert len(got) == 10 and page.next == T0 + 10 * 3600
    while page.next is not None:
        page = query.page("1h", "UTC", page.next, T0 + 86_400)
        got += await query.candles("account", "7", "EUR", page)
    assert [row[0] for row in got] == [T0 + h * 3600 for h in range(24)]


@pytest.mark.parametrize(("timeframe", "tz", "start", "end", "code"), [
    ("5m", "UTC", None, None, "invalid_timeframe"),  # finer than the 15-minute buckets
    ("10m", "UTC", None, None, "invalid_timeframe"),
    ("7x", "UTC", None, None, "invalid_timeframe"),
    ("1h", "Mars/Olympus", None, None, "invalid_timezone"),
    ("1h", "UTC", "yesterday", None, "invalid_time"),
    ("1h", "UTC", T0 + 10, T0, "invalid_range"),
])
async def test_bad_queries_answer_the_market_routes_codes(query: PortfolioOhlcv, timeframe: str, tz: str, start: object,
                                                          end: object, code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        query.page(timeframe, tz, start, end)
    assert raised.value.code == code


async def test_an_unknown_portfolio_has_no_candles(query: PortfolioOhlcv) -> None:
    assert await query.candles("account", "99", "EUR", query.page("1d", "UTC", T0, T0 + 86_400)) == []
    assert await query.candles("run", "7", "EUR", query.page("1d", "UTC", T0, T0 + 86_400)) == []


async def test_a_new_bucket_is_read_at_once_and_an_older_one_rewritten_within_the_recheck(query: PortfolioOhlcv) -> None:
    page = query.page("1d", "UTC", T0, T0 + (DAYS + 1) * 86_400)
    before = await query.candles("account", "7", "EUR", page)
    assert len(before) == DAYS
    first = candles()[0]
    rewritten = PortfolioCandle(first.open_time, first.open, Decimal("99999.5"), first.low, first.close, Decimal("1.25"))
    filled = PortfolioCandle(T0 + 100 * BUCKET_S, Decimal(5), Decimal(6), Decimal(4), Decimal(5), Decimal(0))  # was missing
    newest = PortfolioCandle(T0 + DAYS * 96 * BUCKET_S, Decimal(7), Decimal(8), Decimal(6), Decimal(7), Decimal(3))  # just closed
    await write_portfolio_candles(query.store, [PortfolioCandleRow.of("account", "7", "EUR", c, 2) for c in (rewritten, filled, newest)])
    at_once = await query.candles("account", "7", "EUR", page)
    assert at_once == [*before, [newest.open_time, newest.open, newest.high, newest.low, newest.close, newest.volume]]
    later = query.clock() + RECHECK_S * 1_000_000_000
    query.clock = lambda: later
    after = await query.candles("account", "7", "EUR", page)
    assert after[0][2] == Decimal("99999.5") and after[0][5] == before[0][5] - first.volume + Decimal("1.25")
    assert after[1][3] == min(before[1][3], Decimal(4)) and after[2:] == at_once[2:]
    query.cache_rows = 10  # another portfolio read pushes this one out; read again, it is the same
    assert await query.candles("account", "8", "EUR", page) != []
    assert await query.candles("account", "7", "EUR", page) == after
