"""core.rollup: timeframe parsing, bucket boundaries in any time zone (DST gaps and repeats), the OHLCV reduction."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.core.rollup import OHLCV, Timeframe, bucket_starts, combine, parse_timeframe, rollup

UTC = ZoneInfo("UTC")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
# whole-hour, half-hour and 45-minute offsets, a 30-minute DST shift, DST at midnight
ZONES = [
    "UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu",
    "Australia/Lord_Howe", "America/Sao_Paulo", "Pacific/Chatham", "America/Havana",
]  # fmt: skip


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def local(t: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(int(t), tz).isoformat()


def starts(tf: str, tz: ZoneInfo, start: str, end: str) -> list[str]:
    return [local(t, tz) for t in bucket_starts(parse_timeframe(tf), tz, ts(start), ts(end))]


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [("1m", (1, "m")), ("15m", (15, "m")), ("4h", (4, "h")), ("1M", (1, "M")), ("90m", (90, "m"))])
def test_parse_timeframe(text: str, expected: tuple[int, str]) -> None:
    assert parse_timeframe(text) == Timeframe(*expected)
    assert str(parse_timeframe(text)) == text


@pytest.mark.parametrize("text", ["", "0m", "1y", "m", "1.5h", "01h", " 1h", 60, None, "1H"])
def test_bad_timeframe_has_a_stable_code(text: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_timeframe(text)
    assert info.value.code == "invalid_timeframe"


# --- boundaries across DST ------------------------------------------------------------------------


def test_4h_follows_the_london_wall_clock_across_the_spring_change() -> None:
    # 2021-03-28 01:00 GMT clocks go to 02:00 BST: the 00:00 bucket lasts 3 hours
    assert starts("4h", LONDON, "2021-03-27T20:00+00:00", "2021-03-28T12:00+00:00") == [
        "2021-03-27T20:00:00+00:00", "2021-03-28T00:00:00+00:00", "2021-03-28T04:00:00+01:00",
        "2021-03-28T08:00:00+01:00", "2021-03-28T12:00:00+01:00",
    ]  # fmt: skip


def test_the_repeated_autumn_hour_is_its_own_1h_bucket() -> None:
    assert starts("1h", LONDON, "2021-10-31T00:30+01:00", "2021-10-31T03:00+00:00") == [
        "2021-10-31T00:00:00+01:00", "2021-10-31T01:00:00+01:00", "2021-10-31T01:00:00+00:00", "2021-10-31T02:00:00+00:00",
    ]  # fmt: skip


def test_days_weeks_and_months_start_at_local_midnight() -> None:
    assert starts("1d", NEW_YORK, "2021-03-13T12:00-05:00", "2021-03-15T12:00-04:00") == [
        "2021-03-13T00:00:00-05:00", "2021-03-14T00:00:00-05:00", "2021-03-15T00:00:00-04:00",
    ]  # fmt: skip
    assert starts("1w", NEW_YORK, "2021-03-10T00:00-05:00", "2021-03-16T00:00-04:00") == [
        "2021-03-08T00:00:00-05:00", "2021-03-15T00:00:00-04:00",
    ]  # fmt: skip
    assert starts("1M", LONDON, "2021-02-15T00:00+00:00", "2021-04-02T00:00+01:00") == [
        "2021-02-01T00:00:00+00:00", "2021-03-01T00:00:00+00:00", "2021-04-01T00:00:00+01:00",
    ]  # fmt: skip
    assert starts("3M", UTC, "2021-05-15T00:00+00:00", "2021-08-02T00:00+00:00") == [
        "2021-04-01T00:00:00+00:00", "2021-07-01T00:00:00+00:00",
    ]  # fmt: skip


def test_a_day_whose_midnight_is_skipped_begins_when_the_clocks_jump() -> None:
    # Sao Paulo 2018-11-04: 00:00 -03 became 01:00 -02
    sao_paulo = ZoneInfo("America/Sao_Paulo")
    assert starts("1d", sao_paulo, "2018-11-03T12:00-03:00", "2018-11-05T12:00-02:00") == [
        "2018-11-03T00:00:00-03:00", "2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00",
    ]  # fmt: skip


def test_hours_in_a_half_hour_zone_start_on_the_local_hour() -> None:
    assert starts("1h", ZoneInfo("Asia/Kolkata"), "2021-03-13T01:10+05:30", "2021-03-13T03:00+05:30") == [
        "2021-03-13T01:00:00+05:30", "2021-03-13T02:00:00+05:30",
    ]  # fmt: skip


def test_empty_range_has_no_buckets() -> None:
    assert len(bucket_starts(parse_timeframe("1h"), UTC, 100, 100)) == 0


def _wall_reference(step: int, tz: ZoneInfo, lo: int, hi: int) -> list[int]:
    """Brute force, minute by minute: an instant starts a bucket when its wall clock is a multiple of
    `step`, or when the clocks jump forward over such a wall time."""
    out = []
    previous_wall = None
    for t in range(lo, hi, 60):
        offset = datetime.fromtimestamp(t, UTC).astimezone(tz).utcoffset()
        wall = t + int(offset.total_seconds())  # type: ignore[union-attr]
        if wall % step == 0:
            out.append(t)
        elif previous_wall is not None and wall - previous_wall > 60:  # a gap (previous_wall, wall)
            first = -(-(previous_wall + 60) // step) * step
            if first < wall:
                out.append(t)
        previous_wall = wall
    return out


def _change_days(tz: ZoneInfo) -> list[int]:
    """Unix seconds of the UTC midnights before each offset change of 2018-2021 (the days worth testing)."""
    lo = ts("2018-01-01T00:00+00:00")
    days = [lo + d * 86_400 for d in range(4 * 366)]
    offsets = [datetime.fromtimestamp(t, UTC).astimezone(tz).utcoffset() for t in days]
    return [days[i - 1] for i in range(1, len(days)) if offsets[i] != offsets[i - 1]]


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    minutes=st.sampled_from([15, 30, 60, 240, 90, 720]),
    pick=st.integers(0, 10_000),
    shift=st.integers(-2 * 1440, 0).map(lambda m: m * 60),
    random_day=st.booleans(),
)
def test_wall_clock_boundaries_match_a_minute_by_minute_reference(zone: str, minutes: int, pick: int, shift: int, random_day: bool) -> None:
    tz = ZoneInfo(zone)
    changes = _change_days(tz)
    if random_day or not changes:
        lo = ts("2018-01-01T00:00+00:00") + pick % (4 * 365) * 86_400
    else:  # a 3-day window holding an offset change
        lo = changes[pick % len(changes)] + shift
    hi = lo + 3 * 86_400
    expected = _wall_reference(minutes * 60, tz, lo - 86_400, hi)
    got = bucket_starts(Timeframe(minutes, "m"), tz, lo, hi).tolist()
    first = max(i for i, t in enumerate(expected) if t <= lo)
    assert got == expected[first:]


@settings(max_examples=40, deadline=None)
@given(zone=st.sampled_from(ZONES), day=st.integers(0, 365 * 3), span=st.integers(1, 120), unit=st.sampled_from(["d", "w", "M"]))
def test_calendar_starts_are_the_first_instants_of_local_days(zone: str, day: int, span: int, unit: str) -> None:
    tz = ZoneInfo(zone)
    lo = ts("2019-01-01T00:00+00:00") + day * 86_400 + 12_345
    hi = lo + span * 86_400
    got = bucket_starts(Timeframe(1, unit), tz, lo, hi)
    assert got[0] <= lo < (got[1] if len(got) > 1 else hi + 1) and got[-1] < hi
    for t in got.tolist():
        here = datetime.fromtimestamp(t, UTC).astimezone(tz)
        before = datetime.fromtimestamp(t - 1, UTC).astimezone(tz)
        assert here.date() != before.date(), f"{here} is not the first instant of its day"
        assert unit != "w" or here.weekday() == 0
        assert unit != "M" or here.day == 1


# --- reduction ------------------------------------------------------------------------------------


def _candles(times: list[int], opens: list[int], highs: list[int], lows: list[int], closes: list[int], vols: list[int]) -> OHLCV:
    return OHLCV(*(np.array(x, dtype=np.int64) for x in (times, opens, highs, lows, closes, vols)))


def test_rollup_first_open_extremes_last_close_summed_volume_and_no_invented_buckets() -> None:
    minute = _candles(
        [0, 60, 120, 7200, 7260],  # hour 1 has no candle
        [10, 11, 12, 20, 21],
        [11, 15, 13, 22, 25],
        [9, 10, 8, 19, 20],
        [11, 12, 13, 21, 24],
        [1, 2, 3, 4, 5],
    )
    out = rollup(minute, bucket_starts(Timeframe(1, "h"), UTC, 0, 3 * 3600), 3 * 3600)
    assert out.time.tolist() == [0, 7200]
    assert [col.tolist() for col in out[1:]] == [[10, 20], [15, 25], [8, 19], [13, 24], [6, 9]]
    assert out.open.dtype == np.int64  # exact integers stay integers


def test_rollup_leaves_out_rows_outside_the_buckets_and_refuses_unsorted_rows() -> None:
    minute = _candles([0, 60, 3600, 7200], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 1, 1, 1])
    out = rollup(minute, np.array([60, 3600], dtype=np.int64), 7200)
    assert out.time.tolist() == [60, 3600] and out.open.tolist() == [2, 3]
    assert len(rollup(minute, np.array([9000], dtype=np.int64), 9600).time) == 0
    with pytest.raises(InvalidInput) as info:
        rollup(_candles([60, 0], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1]), np.array([0], dtype=np.int64))
    assert info.value.code == "unsorted_candles"


def test_combine_grows_a_forming_candle() -> None:
    assert combine((0, 10.0, 12.0, 9.0, 11.0, 1.0), (60, 11.0, 14.0, 10.0, 13.0, 2.0)) == (0, 10.0, 14.0, 9.0, 13.0, 3.0)


@st.composite
def minute_series(draw: st.DrawFn) -> OHLCV:
    """Integer 1-minute candles over up to 12 days, with gaps (prices at an instrument's precision)."""
    n = draw(st.integers(1, 400))
    gaps = draw(st.lists(st.integers(1, 90), min_size=n, max_size=n))
    start = ts("2021-03-20T00:00+00:00") + draw(st.integers(0, 20 * 86_400)) // 60 * 60
    times = start + np.cumsum(np.array(gaps, dtype=np.int64) * 60)
    opens = np.array(draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n)), dtype=np.int64)
    closes = np.array(draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n)), dtype=np.int64)
    up = np.array(draw(st.lists(st.integers(0, 500), min_size=n, max_size=n)), dtype=np.int64)
    down = np.array(draw(st.lists(st.integers(0, 500), min_size=n, max_size=n)), dtype=np.int64)
    vols = np.array(draw(st.lists(st.integers(0, 10**12), min_size=n, max_size=n)), dtype=np.int64)
    return OHLCV(times, opens, np.maximum(opens, closes) + up, np.maximum(np.minimum(opens, closes) - down, 0), closes, vols)


