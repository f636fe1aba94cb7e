"""core.daily_stats: local days across DST and odd offsets, and one day's figures from lines and fills."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.daily_stats import DailyStats, DayFill, DayLine, day_bounds, day_of, day_stats, missing_day, money_kinds, next_day
from coinwire.core.numbers import ATTO

NS = 1_000_000_000
LONDON, NEW_YORK, KATHMANDU, UTC_ZONE = (ZoneInfo(n) for n in ("Europe/London", "America/New_York", "Asia/Kathmandu", "UTC"))
ZONES = [LONDON, NEW_YORK, KATHMANDU, UTC_ZONE, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("America/St_Johns")]


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def atto(value: str) -> int:
    return int(Decimal(value) * ATTO)


def test_a_day_is_local_midnight_to_local_midnight() -> None:
    assert day_bounds(date(2026, 3, 10), UTC_ZONE) == (utc("2026-03-10T00:00"), utc("2026-03-11T00:00"))
    assert day_bounds(date(2026, 3, 10), KATHMANDU) == (utc("2026-03-09T18:15"), utc("2026-03-10T18:15"))
    # London springs forward on 2026-03-29: 23 hours; falls back on 2026-10-25: 25 hours
    assert day_bounds(date(2026, 3, 29), LONDON) == (utc("2026-03-29T00:00"), utc("2026-03-29T23:00"))
    assert day_bounds(date(2026, 10, 25), LONDON) == (utc("2026-10-24T23:00"), utc("2026-10-26T00:00"))
    # New York springs forward on 2026-03-08
    assert day_bounds(date(2026, 3, 8), NEW_YORK) == (utc("2026-03-08T05:00"), utc("2026-03-09T04:00"))
    assert day_of(utc("2026-03-09T03:59"), NEW_YORK) == date(2026, 3, 8)
    assert day_of(utc("2026-03-09T04:00"), NEW_YORK) == date(2026, 3, 9)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2037, 12, 31)), st.sampled_from(ZONES))
def test_days_tile_time_and_start_on_quarter_hours(day: date, tz: ZoneInfo) -> None:
    start, end = day_bounds(day, tz)
    assert day_bounds(next_day(day), tz)[0] == end
    assert day_of(start, tz) == day and day_of(end - 1, tz) == day and day_of(end, tz) == next_day(day)
    assert end - start in (82_800, 84_600, 86_400, 88_200, 90_000)  # 23, 23.5 (Lord Howe), 24, 24.5, 25 hours
    assert start % 900 == 0  # every zone's midnight is a portfolio candle boundary
    local = datetime.fromtimestamp(start, UTC).astimezone(tz)
    assert (local.hour, local.minute) == (0, 0) or local.date() == day  # midnight, or the end of a gap at midnight


DAY = date(2026, 3, 10)
START, END = day_bounds(DAY, UTC_ZONE)


def line(at: int, kind: str, currency: str, amount: str, fill_id: int | None = None) -> DayLine:
    return DayLine(ts=at, kind=kind, currency=currency, movement=atto(amount), fill_id=fill_id)


def stats(lines: list[DayLine], fills: list[DayFill], *, scope: str = "account", closing: str = "1000",
          opening: str | None = "900", peak: str | None = None, history: list[DayFill] | None = None) -> DailyStats:
    return day_stats(day=DAY, tz=UTC_ZONE, scope=scope, currency="USD", closing=Decimal(closing),
                     opening=None if opening is None else Decimal(opening), lines=lines, fills=fills,
                     known_symbols={f.id: f.symbol for f in (history or fills)}, rates={"USDT": Decimal(1), "EUR": Decimal("1.1")},
                     cash=frozenset({"USDT"}), peak_before=None if peak is None else Decimal(peak))


def test_money_in_and_out_is_kept_apart_from_performance() -> None:
    inside, boundary_start, boundary_end = (START + 3600) * NS, START * NS, END * NS
    lines = [
        line(boundary_start, "virtual_tx", "USDT", "500"),  # stamped at the opening midnight: the previous day's
        line(inside, "virtual_tx", "USDT", "100"),
        line(inside, "venue_sync", "EUR", "-10"),  # 11 USD out
        line(inside, "allocate", "USDT", "-40"),  # within the account: not money in or out
        line(inside, "fee", "USDT", "-2"),
        line(inside, "funding", "USDT", "0.5"),
        line(boundary_end, "virtual_tx", "USDT", "20"),  # stamped at the closing midnight: this day's
    ]
    day = stats(lines, [])
    assert day.deposits == Decimal(120) and day.withdrawals == Decimal(11)
    assert day.fees == Decimal(2) and day.funding == Decimal("0.5")
    assert day.pnl == Decimal(1000) - Decimal(900) - Decimal(109)
    assert day.realised == Decimal("-1.5")
    assert day.unrealised == day.pnl - day.realised
    for_set = stats(lines, [], scope="wallet_set")
    assert for_set.withdrawals == Decimal(51)  # the allocation out counts for a set
    assert "allocate" not in money_kinds("account") and "allocate" in money_kinds("run")


def test_spot_sells_realise_against_average_cost_and_count_wins() -> None:
    t = (START + 60) * NS
    before = (START - 3600) * NS
    fills = [DayFill(id=1, symbol="BTC/USDT", ts=before), DayFill(id=2, symbol="BTC/USDT", ts=before),
             DayFill(id=3, symbol="BTC/USDT", ts=t), DayFill(id=4, symbol="BTC/USDT", ts=t + NS),
             DayFill(id=5, symbol="BTC/USDT:USDT", ts=t + 2 * NS)]
    lines = [
        line(before, "trade", "BTC", "1", 1), line(before, "trade", "USDT", "-100", 1),
        line(before, "trade", "BTC", "1", 2), line(before, "trade", "USDT", "-300", 2),  # average cost 200
        line(t, "trade", "BTC", "-0.5", 3), line(t, "trade", "USDT", "150", 3),  # sold at 300: +50
        line(t + NS, "trade", "BTC", "-0.5", 4), line(t + NS, "trade", "USDT", "90", 4),  # sold at 180: -10
        line(t + 2 * NS, "pnl", "USDT", "7", 5),  # a perpetual's closing fill: +7
        line(t + 3 * NS, "liquidation", "USDT", "-1"),
    ]
    day = stats(lines, [f for f in fills if f.ts > START * NS], history=fills)
    assert day.realised == Decimal(50 - 10 + 7 - 1)
    assert (day.trades, day.closing_trades, day.winning_trades) == (3, 3, 2)
    assert day.win_rate == Decimal(2) / 3


def test_exposure_and_drawdown() -> None:
    lines = [line((START - 10) * NS, "virtual_tx", "USDT", "250")]
    day = stats(lines, [], closing="1000", peak="1250")
    assert day.exposure == Decimal("0.75")  # 250 of 1000 held as cash (USDT, pegged)
    assert day.peak == Decimal(1250) and day.drawdown == Decimal("0.2")
    higher = stats(lines, [], closing="1300", peak="1250")
    assert higher.peak == Decimal(1300) and higher.drawdown == 0
    first = stats([], [], opening=None)
    assert first.pnl is None and first.unrealised is None and first.peak == Decimal(1000)


def test_a_currency_without_a_rate_is_refused_not_guessed() -> None:
    with pytest.raises(KeyError):
        stats([line((START + 1) * NS, "virtual_tx", "GBP", "1")], [])


def test_a_missing_day_has_no_figures() -> None:
    day = missing_day(date(2026, 3, 29), LONDON, "GBP")
    assert (day.status, day.closing, day.pnl, day.end - day.start) == ("missing", None, None, 23 * 3600)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["virtual_tx", "fee", "funding", "pnl", "allocate"]),
                          st.integers(-10**6, 10**6), st.integers(1, 86_399)), max_size=30),
       st.integers(0, 10**7), st.integers(0, 10**7), st.sampled_from(["account", "run"]))
def test_pnl_splits_into_realised_and_unrealised(entries: list[tuple[str, int, int]], opening: int, closing: int,
                                                 scope: str) -> None:
    lines = [DayLine(ts=(START + at) * NS, kind=kind, currency="USDT", movement=amount * ATTO // 100)
             for kind, amount, at in sorted(entries, key=lambda e: e[2])]
    day = day_stats(day=DAY, tz=UTC_ZONE, scope=scope, currency="USDT", closing=Decimal(closing), opening=Decimal(opening),
                    lines=lines, fills=[], known_symbols={}, rates={}, peak_before=None)
    flows = {"virtual_tx"} | ({"allocate"} if scope == "run" else set())
    net = sum((Decimal(a) / 100 for k, a, _ in entries if k in flows), Decimal(0))
    assert day.deposits >= 0 and day.withdrawals >= 0 and day.fees == -sum(
        (Decimal(a) / 100 for k, a, _ in entries if k == "fee"), Decimal(0))
    assert day.deposits - day.withdrawals == net
    assert day.pnl == Decimal(closing) - Decimal(opening) - net
    assert day.realised is not None and day.unrealised is not None and day.pnl == day.realised + day.unrealised


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 10**4), st.integers(1, 10**5)), min_size=1, max_size=20))
def test_average_cost_realised_matches_an_independent_reckoning(trades: list[tuple[bool, int, int]]) -> None:
    """Buys and sells of whole units at whole prices; the reference keeps (held, cost) as exact fractions."""
    lines: list[DayLine] = []
    fills: list[DayFill] = []
    held, cost, expected = Decimal(0), Decimal(0), Decimal(0)
    for i, (buy, size, price) in enumerate(trades, start=1):
        at = (START + i) * NS
        if not buy:
            size = min(size, int(held))
            if size == 0:
                continue
            basis = cost * size / held
            expected += Decimal(size * price) - basis
            held, cost = held - size, cost - basis
        else:
            held, cost = held + size, cost + size * price
        sign = 1 if buy else -1
        lines += [DayLine(ts=at, kind="trade", currency="ETH", movement=sign * size * ATTO, fill_id=i),
                  DayLine(ts=at, kind="trade", currency="USDT", movement=-sign * size * price * ATTO, fill_id=i)]
        fills.append(DayFill(id=i, symbol="ETH/USDT", ts=at))
    day = day_stats(day=DAY, tz=UTC_ZONE, scope="account", currency="USDT", closing=Decimal(1), opening=Decimal(1),
                    lines=lines, fills=fills, known_symbols={f.id: f.symbol for f in fills}, rates={}, peak_before=None)
    assert day.realised is not None and abs(day.realised - expected) < Decimal("1e-9")
    assert day.trades == len(fills)


def test_next_day_is_the_calendar_day_after() -> None:
    assert next_day(date(2026, 12, 31)) == date(2027, 1, 1) == date(2026, 12, 31) + timedelta(days=1)
