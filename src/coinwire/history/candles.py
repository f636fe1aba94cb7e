"""Candles: an immutable, validated columnar OHLCV series of one symbol and timeframe on one exchange (the history layer's candles).

Not core.trade_candles (integer rows built from trades) nor engine.backtest.Series (what an
engine runs on, built from these). Timeframes follow core.rollup's grammar; a stored series
needs a fixed bar length, so `1M` is refused here and made by rolling up (`Series.rollup`).

Why columns of NumPy arrays: backtests and batch indicators read whole columns at once, and a
stored series maps straight into them without a per-row object. Times are the bars' open
times in integer unix seconds (UTC). The arrays are read-only, so a series handed to a
strategy or cached by the engine cannot be changed behind anyone's back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from coinwire.core.errors import InvalidInput
from coinwire.core.rollup import parse_timeframe
from coinwire.core.symbols import normalize_symbol

__all__ = ["COLUMNS", "KINDS", "RECORD_DTYPE", "Candles", "concat", "format_time", "parse_time", "timeframe_seconds"]

COLUMNS: Final = ("time", "open", "high", "low", "close", "volume")
# one row of a stored series (history.store): the columns side by side
RECORD_DTYPE: Final = np.dtype([("time", "<i8")] + [(name, "<f8") for name in COLUMNS[1:]])
# What a series' prices are (freqtrade's candle types): traded prices (spot or a perpetual's own
# trades), a perpetual's mark or index price, or its funding rates (the rate in `open`, the rest 0).
KINDS: Final = ("trade", "mark", "index", "premium_index", "funding_rate")


Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def timeframe_seconds(tf: str) -> int:
    """`1m` -> 60, `4h` -> 14400, `1w` -> 604800: the grammar of core.rollup, and a series of stored bars needs a fixed length.

    Months are a timeframe (a backtest or a chart rolls finer candles up to them) but not one
    a stored series can have: bars a month apart are not evenly spaced.
    """
    seconds = parse_timeframe(tf).utc_seconds
    if seconds is None:
        raise InvalidInput("invalid_timeframe",
                           f"candle files and stored series need a fixed bar length, got {tf!r}: months have none "
                           "(load 1d or finer candles; a backtest rolls them up to 1M)", timeframe=str(tf))
    return seconds


def format_time(seconds: int) -> str:
    """Unix seconds as `2021-01-01 00:00 UTC` (error messages and tables)."""
    moment = datetime.fromtimestamp(int(seconds), tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if moment.second else "%Y-%m-%d %H:%M UTC")


def _frozen(values: Any, dtype: type) -> Any:
    arr: np.ndarray = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise InvalidInput("invalid_candles", f"candle columns must be one-dimensional, got shape {arr.shape}")
    if arr.flags.writeable:
        if arr.base is not None or arr is values:  # never freeze a caller's array in place
            arr = arr.copy()
        arr.flags.writeable = False
    return arr


class Candles:
    """One series: `time` (int64 open time, s) and float64 `open`, `high`, `low`, `close`, `volume`.

    Construction validates (see `validate`); `Candles(..., validate=False)` is for data that was
    validated when it was stored.
    """

    __slots__ = ("exchange", "symbol", "timeframe", "kind", "time", "open", "high", "low", "close", "volume")

    exchange: str
    symbol: str
    timeframe: str
    kind: str
    time: Int64Array
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __init__(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        time: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        *,
        validate: bool = True,
        kind: str = "trade",
    ) -> None:
        if not isinstance(exchange, str) or not exchange:
            raise InvalidInput("invalid_exchange", f"exchange must be a name like 'binance', got {exchange!r}")
        timeframe_seconds(timeframe)
        set_ = object.__setattr__
        set_(self, "exchange", exchange)
        set_(self, "symbol", normalize_symbol(symbol))
        set_(self, "timeframe", timeframe)
        if kind not in KINDS:
            raise InvalidInput("invalid_kind", f"candle kind must be one of {', '.join(KINDS)}, got {kind!r}", kind=kind)
        set_(self, "kind", kind)
        set_(self, "time", _frozen(time, np.int64))
        for name, values in (("open", open), ("high", high), ("low", low), ("close", close), ("volume", volume)):
            set_(self, name, _frozen(values, np.float64))
        lengths = {len(getattr(self, name)) for name in COLUMNS}
        if len(lengths) != 1:
            sizes = ", ".join(f"{name}={len(getattr(self, name))}" for name in COLUMNS)
            raise InvalidInput("invalid_candles", f"candle columns differ in length: {sizes}")
        if validate:
            self.validate()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Candles are immutable (tried to set {name!r})")

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_records(
        cls, exchange: str, symbol: str, timeframe: str, records: np.ndarray, *, validate: bool = True, kind: str = "trade"
    ) -> Candles:
        """From a structured array of RECORD_DTYPE (the stored form); columns stay views of it."""
        columns = (np.asarray(records[name]) for name in COLUMNS)
        return cls(exchange, symbol, timeframe, *columns, validate=validate, kind=kind)

    @classmethod
    def empty(cls, exchange: str, symbol: str, timeframe: str) -> Candles:
        return cls.from_records(exchange, symbol, timeframe, np.empty(0, RECORD_DTYPE))

    def to_records(self) -> np.ndarray:
        """The rows as one structured array of RECORD_DTYPE (what history.store writes)."""
        records = np.empty(len(self), RECORD_DTYPE)
        for name in COLUMNS:
            records[name] = getattr(self, name)
        return records

    # --- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.time)

    def __repr__(self) -> str:
        span = f"{format_time(self.first)} .. {format_time(self.last)}" if len(self) else "empty"
        kind = "" if self.kind == "trade" else f" {self.kind}"
        return f"<Candles {self.exchange} {self.symbol} {self.timeframe}{kind}: {len(self)} bars, {span}>"

    @property
    def key(self) -> tuple[str, str, str]:
        """(exchange, symbol, timeframe): what identifies the series."""
        return self.exchange, self.symbol, self.timeframe

    @property
    def series_key(self) -> tuple[str, str, str, str]:
        """(exchange, symbol, timeframe, kind): a perpetual's trade, mark and funding series share `key`."""
        return self.exchange, self.symbol, self.timeframe, self.kind

    @property
    def timeframe_seconds(self) -> int:
        return timeframe_seconds(self.timeframe)

    @property
    def first(self) -> int:
        """Open time of the first bar (s); IndexError when empty."""
        return int(self.time[0])

    @property
    def last(self) -> int:
        """Open time of the last bar (s); IndexError when empty."""
        return int(self.time[-1])

    @property
    def end(self) -> int:
        """Close time of the last bar (s): the first instant after the series."""
        return self.last + self.timeframe_seconds

    def equals(self, other: Candles) -> bool:
        """Same key and the same values in every column (NaN-free by validation)."""
        return self.key == other.key and all(np.array_equal(getattr(self, c), getattr(other, c)) for c in COLUMNS)

    def slice(self, start_s: int | None = None, end_s: int | None = None) -> Candles:
        """Bars whose open time t has start_s <= t < end_s (None: unbounded); views, no copy."""
        lo = 0 if start_s is None else int(np.searchsorted(self.time, start_s, side="left"))
        hi = len(self) if end_s is None else int(np.searchsorted(self.time, end_s, side="left"))
        hi = max(lo, hi)
        columns = (getattr(self, name)[lo:hi] for name in COLUMNS)
        return Candles(self.exchange, self.symbol, self.timeframe, *columns, validate=False, kind=self.kind)

    def merge(self, *others: Candles) -> Candles:
        """This series and others as one: sorted by time, one bar per time, a later source winning."""
        return concat([self, *others])

    # --- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Refuse NaN, high below open/close, low above open/close, negative volume, and times that
        do not increase by whole timeframes; the error names the first bad row and its time.
        Funding rates are signed and carry zeros beside the rate, so only NaN and time are checked."""
        if not len(self):
            return
        floats = np.stack([self.open, self.high, self.low, self.close, self.volume])
        problems: list[tuple[npt.NDArray[np.bool_] | np.bool_, str]] = [
            (~np.isfinite(floats).all(axis=0), "a price or volume is NaN or infinite"),
        ]
        if self.kind != "funding_rate":
            problems += [
                (self.high < np.maximum(self.open, self.close), "high is below open or close"),
                (self.low > np.minimum(self.open, self.close), "low is above open or close"),
                (self.volume < 0, "volume is negative"),
            ]
        bad_rows = [(int(np.argmax(mask)), why) for mask, why in problems if mask.any()]
        if bad_rows:
            row, why = min(bad_rows)
            raise InvalidInput(
                "invalid_candle",
                f"{self._where(row)}: {why} (open {self.open[row]}, high {self.high[row]}, low {self.low[row]}, "
                f"close {self.close[row]}, volume {self.volume[row]})",
                row=row,
            )
        steps = np.diff(self.time)
        if len(steps) and (steps <= 0).any():
            row = int(np.argmax(steps <= 0)) + 1
            raise InvalidInput(
                "unsorted_candles",
                f"{self._where(row)}: time does not increase (previous bar opens {format_time(self.time[row - 1])})",
                row=row,
            )
        seconds = self.timeframe_seconds
        if len(steps) and (steps % seconds).any():
            row = int(np.argmax(steps % seconds != 0)) + 1
            raise InvalidInput(
                "timeframe_mismatch",
                f"{self._where(row)}: opens {int(steps[row - 1])} s after the previous bar, "
                f"not a whole number of {self.timeframe} bars",
                row=row,
                timeframe=self.timeframe,
            )

    def _where(self, row: int) -> str:
        kind = "" if self.kind == "trade" else f" {self.kind}"
        return f"{self.exchange} {self.symbol} {self.timeframe}{kind} row {row} ({format_time(self.time[row])})"


def concat(parts: Iterable[Candles]) -> Candles:
    """Merge series of one key: sorted by time, de-duplicated by time with the LATER part winning.

    Why later wins: re-importing or re-downloading a range corrects bars the exchange
    revised (the last, still-open bar of an earlier download, for one).
    """
    series: Sequence[Candles] = list(parts)
    if not series:
        raise InvalidInput("invalid_candles", "nothing to merge")
    key = series[0].series_key
    for other in series[1:]:
        if other.series_key != key:
            raise InvalidInput(
                "series_mismatch", f"cannot merge {' '.join(other.series_key)} into {' '.join(key)}", expected=list(key)
            )
    if len(series) == 1:
        return series[0]
    time = np.concatenate([s.time for s in series])
    order = np.argsort(time, kind="stable")  # equal times keep the parts' order: the last is the latest
    time = time[order]
    keep = np.ones(len(time), dtype=bool)
    keep[:-1] = time[1:] != time[:-1]
    pick = order[keep]
    columns = [np.concatenate([getattr(s, name) for s in series])[pick] for name in COLUMNS[1:]]
    return Candles(*key[:3], time[keep], *columns, kind=key[3])


_DATE_FORMATS: Final = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")


def parse_time(text: str) -> int:
    """Unix seconds from `2021-01-01`, `2021-01-01T12:00[:00]` (UTC unless an offset is given) or digits.

    Why here: `--since`, `--start` and `--end` of every command read dates the same way.
    """
    value = text.strip()
    if value.isdigit():
        number = int(value)
        return number // 1000 if number >= 10**11 else number  # milliseconds are accepted too
    for fmt in _DATE_FORMATS:
        try:
            return int(datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp())
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "invalid_date", f"date must look like 2021-01-01 or 2021-01-01T12:00 (UTC), got {text!r}", value=text
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
