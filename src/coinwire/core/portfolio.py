"""Portfolio value candles: 15-minute buckets of a portfolio's value built from its own clock, and exact valuation.

Why one builder for every mode: a live account, a paper session and a backtest must draw the
same chart from the same events, so the rules at an instant live here once and the callers
only feed events in time order:

- buckets are the 15-minute intervals of UTC, (end - 900 s, end]: an event stamped exactly at
  a boundary belongs to the bucket that ENDS there (`bucket_end`);
- a bucket's close is the value after every event stamped at or before its end;
- a fill counts (value and volume) in the bucket its stamp belongs to, so a fill at a
  boundary is volume of the bucket that ends there;
- the next bucket opens at the previous close; high and low are the extremes of the open and
  of every sample inside the bucket; volume is the summed absolute notional traded;
- between two sparse prices (hourly data) the buckets in between are flat at the last value,
  volume 0;
- an event stamped at or before a bucket that was already closed (a late event) counts in the
  forming bucket: a closed candle is never rewritten.

Values are exact Decimals here and stored as integers at VALUE_DECIMALS places
(`quantize_value`, ROUND_HALF_EVEN); nothing here reads a clock. `candle_columns` applies the
same rules to a whole recorded history at once (a run's report), in integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

import msgspec
import numpy as np

__all__ = [
    "BUCKET_S",
    "CandleBuilder",
    "PortfolioCandle",
    "SCOPES",
    "STATUSES",
    "Unpriced",
    "VALUE_DECIMALS",
    "bucket_end",
    "PRICE_DECIMALS",
    "candle_columns",
    "missing_candles",
    "price_units",
    "quantize_value",
    "value_units",
    "value_from_int",
    "value_of",
]

BUCKET_S: Final = 900  # 15 minutes: the one resolution portfolios are captured at; rollups make the rest
VALUE_DECIMALS: Final = 8  # values and volumes are stored as integers of 10**-8 of the display currency
SCOPES: Final = ("account", "wallet_set", "run", "user")
STATUSES: Final = ("complete", "partial", "missing")
_BUCKET_NS: Final = BUCKET_S * 1_000_000_000
_QUANTUM: Final = Decimal(1).scaleb(-VALUE_DECIMALS)
_ZERO: Final = Decimal(0)


class Unpriced(ValueError):
    """Holdings with no price in the display currency: the value would be a guess, so there is none."""

    def __init__(self, assets: list[str]) -> None:
        super().__init__(f"no price for {', '.join(assets)}")
        self.assets = assets


class PortfolioCandle(msgspec.Struct, frozen=True):
    """One 15-minute bucket of a portfolio's value; `open_time` is the bucket's open in unix seconds."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    status: str = "complete"  # "partial": the tracker saw only part of it; "missing": it saw none of it

    @property
    def close_time(self) -> int:
        return self.open_time + BUCKET_S


def bucket_end(ts_ns: int) -> int:
    """The end (unix s) of the bucket an event at `ts_ns` belongs to: a boundary instant ends its bucket."""
    return -(-ts_ns // _BUCKET_NS) * BUCKET_S


def quantize_value(value: Decimal) -> int:
    """A value as the stored integer of 10**-VALUE_DECIMALS units, rounded half to even."""
    scaled = value.scaleb(VALUE_DECIMALS)
    units = int(scaled)
    if scaled == units:  # already on the grid (every value the tracker makes is): nothing to round
        return units
    return int(value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN).scaleb(VALUE_DECIMALS))


PRICE_DECIMALS: Final = 18  # prices in `value_units` are integers of 10**-18 of the display currency per whole unit
_UNIT_DIVISOR: Final = 10 ** (18 + PRICE_DECIMALS - VALUE_DECIMALS)  # ATTO amount times price units -> value units


