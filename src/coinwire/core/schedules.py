"""When a schedule fires: cron expressions and intervals in the owner's time zone, and the ticks a misfire policy runs.

Pure: instants are integer milliseconds since the epoch in and out; no clock is read here. The
scheduler service (coinwire.services.scheduler) asks `next_after` for the next tick and
`due_ticks` for the ticks to run after a pause, a restart or a slow job.

Cron expressions are evaluated on the owner's wall clock (croniter reads the grammar), with the
rules Vixie cron follows across daylight-saving changes, because that is what people who write
`30 1 * * *` expect:
- a job at a fixed time (neither the minute nor the hour field starts with `*`) whose wall time
  does not exist (the spring-forward gap) fires at the change itself, once; a wall time that
  happens twice (the autumn fall-back) fires once, the first time;
- a job with a wildcard minute or hour follows real time: nothing in the gap, and the repeated
  hour fires again (`*/15 * * * *` fires every 15 minutes of elapsed time all night).

`every` intervals: seconds, minutes and hours are elapsed time, ticks at whole multiples of the
interval since the epoch (DST cannot move them); days and weeks are calendar days, ticks at the
owner's local midnight (weeks: Mondays), every `count` days or weeks counted from 1970-01-01.
"""

from __future__ import annotations

from collections import deque
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from coinwire.core.errors import InvalidInput
from coinwire.core.rollup import parse_timeframe

__all__ = ["MISFIRE_POLICIES", "MAX_CATCH_UP", "Misfire", "Spec", "due_ticks", "next_after", "next_runs", "parse_spec",
           "parse_misfire", "zone"]

MISFIRE_POLICIES: Final = ("skip", "catch_up")
MAX_CATCH_UP: Final = 1000  # missed ticks one catch-up runs at most
_ALIASES: Final = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                   "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_EVERY_UNITS: Final = {"s": 1000, "m": 60_000, "h": 3_600_000}
_DAY_MS: Final = 86_400_000
_EPOCH: Final = datetime(1970, 1, 1)  # noqa: DTZ001 - cron reads naive wall-clock times: zones are applied here
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_EPOCH_MONDAY: Final = date(1970, 1, 5).toordinal()
_MS: Final = timedelta(milliseconds=1)
_MAX_EVERY_MS: Final = 366 * _DAY_MS


class Spec(msgspec.Struct, frozen=True, kw_only=True):
    """A checked schedule: exactly one of `cron` (five fields) or `every` ("30s", "1m", "1h", "1d", "1w"), in `timezone`."""

    timezone: str
    cron: str | None = None
    every: str | None = None


class Misfire(msgspec.Struct, frozen=True, kw_only=True):
    """What runs of the ticks missed while nothing ran: `skip` runs the latest only; `catch_up` the latest `limit`, in order."""

    policy: Literal["skip", "catch_up"] = "skip"
    limit: int = 1


def zone(name: object) -> ZoneInfo:
    """An IANA time zone (`Europe/London`), or `invalid_timezone`."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith("/") or ".." in name:
        raise InvalidInput("invalid_timezone", f"unknown time zone {name!r}; use an IANA name such as Europe/London or UTC",
                           field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput("invalid_timezone", f"unknown time zone {name!r}; use an IANA name such as Europe/London or UTC",
                           field="timezone") from None


def _cron_fields(expression: object) -> str:
    if not isinstance(expression, str) or len(expression) > 200:
        raise InvalidInput("invalid_cron", "cron must be a text of five fields, e.g. '*/5 * * * *'", field="cron")
    text = _ALIASES.get(expression.strip().lower(), expression.strip())
    if len(text.split()) != 5:
        raise InvalidInput("invalid_cron", f"cron {expression!r} must have five fields (minute hour day month weekday), "
                           "e.g. '*/5 * * * *'", field="cron")
    try:
        for year in (2000, 2001):  # wall-clock times; a leap-day-only cron fires within 8 years of both
            croniter(text, datetime(year, 1, 1)).get_next(datetime)  # noqa: DTZ001
    except CroniterBadDateError:
        raise InvalidInput("invalid_cron", f"cron {expression!r} never fires", field="cron") from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("invalid_cron", f"cron {expression!r} is not a valid expression: {exc}", field="cron") from None
    return text


def _every_ms(every: str) -> int:
    """The length of an `s`/`m`/`h` interval in ms (0 for day and week intervals, which follow the calendar)."""
    frame = parse_timeframe(every)
    return frame.count * _EVERY_UNITS[frame.unit] if frame.unit in _EVERY_UNITS else 0


def parse_spec(cron: object = None, every: object = None, timezone: object = "UTC") -> Spec:
    """Check a schedule's timing as a client sent it; `invalid_cron`, `invalid_every`, `invalid_timezone` or `invalid_schedule`."""
    if (cron is None) == (every is None):
        raise InvalidInput("invalid_schedule", "give exactly one of `cron` (e.g. '*/5 * * * *') or `every` (e.g. '1m')")
    zone(timezone)
    if cron is not None:
        return Spec(timezone=str(timezone), cron=_cron_fields(cron))
    try:
        frame = parse_timeframe(every)
    except InvalidInput:
        frame = None
    if frame is None or frame.unit not in ("s", "m", "h", "d", "w") or (frame.unit in _EVERY_UNITS and _every_ms(str(every))
                                                                          > _MAX_EVERY_MS):
        raise InvalidInput("invalid_every", f"every must be a count and a unit (s, m, h, d, w) like 30s, 1m, 1h, 1d, 1w, "
                           f"got {every!r}", field="every")
    return Spec(timezone=str(timezone), every=str(frame))


