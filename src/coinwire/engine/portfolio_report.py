"""A run's 15-minute portfolio candles from its own clock: the report's `portfolio` block, the same in every mode.

Built after the run like the equity curve, by the tracker's own `core.portfolio.CandleBuilder`
and the rules at an instant it keeps: a bucket's close is the run's value after every event
stamped at or before the bucket's end, a fill stamped at a boundary counts (value and
volume) in the bucket that ends there, buckets between two prices are flat at the last
value. The events are the run's fills (volume: their notional in the quote) and every
candle close of its markets (the prices it is valued at, `engine/valuation.py`): hourly
data gives four candles an hour, three flat; 5-minute data three samples a bucket; a
stream run (paper, L2 book backtest) its one-minute report candles.

Valuing every close as a Decimal would cost seconds on a year of minutes, so all of them are
valued at once in exact integers (`valuation.quantized_values_at`, at `VALUE_DECIMALS`,
half-even, as stored portfolio candles hold them) and the builder sees only the events that
can decide a candle: fills, and each bucket's last, highest and lowest sample. Rounding is
monotone, so the extremes of the rounded values are the rounded extremes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.portfolio import BUCKET_S, VALUE_DECIMALS, CandleBuilder, PortfolioCandle, quantize_value, value_from_int
from coinwire.engine.runtime import Runtime
from coinwire.engine.valuation import holdings_value, plain_decimal, price_at, quantized_values_at, value_at

__all__ = ["portfolio_block", "portfolio_candles"]

_NS = 1_000_000_000
_BUCKET_NS = BUCKET_S * _NS


def portfolio_block(rt: Runtime) -> dict[str, Any]:
    """`{"timeframe": "15m", "currency": quote, "candles": [[open s, o, h, l, c, v], ...]}`: every candle, uncapped."""
    candles = portfolio_candles(rt)
    texts: dict[int, str] = {}  # a bucket opens at the previous close and flat ones repeat it: one value object, formatted once

    def text(value: Decimal) -> str:
        found = texts.get(id(value))  # every value stays alive in `candles` meanwhile: no id is reused
        if found is None:
            found = texts[id(value)] = plain_decimal(value_from_int(quantize_value(value)))
        return found

    return {"timeframe": "15m", "currency": rt.quote,
            "candles": [[c.open_time, text(c.open), text(c.high), text(c.low), text(c.close), text(c.volume)] for c in candles]}


def portfolio_candles(rt: Runtime) -> list[PortfolioCandle]:
    """The run's 15-minute candles from its start to its end (a run that ended inside a bucket: that bucket so far)."""
    start = rt.start_ns
    end = rt.end_ns or rt.now_ns()
    volume = _volumes(rt)
    moves = np.array(sorted({ts for ts, _ in rt.balance_points[1:]} | set(volume)), dtype=np.int64)
    events = _sorted_unique([moves, *(m.series.close_ns for m in rt.report_markets().values())])
    events = events[(events >= start) & (events <= end)]
    values = quantized_values_at(rt, events, VALUE_DECIMALS)
    if values is None:
        values = np.array([quantize_value(value_at(rt, ts)) for ts in events.tolist()], dtype=np.int64)
    keep = _deciding(events, values, _member(events, moves))
    first = holdings_value(rt, rt.balance_points[0][1], lambda symbol: price_at(rt, symbol, rt.start_ns - 1))
    builder = CandleBuilder(first, start)
    out: list[PortfolioCandle] = []
    for ts, units in zip(events[keep].tolist(), values[keep].tolist(), strict=True):
        value = value_from_int(units)
        traded = volume.get(ts)
        out += builder.sample(ts, value) if traded is None else builder.trade(ts, traded, value)
    out += builder.close_until(end)
    forming = builder.forming
    if forming is not None and end % _BUCKET_NS and forming.open_time * _NS < end:
        out.append(forming)
    return out


def _volumes(rt: Runtime) -> dict[int, Decimal]:
    """Traded notional in the quote per instant (buys and sells alike); fills of a market quoted otherwise are not valued."""
    out: dict[int, Decimal] = {}
    for fill in rt.fills:
        inst = rt.instrument(fill.symbol, fill.exchange)
        if inst is not None and inst.quote == rt.quote:
            out[fill.ts] = out.get(fill.ts, Decimal(0)) + Decimal(fill.notional).scaleb(-ATTO_DECIMALS)
    return out


def _deciding(events: np.ndarray, values: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """Which events the builder must see: every fill or balance change, and in each bucket the first sample at its
    highest value, the first at its lowest and its last (the others can decide neither high, low nor close)."""
    keep = moved.copy()
    if not len(events):
        return keep
    bucket = -(-events // _BUCKET_NS)
    firsts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[firsts, len(events)])
    keep[np.r_[firsts[1:], len(events)] - 1] = True
    for extreme in (np.maximum, np.minimum):
        at = np.flatnonzero(values == np.repeat(extreme.reduceat(values, firsts), counts))
        keep[at[np.unique(bucket[at], return_index=True)[1]]] = True
    return keep


def _sorted_unique(parts: list[np.ndarray]) -> np.ndarray:
    """The sorted distinct instants of several arrays (a sort and a compare: cheaper than hashing half a million)."""
    joined = np.sort(np.concatenate(parts)) if len(parts) > 1 else parts[0]
    return joined[np.r_[True, joined[1:] != joined[:-1]]] if len(joined) else joined


def _member(events: np.ndarray, some: np.ndarray) -> np.ndarray:
    """Which of the sorted `events` are in the sorted `some`."""
    if not len(some):
        return np.zeros(len(events), dtype=bool)
    at = np.clip(np.searchsorted(some, events), 0, len(some) - 1)
    return np.asarray(some[at] == events)
