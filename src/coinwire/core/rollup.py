"""Candle rollups to any timeframe in any time zone: bucket boundaries, and the vectorised OHLCV reduction.

Why boundaries are computed once and passed around: every bucket is a half-open interval
[start, next start) of unix seconds, so one sorted array of starts describes 5-minute,
4-hour, daily, weekly and monthly buckets alike, in UTC or in Europe/London, and the
reduction itself (first open, extreme high/low, last close, summed volume) is the same
`searchsorted` + `reduceat` for all of them.

Buckets follow the local wall clock of the time zone:

- seconds, minutes and hours (`15m`, `4h`, `90m`): a bucket starts where the local wall
  clock, counted in seconds from 1970-01-01 00:00 local, is a multiple of the bucket
  length, so 4h buckets start at 00:00, 04:00, ... local every day and nest in local days.
  A start that falls in a DST gap moves to the end of the gap; a wall time that occurs
  twice (the autumn change) is a start both times, so `1h` buckets stay one hour long.
- days, weeks and months (`1d`, `1w`, `1M`, `2d`, `3M`): a bucket starts at local midnight
  (weeks on Monday, months on the 1st); `Nd` counts days from 1970-01-01, `Nw` weeks from
  Monday 1970-01-05, `NM` months from January 1970 (so `3M` are calendar quarters). A
  midnight that does not exist (a DST gap at midnight) moves to the end of the gap.

The time zone arrives as a `tzinfo` (the shell builds `zoneinfo.ZoneInfo(name)` and reports
an unknown name); nothing here reads the clock or a file. Offsets are assumed to change at
most once a day, which holds for every zone of the tz database since 1970.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from coinwire.core.errors import InvalidInput

__all__ = [
    "OHLCV",
    "Timeframe",
    "bucket_ends",
    "bucket_starts",
    "combine",
    "nests",
    "parse_timeframe",
    "reduce_runs",
    "rollup",
    "utc_bucket",
]

Int64Array = npt.NDArray[np.int64]

_FIXED_UNITS: Final = {"s": 1, "m": 60, "h": 3600}
_CALENDAR_UNITS: Final = ("d", "w", "M")
_TIMEFRAME: Final = re.compile(r"([1-9][0-9]{0,5})([smhdwM])")
_DAY: Final = 86_400
_EPOCH_DAY: Final = date(1970, 1, 1).toordinal()
_EPOCH_MONDAY: Final = date(1970, 1, 5).toordinal()
_UTC_UNITS: Final = {**_FIXED_UNITS, "d": _DAY, "w": 7 * _DAY}
_MONDAY_OFFSET: Final = 4 * _DAY  # 1970-01-05, the first Monday, in unix seconds


class Timeframe(NamedTuple):
    """`4h` is Timeframe(4, "h"). `seconds` is exact for s/m/h and nominal (the longest) for d/w/M."""

    count: int  # type: ignore[assignment]  # the field shadows tuple.count on purpose
    unit: str

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"

    @property
    def calendar(self) -> bool:
        """Days, weeks and months: buckets start at local midnight, their length varies with DST."""
        return self.unit in _CALENDAR_UNITS

    @property
    def utc_seconds(self) -> int | None:
        """Exact length of every bucket in UTC (days and weeks have no DST there); None for months."""
        unit = _UTC_UNITS.get(self.unit)
        return None if unit is None else self.count * unit

    @property
    def seconds(self) -> int:
        """Exact length of a s/m/h bucket; for d/w/M an upper bound (25 h days, 31-day months)."""
        if self.unit in _FIXED_UNITS:
            return self.count * _FIXED_UNITS[self.unit]
        return self.count * {"d": 25 * 3600, "w": 7 * _DAY + 3600, "M": 31 * _DAY + 3600}[self.unit]


def parse_timeframe(text: object) -> Timeframe:
    """`1m`, `5m`, `15m`, `1h`, `4h`, `1d`, `1w`, `1M` (month) or any `<count><unit>` such as `90m` or `3M`."""
    match = _TIMEFRAME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(
            "invalid_timeframe",
            f"timeframe must be a count and a unit (s, m, h, d, w, M) like 1m, 5m, 1h, 4h, 1d, 1w or 1M, got {text!r}",
            timeframe=str(text),
        )
    return Timeframe(int(match.group(1)), match.group(2))


def nests(fine: Timeframe, coarse: Timeframe) -> bool:
    """Whether every UTC bucket of `coarse` is a whole run of `fine` buckets (so `rollup` can make it from them).

    A coarse bucket's every start must be a fine bucket's start: `15m` nests in `1h`, `1d`, `1w`
    and `1M`; `1d` in `1w` and `1M`; `7m` in neither `1h` nor `1d`; `2d` in no week (they count
    from 1970-01-01, a Thursday) and `1w` in no month.
    """
    f, c = fine.utc_seconds, coarse.utc_seconds
    if f is None:  # months nest only in months
        return c is None and coarse.count % fine.count == 0
    if c is None:  # a month starts at a UTC midnight, any day of the week
        return _DAY % f == 0
    if coarse.unit == "w" and fine.unit != "w":  # weeks start on Mondays, 4 days after the epoch
        return _MONDAY_OFFSET % f == 0 and c % f == 0
    if fine.unit == "w" and coarse.unit != "w":  # Monday-based weeks tile no epoch-based bucket
        return False
    return c % f == 0


def utc_bucket(tf: Timeframe, t: int) -> tuple[int, int]:
    """The UTC bucket [start, end) (unix s) holding the instant `t`: the buckets of `bucket_starts(tf, UTC, ...)`, one at a time."""
    seconds = tf.utc_seconds
    if seconds is not None:
        start = t - (t - (_MONDAY_OFFSET if tf.unit == "w" else 0)) % seconds
        return start, start + seconds
    starts = bucket_starts(tf, UTC, t, t + tf.seconds + 1)
    return int(starts[0]), int(starts[1])


def bucket_ends(tf: Timeframe, tz: tzinfo, times: Int64Array) -> Int64Array:
    """The end (the next bucket's start, unix s) of the bucket holding each of `times` (ascending unix s)."""
    times = np.asarray(times, dtype=np.int64)
    if not len(times):
        return np.empty(0, np.int64)
    starts = bucket_starts(tf, tz, int(times[0]), int(times[-1]) + tf.seconds + 1)
    return starts[np.searchsorted(starts, times, side="right")]


def bucket_starts(tf: Timeframe, tz: tzinfo, start: int, end: int) -> Int64Array:
    """Starts (unix s, ascending) of the buckets that overlap [start, end): the first is the bucket holding `start`."""
    if end <= start:
        return np.empty(0, np.int64)
    if tf.calendar:
        starts = _calendar_starts(tf, tz, start, end)
    else:
        starts = _wall_clock_starts(tf.seconds, tz, start - tf.seconds - 2 * _DAY, end)
    first = max(int(np.searchsorted(starts, start, side="right")) - 1, 0)
    return starts[first:]


def _offset(tz: tzinfo, t: int) -> int:
    moment = datetime.fromtimestamp(t, UTC).astimezone(tz)
    offset = moment.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _segments(tz: tzinfo, lo: int, hi: int) -> list[tuple[int, int]]:
    """(from, offset) pairs covering [lo, hi): each offset holds from its instant to the next pair's."""
    samples = list(range(lo, hi, _DAY)) + [hi]
    out = [(lo, _offset(tz, lo))]
    for a, b in zip(samples, samples[1:], strict=False):
        after = _offset(tz, b)
        if after == out[-1][1]:
            continue
        left, right = a, b  # the offset at `left` is the old one, at `right` the new one
        while right - left > 1:
            mid = (left + right) // 2
            if _offset(tz, mid) == out[-1][1]:
                left = mid
            else:
                right = mid
        out.append((right, after))
    return out


def _wall_clock_starts(step: int, tz: tzinfo, lo: int, hi: int) -> Int64Array:
    """Instants in [lo, hi) whose local wall clock is a multiple of `step` seconds, plus the end of a gap that hides one."""
    segments = _segments(tz, lo, hi)
    parts: list[Int64Array] = []
    previous: int | None = None
    for i, (a, offset) in enumerate(segments):
        b = segments[i + 1][0] if i + 1 < len(segments) else hi
        wall_lo, wall_hi = a + offset, b + offset
        first = -(-wall_lo // step) * step
        parts.append(np.arange(first, wall_hi, step, dtype=np.int64) - offset)
        if previous is not None and offset > previous:  # clocks jumped forward over [a + previous, a + offset)
            gap_first = -(-(a + previous) // step) * step
            if gap_first < wall_lo:
                parts.append(np.array([a], dtype=np.int64))
        previous = offset
    return np.unique(np.concatenate(parts))


def _calendar_starts(tf: Timeframe, tz: tzinfo, start: int, end: int) -> Int64Array:
    """Local midnights of the day, week or month buckets overlapping [start, end)."""
    first_day = datetime.fromtimestamp(start, UTC).astimezone(tz).date()
    last_day = datetime.fromtimestamp(end - 1, UTC).astimezone(tz).date()
    days: list[date] = []
    if tf.unit == "M":
        index = (first_day.year - 1970) * 12 + first_day.month - 1
        index -= index % tf.count
        last = (last_day.year - 1970) * 12 + last_day.month - 1
        while index <= last:
            days.append(date(1970 + index // 12, index % 12 + 1, 1))
            index += tf.count
    else:
        length, epoch = (tf.count, _EPOCH_DAY) if tf.unit == "d" else (7 * tf.count, _EPOCH_MONDAY)
        ordinal = first_day.toordinal()
        ordinal -= (ordinal - epoch) % length
        while ordinal <= last_day.toordinal():
            days.append(date.fromordinal(ordinal))
            ordinal += length
    return np.array([_local_midnight(day, tz) for day in days], dtype=np.int64)


def _local_midnight(day: date, tz: tzinfo) -> int:
    """The first instant of a local day (the end of the gap when midnight itself is skipped)."""
    naive = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - a wall-clock time, compared below
    moment = naive.replace(tzinfo=tz)  # fold=0: the earlier of two midnights
    t = int(moment.timestamp())
    back = datetime.fromtimestamp(t, UTC).astimezone(tz).replace(tzinfo=None)
    if back != naive:  # midnight falls in a gap: the day begins when the clocks jump
        t = _segments(tz, t - _DAY, t + 1)[-1][0]
    return t


class OHLCV(NamedTuple):
    """Columns of a candle series: bucket start times (unix s) and the open, high, low, close, volume arrays."""

    time: npt.NDArray[np.int64]
    open: npt.NDArray[np.generic]
    high: npt.NDArray[np.generic]
    low: npt.NDArray[np.generic]
    close: npt.NDArray[np.generic]
    volume: npt.NDArray[np.generic]


def reduce_runs(
    first: npt.NDArray[np.intp],
    open: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
) -> tuple[npt.NDArray[np.generic], ...]:
    """Reduce runs of consecutive rows, each starting at an index of `first` (ascending, first[0] == 0):
    open of the run's first row, max high, min low, close of its last row, summed volume."""
    o, h, lo, c, v = (np.asarray(a) for a in (open, high, low, close, volume))
    last = np.empty_like(first)
    last[:-1] = first[1:] - 1
    if len(first):
        last[-1] = len(c) - 1
    return (
        o[first],
        np.maximum.reduceat(h, first),
        np.minimum.reduceat(lo, first),
        c[last],
        np.add.reduceat(v, first),
    )


def rollup(candles: OHLCV, starts: Int64Array, end: int | None = None) -> OHLCV:
    """Candles of the buckets starting at `starts` (see bucket_starts) from finer candles in time order.

    A row belongs to the bucket its open time falls in, so the finer candles must nest in the
    buckets (1m candles do in every bucket; 1h candles in UTC days). Rows before the first
    start or at/after `end` are left out; a bucket with no row is absent, never invented.
    Integer columns stay integers (exact prices at an instrument's precision).
    """
    time = np.asarray(candles.time, dtype=np.int64)
    if len(time) > 1 and bool((time[1:] <= time[:-1]).any()):
        raise InvalidInput("unsorted_candles", "candles to roll up must be in increasing time order")
    lo = int(np.searchsorted(time, starts[0], side="left")) if len(starts) else len(time)
    hi = len(time) if end is None else int(np.searchsorted(time, end, side="left"))
    if hi <= lo:
        empty = np.empty(0, np.int64)
        return OHLCV(empty, *(np.asarray(col)[:0] for col in candles[1:]))
    time = time[lo:hi]
    bucket = np.searchsorted(starts, time, side="right") - 1
    first = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    columns = reduce_runs(first, *(np.asarray(col)[lo:hi] for col in candles[1:]))
    return OHLCV(starts[bucket[first]], *columns)


Row = tuple[int, float, float, float, float, float]


def combine(earlier: Row, later: Row) -> Row:
    """One candle from two consecutive ones (a forming bucket growing by the next minute): the earlier's
    time and open, the extremes, the later's close, the summed volume."""
    return (
        earlier[0],
        earlier[1],
        max(earlier[2], later[2]),
        min(earlier[3], later[3]),
        later[4],
        earlier[5] + later[5],
    )
