"""Technical indicators in two forms with the same numbers: batch over NumPy arrays, and streaming O(1) per update.

Why two forms: a backtest knows the whole series and computes an indicator in one vectorised
pass; paper and live runs see one closed bar at a time. A strategy must get the same values
in every mode, so each streaming class reproduces its batch function's arithmetic operation
for operation: SMA, EMA, RSI, ATR and MACD agree bit for bit, Bollinger bands to within a
few ulps of the price.

Conventions (TA-Lib's, so results compare with the reference implementation):
- outputs have the input's length, NaN during the warm-up;
- leading NaNs in the input are skipped (so an indicator can feed another: EMA of RSI);
  a NaN or infinity after the first value is an error (`invalid_series`), never smeared;
- EMA uses alpha = 2/(n+1) seeded with the SMA of its first n values; RSI and ATR use
  Wilder's smoothing (alpha = 1/n) seeded with the mean of their first n changes / ranges;
- Bollinger uses the population standard deviation.
- peak is the running maximum; drawdown the percent below that peak (NaN while the peak is not
  positive); return over n the percent change from n values back (NaN when that value is not
  positive): a portfolio's or a balance's own series read as technical analysis.
Where TA-Lib differs: RSI of a window with no change at all is 50 here (TA-Lib says 0, which
reads as "oversold" on a flat market), and MACD's fast EMA starts at its own n (TA-Lib delays
it to the slow one's start; the two converge within a few slow periods).

SMA uses block prefix/suffix sums: split the series into blocks of n; a window ending in
block j is a suffix of block j-1 plus a prefix of block j. Every sum spans fewer than 2n
values, so rounding does not grow with the series length (a plain cumulative-sum difference
loses digits after millions of bars), and it is O(1) per value in both forms.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt

from coinwire.core.errors import InvalidInput

__all__ = [
    "ATR",
    "DrawdownFromPeak",
    "Peak",
    "ReturnOverWindow",
    "EMA",
    "INDICATORS",
    "MACD",
    "RSI",
    "SMA",
    "Bollinger",
    "Indicator",
    "IndicatorSpec",
    "atr",
    "bollinger",
    "crossover",
    "crossunder",
    "drawdown",
    "ema",
    "indicator_spec",
    "macd",
    "peak",
    "returns",
    "rsi",
    "sma",
]

FloatArray = npt.NDArray[np.float64]
NAN = math.nan


# --- input checks ------------------------------------------------------------------------------
def _period(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInput("invalid_parameter", f"{name} must be an integer >= {minimum}, got {value!r}", parameter=name)
    return int(value)


def _series(x: npt.ArrayLike, name: str = "x") -> tuple[FloatArray, int]:
    """The input as float64 and the index of its first value; NaN is allowed only before it."""
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidInput("invalid_series", f"{name} must be one-dimensional, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if finite.all():
        return arr, 0
    nan = np.isnan(arr)
    start = int(np.argmin(nan)) if not nan.all() else len(arr)
    bad = np.flatnonzero(~finite[start:])
    if len(bad):
        i = start + int(bad[0])
        raise InvalidInput(
            "invalid_series", f"{name}[{i}] is {arr[i]}: only leading NaNs (warm-up) are allowed", index=i
        )
    return arr, start


def _nan_like(n: int) -> FloatArray:
    return np.full(n, np.nan)


def _check_update(value: float, started: bool) -> bool:
    """True when the value counts; a leading NaN is skipped, a later NaN or infinity refused."""
    if math.isfinite(value):
        return True
    if math.isnan(value) and not started:
        return False
    raise InvalidInput("invalid_series", f"indicator input {value} after the first value: only leading NaNs are allowed")


# --- batch -------------------------------------------------------------------------------------
def _block_sma(x: FloatArray, n: int) -> FloatArray:
    """SMA of finite x by block prefix/suffix sums (see the module docstring); NaN before n-1.

    Written with few, reused buffers: fresh arrays cost page faults that dominate the sums.
    """
    size = len(x)
    if size < n:
        return _nan_like(size)
    blocks = -(-size // n)
    result = np.zeros(blocks * n)
    result[:size] = x
    grid = result.reshape(blocks, n)
    suffix = np.empty((blocks, n))
    np.cumsum(grid[:, ::-1], axis=1, out=suffix[:, ::-1])
    np.cumsum(grid, axis=1, out=grid)  # prefix sums, in place
    # window ending at j*n + r = suffix[j-1, r+1] (none when r = n-1) + prefix[j, r]
    np.add(suffix[:-1, 1:], grid[1:, :-1], out=grid[1:, :-1])
    result /= n
    result[: n - 1] = np.nan
    return result[:size]


def sma(x: npt.ArrayLike, n: int) -> FloatArray:
    """Simple moving average of the last n values."""
    n = _period("n", n)
    arr, start = _series(x)
    if start == 0:
        return _block_sma(arr, n)
    out = _nan_like(len(arr))
    out[start:] = _block_sma(arr[start:], n)
    return out


def _ema_list(values: list[float], n: int, alpha: float) -> list[float]:
    """EMA of finite values, TA-Lib's arithmetic: seed = sequential sum / n, then prev + alpha*(v - prev)."""
    out = [NAN] * len(values)
    if len(values) < n:
        return out
    total = 0.0
    for v in values[:n]:
        total += v
    prev = total / n
    out[n - 1] = prev
    for i in range(n, len(values)):
        prev = (values[i] - prev) * alpha + prev
        out[i] = prev
    return out


