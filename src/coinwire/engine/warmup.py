"""Warm-up: the closed candles a paper or live run loads before its first event, and where it finds them.

Why: a strategy whose indicators or windows need history (SMA 200 on 5m needs 200 closed 5m
candles; a weekly mean needs a week of candles) would otherwise sit idle until the run had
seen that much market by itself. A run therefore asks, before it starts, for the candles each
of its series needs, from `HistorySource`s tried in order (the history store, the stored
candles, a download or the demo feed's own past; see services/warm_history.py), and seeds its
candle streams with them: indicators are defined at the first event and `candles()` returns
the history.

What a series needs (`Need`): the most of
- the warm-up of every indicator declared on it (`core.indicators`: SMA n needs n, RSI n
  needs n + 1, MACD slow + signal - 1...);
- a window the strategy declares with `self.warm_up(symbol, timeframe, bars=...|seconds=...)`;
and a strategy's explicit `warmup` attribute (a number of candles, or a duration such as
`"7d"`) replaces the derived figure for every one of its series.

The needs are read by a declaration pass (`engine/paper.declared_needs`): the strategy's
`on_start` runs once on a runtime of its own that trades nothing, so what it registers is known before the
run exists, and a run whose warm-up is `required` and short is refused with
`warmup_unavailable` before anything is started or written.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from coinwire.core.errors import InvalidInput
from coinwire.core.rollup import OHLCV, parse_timeframe, utc_bucket

__all__ = ["POLICIES", "HistorySource", "Loaded", "Need", "as_dict", "describe", "explicit_bars", "load_warmup", "parse_policy",
           "unavailable", "window"]

POLICIES = ("best_effort", "required")
_SLACK = 10  # buckets asked for beyond the candles needed, at least (see load_warmup)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


class HistorySource(Protocol):
    """Somewhere closed candles of the past can come from. `name` is what the run log calls it ("stored candles").

    `candles` answers the candles of [start, end) (unix s, bucket starts of `timeframe` in UTC),
    oldest first, as float columns; None when this source does not serve that exchange or
    market at all, an empty or short answer when it serves it but has less.
    """

    @property
    def name(self) -> str: ...

    async def candles(self, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> OHLCV | None: ...


class Need(NamedTuple):
    """`bars` closed candles of `symbol` `timeframe` on the run's first exchange, ending where the run starts."""

    symbol: str
    timeframe: str
    bars: int


class Loaded(NamedTuple):
    """What one need got: the candles (possibly fewer than asked) and the source they came from ("" when none had any)."""

    need: Need
    candles: OHLCV
    source: str
    missing: str  # why it is short ("" when complete)

    @property
    def taken(self) -> int:
        return len(self.candles.time)

    @property
    def complete(self) -> bool:
        return self.taken >= self.need.bars


def parse_policy(value: object) -> str:
    """`best_effort` (start anyway and log the shortfall) or `required` (refuse to start when short)."""
    if value not in POLICIES:
        raise InvalidInput("invalid_warmup", f"warmup must be 'best_effort' or 'required', got {value!r}", warmup=str(value))
    return str(value)