def value_units(holdings_atto: Mapping[str, int], prices: Mapping[str, int], currency: str) -> int:
    """`value_of` in integers: ATTO amounts times prices at PRICE_DECIMALS, as units of VALUE_DECIMALS (half to even).

    Why a second form: a boundary values every portfolio at once (100,000 of them), and integer
    products are exact and several times faster than Decimal ones. A price with more than
    PRICE_DECIMALS places (an inverse rate) is rounded to them first, far below a value's 8.
    """
    total = 0
    unpriced: list[str] = []
    scale = 10**PRICE_DECIMALS
    for asset, atto in holdings_atto.items():
        if not atto:
            continue
        if asset == currency:
            total += atto * scale
            continue
        price = prices.get(asset)
        if price is None:
            unpriced.append(asset)
        else:
            total += atto * price
    if unpriced:
        raise Unpriced(sorted(unpriced))
    quotient, remainder = divmod(total, _UNIT_DIVISOR)
    twice = 2 * remainder
    if twice > _UNIT_DIVISOR or (twice == _UNIT_DIVISOR and quotient % 2):
        quotient += 1
    return quotient


def price_units(price: Decimal) -> int:
    """A price as an integer at PRICE_DECIMALS (half to even): what `value_units` multiplies by."""
    return int(price.scaleb(PRICE_DECIMALS).to_integral_value(rounding=ROUND_HALF_EVEN))


def value_from_int(units: int) -> Decimal:
    """The Decimal a stored integer stands for (exactly VALUE_DECIMALS places)."""
    return Decimal(units).scaleb(-VALUE_DECIMALS)


def value_of(holdings: Mapping[str, Decimal], prices: Mapping[str, Decimal], currency: str) -> Decimal:
    """Sum of amount times price in `currency` (the currency itself at face value); `Unpriced` lists what has no price.

    Zero amounts need no price: an emptied wallet must not block the valuation of the rest.
    """
    total = _ZERO
    unpriced: list[str] = []
    for asset, amount in holdings.items():
        if not amount:
            continue
        if asset == currency:
            total += amount
            continue
        price = prices.get(asset)
        if price is None:
            unpriced.append(asset)
        else:
            total += amount * price
    if unpriced:
        raise Unpriced(sorted(unpriced))
    return total


def missing_candles(last_close_end: int, first_end: int, value: Decimal) -> list[PortfolioCandle]:
    """The buckets ending in (last_close_end, first_end) as `missing`: nothing was observed in them.

    They carry the last known value flat (volume 0) so a chart and a rollup stay continuous,
    and their status says that no value was seen: consumers that must not show a carried value
    drop them by status. `last_close_end` is the end of the newest stored bucket, `first_end`
    the end of the first bucket the tracker sees again (partial or complete).
    """
    return [
        PortfolioCandle(end - BUCKET_S, value, value, value, value, _ZERO, "missing")
        for end in range(last_close_end + BUCKET_S, first_end, BUCKET_S)
    ]


class CandleBuilder:
    """One portfolio's forming candle, fed its events in time order; each call returns the buckets it closed.

    `start_value` at `start_ns` opens the first bucket; `partial=True` marks that first bucket
    partial when `start_ns` is strictly inside it (the tracker came up mid-bucket). A start
    exactly at a boundary opens the bucket after it: the bucket ending there was not watched.
    """

    __slots__ = ("_end", "_open", "_high", "_low", "_close", "_volume", "_status")

    def __init__(self, start_value: Decimal, start_ns: int, *, partial: bool = False) -> None:
        end = bucket_end(start_ns)
        inside = end * 1_000_000_000 != start_ns
        if not inside:
            end += BUCKET_S
        self._end = end
        self._open = self._high = self._low = self._close = start_value
        self._volume = _ZERO
        self._status = "partial" if partial and inside else "complete"

    @property
    def forming(self) -> PortfolioCandle:
        """The bucket being built, as it stands now (always one: a builder is created with its first value)."""
        return self._candle()

    def _candle(self) -> PortfolioCandle:
        return PortfolioCandle(self._end - BUCKET_S, self._open, self._high, self._low, self._close, self._volume, self._status)

    @property
    def forming_end(self) -> int:
        """End (unix s) of the forming bucket: the next boundary this portfolio must be captured at."""
        return self._end

    @property
    def value(self) -> Decimal:
        """The last value seen."""
        return self._close

    def sample(self, ts_ns: int, value: Decimal) -> list[PortfolioCandle]:
        """A value observed at `ts_ns`: closes the buckets that ended before it, then folds it in."""
        closed = self._close_before(ts_ns)
        self._fold(value)
        return closed

    def trade(self, ts_ns: int, notional: Decimal, value_after: Decimal | None = None) -> list[PortfolioCandle]:
        """A fill at `ts_ns` of `notional` (either sign; its size counts) and, if known, the value after it."""
        closed = self._close_before(ts_ns)
        self._volume += abs(notional)
        if value_after is not None:
            self._fold(value_after)
        return closed

    def close_until(self, ts_ns: int) -> list[PortfolioCandle]:
        """Close every bucket whose end is at or before `ts_ns` (a capture at a boundary passes the boundary)."""
        closed: list[PortfolioCandle] = []
        while self._end * 1_000_000_000 <= ts_ns:
            closed.append(self._roll())
        return closed

    def _close_before(self, ts_ns: int) -> list[PortfolioCandle]:
        # an event belongs to the bucket ending at bucket_end(ts_ns): every bucket ending before closes
        target = bucket_end(ts_ns)
        closed: list[PortfolioCandle] = []
        while self._end < target:
            closed.append(self._roll())
        return closed

    def _fold(self, value: Decimal) -> None:
        self._close = value
        if value > self._high:
            self._high = value
        if value < self._low:
            self._low = value

    def _roll(self) -> PortfolioCandle:
        candle = self._candle()
        close = self._close
        self._end += BUCKET_S
        self._open = self._high = self._low = close
        self._volume = _ZERO
        self._status = "complete"
        return candle