def _roll(candles: OHLCV, tf: str, tz: ZoneInfo) -> OHLCV:
    lo, hi = int(candles.time[0]), int(candles.time[-1]) + 60
    return rollup(candles, bucket_starts(parse_timeframe(tf), tz, lo, hi), hi)


@settings(max_examples=60, deadline=None)
@given(candles=minute_series(), zone=st.sampled_from(ZONES), tf=st.sampled_from(["5m", "15m", "1h", "4h", "1d", "1w", "1M"]))
def test_rollup_invariants(candles: OHLCV, zone: str, tf: str) -> None:
    tz = ZoneInfo(zone)
    out = _roll(candles, tf, tz)
    assert int(out.volume.sum()) == int(candles.volume.sum())  # nothing lost, nothing counted twice
    assert (np.diff(out.time) > 0).all()
    assert (out.high >= np.maximum(out.open, out.close)).all() and (out.low <= np.minimum(out.open, out.close)).all()
    assert out.open[0] == candles.open[0] and out.close[-1] == candles.close[-1]
    assert out.high.max() == candles.high.max() and out.low.min() == candles.low.min()
    # every bucket holds at least one candle, and each candle lies in [its bucket start, next start)
    owner = np.searchsorted(out.time, candles.time, side="right") - 1
    assert (owner >= 0).all() and len(np.unique(owner)) == len(out.time)


@settings(max_examples=60, deadline=None)
@given(candles=minute_series(), zone=st.sampled_from(ZONES),
       pair=st.sampled_from([("5m", "1h"), ("1h", "4h"), ("4h", "1d"), ("1d", "1w"), ("1d", "1M"), ("15m", "1d")]))
def test_rolling_up_in_steps_equals_rolling_up_at_once(candles: OHLCV, zone: str, pair: tuple[str, str]) -> None:
    tz = ZoneInfo(zone)
    fine, coarse = pair
    once = _roll(candles, coarse, tz)
    stepped = _roll(_roll(candles, fine, tz), coarse, tz)
    assert [c.tolist() for c in stepped] == [c.tolist() for c in once]