def explicit_bars(value: object, timeframe: str) -> int | None:
    """A strategy's `warmup` attribute as candles of `timeframe`: a count (`200`), a duration (`"7d"`), or None when unset."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput("invalid_warmup", f"warmup must be a number of candles or a duration like '7d', got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        bars = int(value)
    elif isinstance(value, str) and len(value) > 1 and value[:-1].isdigit() and value[-1] in _DURATION_UNITS:
        bars = math.ceil(int(value[:-1]) * _DURATION_UNITS[value[-1]] / parse_timeframe(timeframe).seconds)
    else:
        raise InvalidInput("invalid_warmup", f"warmup must be a number of candles or a duration like '7d', got {value!r}")
    if bars < 0:
        raise InvalidInput("invalid_warmup", f"warmup cannot be negative, got {value!r}")
    return bars


def window(timeframe: str, bars: int | None, seconds: int | None) -> int:
    """The candles of `timeframe` a declared window needs: `bars` as given, or `seconds` rounded up to whole candles."""
    if (bars is None) == (seconds is None):
        raise InvalidInput("invalid_warmup", "warm_up needs either bars= or seconds=")
    count = bars if bars is not None else math.ceil(int(seconds or 0) / parse_timeframe(timeframe).seconds)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InvalidInput("invalid_warmup", f"a warm-up window is a non-negative whole number of candles, got {count!r}")
    return count


async def load_warmup(sources: Sequence[HistorySource], exchange: str, needs: Sequence[Need], at: int) -> list[Loaded]:
    """Each need's newest candles closed at or before `at` (unix s), from the first source that has them all.

    The window asked for reaches a quarter further back than the candles needed, so a series
    with a few buckets without trades still gives its full count.

    When none has them all, the source with the most is kept (the run log says what is
    missing). A source that fails (a download refused, a network error) counts as one that
    has nothing: its reason is kept for the log.
    """
    out = []
    for need in needs:
        tf = parse_timeframe(need.timeframe)
        end = utc_bucket(tf, at)[0]  # the start of the bucket still forming at `at`: candles before it are closed
        # a quarter more buckets than candles: a bucket without a trade has no candle, so real series have gaps
        start = end - (need.bars + max(_SLACK, need.bars // 4)) * tf.seconds
        best: Loaded | None = None
        reasons: list[str] = []
        for source in sources:
            try:
                got = await source.candles(exchange, need.symbol, need.timeframe, start, end)
            except Exception as exc:  # noqa: BLE001 - a source that fails is one that has nothing; the log says why
                reasons.append(f"{source.name}: {getattr(exc, 'message', None) or exc}")
                continue
            if got is None:
                continue
            got = _last(got, need.bars, end)
            if best is None or len(got.time) > best.taken:
                best = Loaded(need, got, source.name, "")
            if len(got.time) >= need.bars:
                break
            reasons.append(f"{source.name} has {len(got.time)}")
        if best is None:
            best = Loaded(need, _empty(), "", "")
        if not best.complete:
            tried = "; ".join(reasons) or "no source serves this market"
            best = best._replace(missing=f"{need.bars - best.taken} of {need.bars} candles missing ({tried})")
        out.append(best)
    return out


def unavailable(exchange: str, loaded: Sequence[Loaded]) -> InvalidInput | None:
    """The refusal of a `required` warm-up that came up short, naming every short series; None when all are complete."""
    short = [item for item in loaded if not item.complete]
    if not short:
        return None
    what = "; ".join(f"{item.need.symbol} {item.need.timeframe}: {item.missing}" for item in short)
    return InvalidInput("warmup_unavailable",
                        f"the run needs history it cannot get on {exchange}: {what}. Start it with warmup=best_effort to run "
                        "without it, or import or record the candles first", exchange=exchange,
                        series=[f"{item.need.symbol} {item.need.timeframe}" for item in short])


def _last(candles: OHLCV, bars: int, end: int) -> OHLCV:
    """The newest `bars` candles that start before `end`, as float columns."""
    time = np.asarray(candles.time, dtype=np.int64)
    keep = np.flatnonzero(time < end)[-bars:] if bars else np.empty(0, np.intp)
    return OHLCV(time[keep], *(np.asarray(col, dtype=np.float64)[keep] for col in candles[1:]))


def _empty() -> OHLCV:
    return OHLCV(np.empty(0, np.int64), *(np.empty(0, np.float64) for _ in range(5)))


def describe(item: Loaded) -> str:
    """The run log's line for one loaded series."""
    need = item.need
    head = f"warm-up: {need.symbol} {need.timeframe}"
    if not item.taken:
        return f"{head}: no candles loaded, {item.missing}"
    first, last = int(item.candles.time[0]), int(item.candles.time[-1])
    line = f"{head} {item.taken} candles from {item.source} {_iso(first)}–{_iso(last)}"
    return line if item.complete else f"{line}; {item.missing}"


def _iso(seconds: int) -> str:
    return _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def as_dict(item: Loaded) -> dict[str, Any]:
    """One loaded series for the run's message log."""
    return {"symbol": item.need.symbol, "timeframe": item.need.timeframe, "wanted": item.need.bars, "loaded": item.taken,
            "source": item.source, "missing": item.missing}