def candle_columns(
    events_ns: np.ndarray, values_units: np.ndarray, volume_units: np.ndarray, start_units: int, start_ns: int, end_ns: int
) -> tuple[np.ndarray, ...]:
    """A whole history's candles at once: what a `CandleBuilder(start, start_ns)` fed these events, then
    `close_until(end_ns)`, returns, plus its forming bucket when `end_ns` is inside one.

    Same rules at an instant (this module's docstring), in array form for a run's report, where
    feeding hundreds of thousands of events one by one costs seconds. `events_ns` are sorted
    distinct instants at or before `end_ns`, `values_units` the value after each and
    `volume_units` the notional traded at each (0: a sample), integers of any one scale; the
    volume sums keep `volume_units`' dtype (object: exact Python ints). Returns the columns
    (open_time s, open, high, low, close, volume), one row per bucket, nothing for an empty span.
    """
    if len(events_ns) and int(events_ns[-1]) > end_ns:
        raise ValueError("events after the end")
    first_end = bucket_end(start_ns) + (BUCKET_S if start_ns % _BUCKET_NS == 0 else 0)
    last_end = bucket_end(end_ns) if end_ns % _BUCKET_NS else end_ns // 1_000_000_000
    n = max(0, (last_end - first_end) // BUCKET_S + 1)
    open_time = np.arange(n, dtype=np.int64) * BUCKET_S + (first_end - BUCKET_S)
    if not n:  # a run ending where it started, at a boundary: its first bucket never formed
        return open_time, *(np.zeros(0, dtype=np.int64) for _ in range(4)), np.zeros(0, dtype=volume_units.dtype)
    # each event's bucket: the one its stamp ends, or the first one for an event before it (a late event)
    bucket = np.maximum(-(-events_ns // _BUCKET_NS), first_end // BUCKET_S) - first_end // BUCKET_S
    close = np.full(n, start_units, dtype=np.int64)
    if len(events_ns):
        newest = np.searchsorted(bucket, np.arange(n), side="right") - 1  # the last event at or before each bucket's end
        close[newest >= 0] = values_units[newest[newest >= 0]]
    open_ = np.r_[np.int64(start_units), close[:-1]][:n]
    high, low, volume = open_.copy(), open_.copy(), np.zeros(n, dtype=volume_units.dtype)
    if len(events_ns):
        firsts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        at = bucket[firsts]
        high[at] = np.maximum(high[at], np.maximum.reduceat(values_units, firsts))
        low[at] = np.minimum(low[at], np.minimum.reduceat(values_units, firsts))
        traded = np.flatnonzero(volume_units != 0)
        if len(traded):
            groups = np.flatnonzero(np.r_[True, bucket[traded][1:] != bucket[traded][:-1]])
            volume[bucket[traded][groups]] = np.add.reduceat(np.abs(volume_units[traded]), groups)
    return open_time, open_, high, low, close, volume
