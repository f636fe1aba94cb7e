"""core.schedules: cron and intervals in a time zone, DST in Europe/London, misfire policies; against a minute-by-minute reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.core.schedules import Misfire, due_ticks, next_after, next_runs, parse_misfire, parse_spec

LONDON = ZoneInfo("Europe/London")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def london(t: int) -> str:
    return datetime.fromtimestamp(t / 1000, LONDON).isoformat()


def test_fixed_time_cron_across_the_march_change_fires_once_at_the_change() -> None:
    spec = parse_spec(cron="30 1 * * *", timezone="Europe/London")  # 01:30 does not exist on 2025-03-30
    ticks = next_runs(spec, ms("2025-03-29T00:00:00+00:00"), 3)
    assert [london(t) for t in ticks] == ["2025-03-29T01:30:00+00:00", "2025-03-30T02:00:00+01:00", "2025-03-31T01:30:00+01:00"]


def test_fixed_time_cron_across_the_october_change_fires_once() -> None:
    spec = parse_spec(cron="30 1 * * *", timezone="Europe/London")  # 01:30 happens twice on 2025-10-26
    ticks = next_runs(spec, ms("2025-10-25T12:00:00+00:00"), 2)
    assert [london(t) for t in ticks] == ["2025-10-26T01:30:00+01:00", "2025-10-27T01:30:00+00:00"]


def test_wildcard_cron_follows_elapsed_time_across_both_changes() -> None:
    spec = parse_spec(cron="*/30 * * * *", timezone="Europe/London")
    autumn = next_runs(spec, ms("2025-10-25T23:45:00+00:00"), 6)  # 00:45 BST .. the repeated hour fires again
    assert [t - autumn[0] for t in autumn] == [i * 1_800_000 for i in range(6)]
    spring = next_runs(spec, ms("2025-03-30T00:15:00+00:00"), 3)  # 00:15 GMT, then the clocks jump
    assert [london(t) for t in spring] == ["2025-03-30T00:30:00+00:00", "2025-03-30T02:00:00+01:00", "2025-03-30T02:30:00+01:00"]


def test_every_day_is_local_midnight_in_the_owners_zone() -> None:
    spec = parse_spec(every="1d", timezone="Europe/London")
    ticks = next_runs(spec, ms("2025-03-29T12:00:00+00:00"), 3)
    assert [london(t) for t in ticks] == ["2025-03-30T00:00:00+00:00", "2025-03-31T00:00:00+01:00", "2025-04-01T00:00:00+01:00"]


def reference_ticks(cron_minute: int, cron_hour: int, tz: ZoneInfo, start: datetime, end: datetime) -> list[int]:
    """A fixed-time cron's ticks by walking every UTC minute: wall time matches, once per local day; a skipped
    wall time fires at the first instant after the gap."""
    out: list[int] = []
    fired_days: set[object] = set()
    t = start
    prev = t.astimezone(tz)
    while t < end:
        local = t.astimezone(tz)
        day = local.date()
        target = local.replace(hour=cron_hour, minute=cron_minute, second=0, fold=0)
        gap = target.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != target.replace(tzinfo=None)
        if day not in fired_days:
            if (local.hour, local.minute) == (cron_hour, cron_minute) or (
                gap and prev.replace(tzinfo=None) < target.replace(tzinfo=None) <= local.replace(tzinfo=None)
            ):
                out.append(int(t.timestamp() * 1000))
                fired_days.add(day)
        prev = local
        t += timedelta(minutes=1)
    return out


@pytest.mark.parametrize("month", [3, 10])
@pytest.mark.parametrize(("hour", "minute"), [(0, 30), (1, 0), (1, 30), (2, 0), (2, 30), (23, 59)])
def test_fixed_time_cron_matches_a_minute_by_minute_reference_around_london_changes(month: int, hour: int, minute: int) -> None:
    start = datetime(2025, month, 24, tzinfo=UTC)
    end = start + timedelta(days=6)
    spec = parse_spec(cron=f"{minute} {hour} * * *", timezone="Europe/London")
    got = []
    t = int(start.timestamp() * 1000) - 1
    while (t := next_after(spec, t)) < int(end.timestamp() * 1000):
        got.append(t)
    assert got == reference_ticks(minute, hour, LONDON, start, end)


crons = st.sampled_from(["*/5 * * * *", "30 1 * * *", "0 2 * * *", "15 */2 * * *", "0 9 * * 1-5", "*/7 1-3 * * *"])
zones = st.sampled_from(["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
instants = st.integers(min_value=ms("2020-01-01T00:00:00+00:00"), max_value=ms("2030-01-01T00:00:00+00:00"))


@settings(max_examples=150, deadline=None)
@given(cron=crons, tz=zones, after=instants)
def test_ticks_strictly_increase_and_each_fires_once(cron: str, tz: str, after: int) -> None:
    spec = parse_spec(cron=cron, timezone=tz)
    ticks = next_runs(spec, after, 8)
    assert ticks[0] > after
    assert all(a < b for a, b in zip(ticks, ticks[1:], strict=False))  # strictly: no tick twice
    for earlier, later in zip(ticks, ticks[1:], strict=False):  # nothing between two ticks: asking from any instant between
        assert next_after(spec, earlier) == later
        assert next_after(spec, (earlier + later) // 2) == later


@settings(max_examples=100, deadline=None)
@given(every=st.sampled_from(["30s", "1m", "5m", "1h", "1d", "2d", "1w"]), tz=zones, after=instants,
       missed=st.integers(0, 50), limit=st.integers(1, 20))
def test_due_ticks_keep_the_latest_missed_in_order(every: str, tz: str, after: int, missed: int, limit: int) -> None:
    spec = parse_spec(every=every, timezone=tz)
    first = next_after(spec, after)
    everything = next_runs(spec, after, missed + 1)
    now = everything[-1] + 1  # `missed + 1` ticks are due
    ticks, following = due_ticks(spec, first, now, parse_misfire("catch_up", limit))
    assert ticks == everything[-limit:]
    assert following == next_after(spec, now)
    skip, _ = due_ticks(spec, first, now, Misfire())
    assert skip == everything[-1:]
    assert due_ticks(spec, following, now, Misfire()) == ([], following)


def test_a_long_outage_is_not_walked_tick_by_tick() -> None:
    spec = parse_spec(cron="* * * * *", timezone="Europe/London")
    ticks, _ = due_ticks(spec, 60_000, ms("2030-01-01T00:00:30+00:00"), parse_misfire("catch_up", 3))
    assert [london(t) for t in ticks] == ["2029-12-31T23:58:00+00:00", "2029-12-31T23:59:00+00:00", "2030-01-01T00:00:00+00:00"]


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"cron": "61 * * * *"}, "invalid_cron"), ({"cron": "* * * *"}, "invalid_cron"), ({"cron": "0 0 30 2 *"}, "invalid_cron"),
    ({"cron": "* * * * * *"}, "invalid_cron"), ({"cron": 5}, "invalid_cron"),
    ({"every": "1M"}, "invalid_every"), ({"every": "0m"}, "invalid_every"), ({"every": "soon"}, "invalid_every"),
    ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "invalid_timezone"),
    ({"every": "1m", "timezone": "../etc/passwd"}, "invalid_timezone"),
    ({"cron": "* * * * *", "every": "1m"}, "invalid_schedule"), ({}, "invalid_schedule"),
])
def test_bad_timing_is_refused_with_its_code(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_spec(**kwargs)
    assert refused.value.code == code


def test_misfire_policies() -> None:
    assert parse_misfire() == Misfire(policy="skip", limit=1)
    assert parse_misfire("catch_up", 5).limit == 5
    for policy, limit in (("later", None), ("catch_up", 0), ("catch_up", 10_001), ("catch_up", True), ("skip", 3)):
        with pytest.raises(InvalidInput) as refused:
            parse_misfire(policy, limit)
        assert refused.value.code == "invalid_misfire"


def test_aliases_are_cron() -> None:
    assert parse_spec(cron="@hourly").cron == "0 * * * *"