def ema(x: npt.ArrayLike, n: int) -> FloatArray:
    """Exponential moving average, alpha = 2/(n+1), seeded with the SMA of the first n values."""
    n = _period("n", n)
    arr, start = _series(x)
    out = _nan_like(len(arr))
    out[start:] = _ema_list(arr[start:].tolist(), n, 2.0 / (n + 1))
    return out


def _rsi_value(gain: float, loss: float) -> float:
    total = gain + loss
    return 100.0 * gain / total if total > 0.0 else 50.0


def rsi(x: npt.ArrayLike, n: int = 14) -> FloatArray:
    """Wilder's relative strength index (0..100); the first value needs n changes (index n)."""
    n = _period("n", n)
    arr, start = _series(x)
    out = _nan_like(len(arr))
    body = arr[start:]
    if len(body) <= n:
        return out
    change = np.diff(body)
    rising = change > 0
    ups = np.where(rising, change, 0.0).tolist()
    downs = np.where(rising, 0.0, -change).tolist()
    gain = loss = 0.0
    for i in range(n):  # sequential sums, as the streaming form adds them
        gain += ups[i]
        loss += downs[i]
    gain /= n
    loss /= n
    gains, losses = [gain], [loss]
    keep = n - 1
    for up, down in zip(ups[n:], downs[n:], strict=True):
        gain = (gain * keep + up) / n
        loss = (loss * keep + down) / n
        gains.append(gain)
        losses.append(loss)
    g, l_ = np.array(gains), np.array(losses)
    total = g + l_
    with np.errstate(invalid="ignore", divide="ignore"):
        out[start + n :] = np.where(total > 0.0, 100.0 * g / total, 50.0)
    return out