def parse_misfire(policy: object = "skip", limit: object = None) -> Misfire:
    """`skip`, or `catch_up` with a `limit` from 1 to MAX_CATCH_UP (default 10); `invalid_misfire` otherwise."""
    if policy not in MISFIRE_POLICIES:
        raise InvalidInput("invalid_misfire", f"misfire policy must be 'skip' or 'catch_up', got {policy!r}", field="misfire")
    if policy == "skip":
        if limit not in (None, 1):
            raise InvalidInput("invalid_misfire", "skip runs the latest missed tick only: it takes no limit", field="misfire")
        return Misfire(policy="skip", limit=1)
    chosen = 10 if limit is None else limit
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not 1 <= chosen <= MAX_CATCH_UP:
        raise InvalidInput("invalid_misfire", f"catch_up's limit must be a whole number from 1 to {MAX_CATCH_UP}, got {limit!r}",
                           field="misfire")
    return Misfire(policy="catch_up", limit=chosen)


# --- time arithmetic ------------------------------------------------------------------------------
def _offset(tz: tzinfo, t_ms: int) -> int:
    """The zone's UTC offset in ms at instant `t_ms` (zones change offset on whole seconds)."""
    moment = datetime.fromtimestamp(t_ms // 1000, tz)
    offset = moment.utcoffset()
    return 0 if offset is None else offset // _MS


def _first_change(tz: tzinfo, lo: int, hi: int, offset: int) -> int | None:
    """The first instant in (lo, hi] whose offset is not `offset` (one change assumed), or None when hi's is the same."""
    if _offset(tz, hi) == offset:
        return None
    lo_s, hi_s = lo // 1000, -(-hi // 1000)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset(tz, mid * 1000) == offset:
            lo_s = mid
        else:
            hi_s = mid
    return max(hi_s * 1000, lo + 1)


def _naive(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def _cron_next_wall(cron: str, wall_ms: int) -> int:
    """The next wall-clock time strictly after `wall_ms` (naive ms) that the expression matches."""
    return _ms(croniter(cron, _naive(wall_ms)).get_next(datetime))


def _fixed_time(cron: str) -> bool:
    minute, hour = cron.split()[:2]
    return not (minute.startswith("*") or hour.startswith("*"))


def _cron_after(cron: str, tz: tzinfo, after: int) -> int:
    t, offset, inclusive = after, _offset(tz, after), False
    fixed = _fixed_time(cron)
    for _ in range(16):  # each pass crosses one offset change; a year has two
        wall = _cron_next_wall(cron, t + offset - (1 if inclusive else 0))
        candidate = wall - offset
        change = _first_change(tz, t, candidate, offset)
        if change is None:
            return candidate
        new = _offset(tz, change)
        if new > offset:  # spring forward: wall times [change+offset, change+new) never happen
            if fixed and _cron_next_wall(cron, change + offset - 1) < change + new:
                return change
            t, offset, inclusive = change, new, True
        elif fixed:  # fall back: the repeated wall times already had their turn
            t, offset, inclusive = change + (offset - new), new, True
        else:
            t, offset, inclusive = change, new, True
    raise RuntimeError(f"cron {cron!r} in {tz}: no tick found after {after}")  # pragma: no cover - zones do not change this often


def _local_midnight(day: date, tz: tzinfo) -> int:
    return int(datetime.combine(day, time(0), tzinfo=tz).timestamp() * 1000)


def _calendar_after(count: int, unit: str, tz: tzinfo, after: int) -> int:
    day = datetime.fromtimestamp(after // 1000, tz).date()
    for _ in range(count * 7 + 2):
        ordinal = day.toordinal()
        if unit == "d":
            due = (ordinal - _EPOCH_ORDINAL) % count == 0
        else:
            due = day.weekday() == 0 and ((ordinal - _EPOCH_MONDAY) // 7) % count == 0
        if due:
            start = _local_midnight(day, tz)
            if start > after:
                return start
        day += timedelta(days=1)
    raise RuntimeError(f"every {count}{unit}: no tick found after {after}")  # pragma: no cover - a count*7+2 day walk finds one


def next_after(spec: Spec, after: int) -> int:
    """The first tick strictly after instant `after` (ms)."""
    tz = zone(spec.timezone)
    if spec.cron is not None:
        return _cron_after(spec.cron, tz, after)
    assert spec.every is not None
    step = _every_ms(spec.every)
    if step:
        return (after // step + 1) * step
    frame = parse_timeframe(spec.every)
    return _calendar_after(frame.count, frame.unit, tz, after)


def next_runs(spec: Spec, after: int, count: int) -> list[int]:
    """The next `count` ticks strictly after `after`."""
    out: list[int] = []
    t = after
    for _ in range(count):
        t = next_after(spec, t)
        out.append(t)
    return out


def due_ticks(spec: Spec, first: int, now: int, misfire: Misfire) -> tuple[list[int], int]:
    """The ticks to run now, oldest first, and the next tick after `now`.

    `first` is the first tick not yet handled (the schedule's `next_at`); every tick from it up
    to `now` is due, and the policy keeps the latest one (`skip`) or the latest `limit`
    (`catch_up`). A long outage is not walked tick by tick: the search starts near `now` and
    reaches back only as far as it must to find the ticks it keeps.
    """
    following = next_after(spec, now)
    if first > now:
        return [], first
    keep = misfire.limit
    window = 60_000
    while True:
        start = max(first, now - window)
        kept: deque[int] = deque(maxlen=keep)
        t = start if start == first else next_after(spec, start - 1)
        while t <= now:
            kept.append(t)
            t = next_after(spec, t)
        if len(kept) >= keep or start == first:
            return list(kept), following
        window *= 4