def macd(x: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(macd, signal, histogram): EMA(fast) - EMA(slow), its EMA(signal), and their difference."""
    fast, slow, signal = _period("fast", fast), _period("slow", slow), _period("signal", signal)
    if fast >= slow:
        raise InvalidInput("invalid_parameter", f"fast ({fast}) must be shorter than slow ({slow})", parameter="fast")
    line = ema(x, fast) - ema(x, slow)
    sig = ema(line, signal)
    return line, sig, line - sig


def bollinger(x: npt.ArrayLike, n: int = 20, k: float = 2.0) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(upper, middle, lower): SMA(n) plus and minus k population standard deviations."""
    n = _period("n", n)
    k = _factor("k", k)
    arr, start = _series(x)
    middle = sma(arr, n)
    std = _nan_like(len(arr))
    body = arr[start:]
    if len(body) >= n:
        windows = np.lib.stride_tricks.sliding_window_view(body, n)
        std[start + n - 1 :] = windows.std(axis=1)
    return middle + k * std, middle, middle - k * std


def _factor(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidInput("invalid_parameter", f"{name} must be a number, got {value!r}", parameter=name)
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InvalidInput("invalid_parameter", f"{name} must be a finite number >= 0, got {value!r}", parameter=name)
    return number


def _true_ranges(high: list[float], low: list[float], close: list[float]) -> list[float]:
    """True range from the second bar on (index i-1 holds bar i's): needs the previous close."""
    out = []
    for i in range(1, len(close)):
        prev = close[i - 1]
        h, lo = high[i], low[i]
        out.append(max(h - lo, abs(h - prev), abs(lo - prev)))
    return out


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14) -> FloatArray:
    """Wilder's average true range; the first value (index n) is the mean of the first n true ranges."""
    n = _period("n", n)
    h, hs = _series(high, "high")
    lo, ls = _series(low, "low")
    c, cs = _series(close, "close")
    if not len(h) == len(lo) == len(c):
        raise InvalidInput("invalid_series", f"high, low and close differ in length: {len(h)}, {len(lo)}, {len(c)}")
    start = max(hs, ls, cs)
    out = _nan_like(len(c))
    ranges = _true_ranges(h[start:].tolist(), lo[start:].tolist(), c[start:].tolist())
    if len(ranges) < n:
        return out
    res = [NAN] * (len(ranges) + 1)
    total = 0.0
    for r in ranges[:n]:
        total += r
    prev = total / n
    res[n] = prev
    keep = n - 1
    for i in range(n, len(ranges)):
        prev = (prev * keep + ranges[i]) / n
        res[i + 1] = prev
    out[start:] = res
    return out


def crossover(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True at i when a crosses above b: a[i] > b[i] and a[i-1] <= b[i-1] (False where either is NaN)."""
    a_arr, b_arr = _pair(a, b)
    out = np.zeros(len(a_arr), dtype=bool)
    out[1:] = (a_arr[1:] > b_arr[1:]) & (a_arr[:-1] <= b_arr[:-1])
    return out


def crossunder(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True at i when a crosses below b: a[i] < b[i] and a[i-1] >= b[i-1] (False where either is NaN)."""
    a_arr, b_arr = _pair(a, b)
    out = np.zeros(len(a_arr), dtype=bool)
    out[1:] = (a_arr[1:] < b_arr[1:]) & (a_arr[:-1] >= b_arr[:-1])
    return out


def _pair(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    a_arr = np.asarray(a, dtype=np.float64)
    b_arr = np.broadcast_to(np.asarray(b, dtype=np.float64), a_arr.shape)
    if a_arr.ndim != 1:
        raise InvalidInput("invalid_series", f"crossover inputs must be one-dimensional, got shape {a_arr.shape}")
    return a_arr, b_arr


def peak(x: npt.ArrayLike) -> FloatArray:
    """Running maximum since the first value (the peak a trailing stop or a drawdown measures from)."""
    arr, start = _series(x)
    out = _nan_like(len(arr))
    if start < len(arr):
        out[start:] = np.maximum.accumulate(arr[start:])
    return out


def _drawdown_of(top: FloatArray | float, value: FloatArray | float) -> Any:
    """Percent below the peak; one expression for both forms so they agree bit for bit."""
    return (top - value) / top * 100.0


def drawdown(x: npt.ArrayLike) -> FloatArray:
    """Percent below the running peak (0 at a new high); NaN while the peak is not positive."""
    arr, _ = _series(x)
    top = peak(arr)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = np.where(top > 0.0, _drawdown_of(top, arr), np.nan)
    return np.asarray(out, dtype=np.float64)


def _return_of(now: FloatArray | float, then: FloatArray | float) -> Any:
    return (now / then - 1.0) * 100.0


def returns(x: npt.ArrayLike, n: int = 1) -> FloatArray:
    """Percent change over the last n values: x[i] / x[i-n] - 1, times 100; NaN when x[i-n] is not positive."""
    n = _period("n", n)
    arr, start = _series(x)
    out = _nan_like(len(arr))
    body = arr[start:]
    if len(body) > n:
        then, now = body[:-n], body[n:]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            out[start + n :] = np.where(then > 0.0, _return_of(now, then), np.nan)
    return out


# --- streaming ---------------------------------------------------------------------------------
class Indicator:
    """A streaming indicator: `update(...)` takes one closed bar's inputs and returns the new value.

    `value` is the last value (NaN until warm); `warmup` is how many inputs the first value needs.
    Class attributes name the registry entry, the inputs `update` takes and the outputs it sets.
    """

    __slots__ = ()
    name: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ("close",)
    outputs: ClassVar[tuple[str, ...]] = ("value",)
    value: float
    warmup: int

    def update(self, *values: float) -> float:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        return not math.isnan(self.value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(value={self.value})"


class SMA(Indicator):
    """Streaming simple moving average, bit-identical to `sma` (same block sums, same order)."""

    name = "sma"
    __slots__ = ("n", "value", "warmup", "_block", "_prefix", "_suffix", "_count")

    def __init__(self, n: int) -> None:
        self.n = _period("n", n)
        self.warmup = self.n
        self.value = NAN
        self._block: list[float] = []  # values of the current block
        self._prefix = 0.0
        self._suffix: list[float] = []  # suffix sums of the previous block (length n), or empty
        self._count = 0

    def update(self, value: float) -> float:  # type: ignore[override]
        value = float(value)
        if not _check_update(value, self._count > 0):
            return self.value
        n = self.n
        r = self._count % n
        if r == 0:
            self._block.clear()
            self._prefix = 0.0
        self._block.append(value)
        self._prefix += value
        self._count += 1
        if r == n - 1:
            total = 0.0 + self._prefix
            self._suffix = np.cumsum(np.array(self._block[::-1]))[::-1].tolist()
        elif self._suffix:
            total = self._suffix[r + 1] + self._prefix
        else:
            return self.value  # still in the first block
        self.value = total / n
        return self.value


class EMA(Indicator):
    """Streaming EMA, bit-identical to `ema`."""

    name = "ema"
    __slots__ = ("n", "alpha", "value", "warmup", "_seed", "_count")

    def __init__(self, n: int) -> None:
        self.n = _period("n", n)
        self.alpha = 2.0 / (self.n + 1)
        self.warmup = self.n
        self.value = NAN
        self._seed = 0.0
        self._count = 0

    def update(self, value: float) -> float:  # type: ignore[override]
        value = float(value)
        if not _check_update(value, self._count > 0):
            return self.value
        self._count += 1
        if self._count > self.n:
            self.value = (value - self.value) * self.alpha + self.value
        else:
            self._seed += value
            if self._count == self.n:
                self.value = self._seed / self.n
        return self.value


class RSI(Indicator):
    """Streaming Wilder RSI, bit-identical to `rsi`."""

    name = "rsi"
    __slots__ = ("n", "value", "warmup", "_prev", "_gain", "_loss", "_count")

    def __init__(self, n: int = 14) -> None:
        self.n = _period("n", n)
        self.warmup = self.n + 1
        self.value = NAN
        self._prev = NAN
        self._gain = 0.0
        self._loss = 0.0
        self._count = 0

    def update(self, value: float) -> float:  # type: ignore[override]
        value = float(value)
        if not _check_update(value, self._count > 0):
            return self.value
        self._count += 1
        prev, self._prev = self._prev, value
        if self._count == 1:
            return self.value
        change = value - prev
        n = self.n
        up, down = (change, 0.0) if change > 0 else (0.0, -change)
        if self._count <= n + 1:
            self._gain += up
            self._loss += down
            if self._count == n + 1:
                self._gain /= n
                self._loss /= n
                self.value = _rsi_value(self._gain, self._loss)
            return self.value
        self._gain = (self._gain * (n - 1) + up) / n
        self._loss = (self._loss * (n - 1) + down) / n
        self.value = _rsi_value(self._gain, self._loss)
        return self.value


class MACD(Indicator):
    """Streaming MACD: `update` returns the MACD line and sets `signal` and `hist` (bit-identical to `macd`)."""

    name = "macd"
    outputs = ("macd", "signal", "hist")
    __slots__ = ("value", "signal", "hist", "warmup", "_fast", "_slow", "_signal")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        fast, slow, signal = _period("fast", fast), _period("slow", slow), _period("signal", signal)
        if fast >= slow:
            raise InvalidInput("invalid_parameter", f"fast ({fast}) must be shorter than slow ({slow})", parameter="fast")
        self._fast, self._slow, self._signal = EMA(fast), EMA(slow), EMA(signal)
        self.warmup = slow + signal - 1
        self.value = self.signal = self.hist = NAN

    def update(self, value: float) -> float:  # type: ignore[override]
        fast = self._fast.update(value)
        slow = self._slow.update(value)
        self.value = fast - slow
        if math.isnan(self.value):
            return self.value
        self.signal = self._signal.update(self.value)
        self.hist = self.value - self.signal
        return self.value


class Bollinger(Indicator):
    """Streaming Bollinger bands: `update` returns the middle band and sets `upper` and `lower`.

    The variance comes from running sums of deviations from a reference price, re-anchored
    and recomputed exactly every n updates, so it neither drifts nor cancels catastrophically.
    """

    name = "bollinger"
    outputs = ("upper", "middle", "lower")
    __slots__ = ("n", "k", "value", "upper", "lower", "warmup", "_sma", "_window", "_ref", "_s1", "_s2", "_since")

    def __init__(self, n: int = 20, k: float = 2.0) -> None:
        self.n = _period("n", n)
        self.k = _factor("k", k)
        self.warmup = self.n
        self._sma = SMA(self.n)
        self._window: deque[float] = deque(maxlen=self.n)
        self.value = self.upper = self.lower = NAN
        self._ref = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self._since = 0

    def update(self, value: float) -> float:  # type: ignore[override]
        value = float(value)
        if not _check_update(value, bool(self._window)):
            return self.value
        middle = self._sma.update(value)
        window = self._window
        if len(window) == self.n:
            old = window[0] - self._ref
            self._s1 -= old
            self._s2 -= old * old
        window.append(value)
        self._since += 1
        if self._since >= self.n:  # re-anchor on the current mean and recompute exactly
            self._ref = math.fsum(window) / len(window)
            devs = [v - self._ref for v in window]
            self._s1 = math.fsum(devs)
            self._s2 = math.fsum(d * d for d in devs)
            self._since = 0
        else:
            dev = value - self._ref
            self._s1 += dev
            self._s2 += dev * dev
        if len(window) < self.n:
            return self.value
        mean_dev = self._s1 / self.n
        std = math.sqrt(max(self._s2 / self.n - mean_dev * mean_dev, 0.0))
        self.value = middle
        self.upper = middle + self.k * std
        self.lower = middle - self.k * std
        return self.value


class ATR(Indicator):
    """Streaming Wilder ATR over (high, low, close), bit-identical to `atr`."""

    name = "atr"
    inputs = ("high", "low", "close")
    __slots__ = ("n", "value", "warmup", "_prev_close", "_total", "_count")

    def __init__(self, n: int = 14) -> None:
        self.n = _period("n", n)
        self.warmup = self.n + 1
        self.value = NAN
        self._prev_close = NAN
        self._total = 0.0
        self._count = 0

    def update(self, high: float, low: float, close: float) -> float:  # type: ignore[override]
        high, low, close = float(high), float(low), float(close)
        started = self._count > 0
        counted = [_check_update(v, started) for v in (high, low, close)]
        if not all(counted):
            if any(counted):
                raise InvalidInput("invalid_series", "ATR needs high, low and close together (one of them is NaN)")
            return self.value
        self._count += 1
        prev, self._prev_close = self._prev_close, close
        if self._count == 1:
            return self.value
        tr = max(high - low, abs(high - prev), abs(low - prev))
        n = self.n
        if self._count <= n + 1:
            self._total += tr
            if self._count == n + 1:
                self.value = self._total / n
            return self.value
        self.value = (self.value * (n - 1) + tr) / n
        return self.value


class Peak(Indicator):
    """Streaming running maximum, identical to `peak`."""

    name = "peak"
    __slots__ = ("value", "warmup")

    def __init__(self) -> None:
        self.warmup = 1
        self.value = NAN

    def update(self, value: float) -> float:  # type: ignore[override]
        value = float(value)
        if not _check_update(value, not math.isnan(self.value)):
            return self.value
        if math.isnan(self.value) or value > self.value:
            self.value = value
        return self.value


class DrawdownFromPeak(Indicator):
    """Streaming percent below the running peak, identical to `drawdown`; `peak` holds the peak itself."""

    name = "drawdown"
    __slots__ = ("value", "warmup", "_peak")

    def __init__(self) -> None:
        self.warmup = 1
        self.value = NAN
        self._peak = Peak()

    @property
    def peak(self) -> float:
        return self._peak.value

    def update(self, value: float) -> float:  # type: ignore[override]
        value = float(value)
        top = self._peak.update(value)
        if math.isnan(top) or not math.isfinite(value):
            return self.value
        self.value = float(_drawdown_of(top, value)) if top > 0.0 else NAN
        return self.value


class ReturnOverWindow(Indicator):
    """Streaming percent change over the last n values, identical to `returns`."""

    name = "return"
    __slots__ = ("n", "value", "warmup", "_window")

    def __init__(self, n: int = 1) -> None:
        self.n = _period("n", n)
        self.warmup = self.n + 1
        self.value = NAN
        self._window: deque[float] = deque(maxlen=self.n + 1)

    def update(self, value: float) -> float:  # type: ignore[override]
        value = float(value)
        if not _check_update(value, bool(self._window)):
            return self.value
        window = self._window
        window.append(value)
        if len(window) <= self.n:
            return self.value
        then = window[0]
        self.value = float(_return_of(value, then)) if then > 0.0 else NAN
        return self.value


# --- registry ----------------------------------------------------------------------------------
class IndicatorSpec(NamedTuple):
    """What the engine needs to declare an indicator by name or class: both forms and the parameters."""

    batch: Any  # the batch function: inputs as arrays, then the parameters
    stream: type[Indicator]
    params: tuple[str, ...]


INDICATORS: dict[str, IndicatorSpec] = {
    "sma": IndicatorSpec(sma, SMA, ("n",)),
    "ema": IndicatorSpec(ema, EMA, ("n",)),
    "rsi": IndicatorSpec(rsi, RSI, ("n",)),
    "macd": IndicatorSpec(macd, MACD, ("fast", "slow", "signal")),
    "bollinger": IndicatorSpec(bollinger, Bollinger, ("n", "k")),
    "atr": IndicatorSpec(atr, ATR, ("n",)),
    "peak": IndicatorSpec(peak, Peak, ()),
    "drawdown": IndicatorSpec(drawdown, DrawdownFromPeak, ()),
    "return": IndicatorSpec(returns, ReturnOverWindow, ("n",)),
}


def indicator_spec(key: str | type[Indicator]) -> IndicatorSpec:
    """The registry entry for a name (`"sma"`, any case) or a streaming class (`SMA`)."""
    name = key.name if isinstance(key, type) and issubclass(key, Indicator) else str(key).lower()
    spec = INDICATORS.get(name)
    if spec is None:
        raise InvalidInput(
            "unknown_indicator", f"unknown indicator {key!r}; known: {', '.join(sorted(INDICATORS))}", indicator=str(key)
        )
    return spec
