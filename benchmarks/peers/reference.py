"""Bare NumPy reference of the seed's MA cross backtest: the oracle every engine is compared to.

Semantics (issue 3, `ma_cross`): SMA fast/slow on closes; a signal only on a cross computed on
closed bars: golden cross at bar i when fast[i] > slow[i] and fast[i-1] <= slow[i-1] (all four
defined) buys all-in, death cross (fast[i] < slow[i] and fast[i-1] >= slow[i-1]) sells
everything; long-only; a signal in the state it asks for is ignored. Fills at the next bar's
open (`fill="open"`, the default) or at the signal bar's close (`fill="close"`); a signal with
no bar left to fill on is dropped. Size = cash / (price * (1 + fee)); the fee is fee * notional
in quote on buys and sells; final equity = cash + size * last close.

The cross test is exact: closes on a decimal grid are scaled to integers and compared as
`slow * sum_fast` vs `fast * sum_slow`, so no float rounding decides a cross. Float engines
agree with it except at exact ties (fast == slow on a bar), which are counted in `ties`.
Only the ~thousands of signals go through a Python loop; the rest is vectorised, so this is
also the "bare NumPy" figure of benchmarks/backtest_sma.py. Needs only NumPy and the standard
library, so it runs in the project's venv and in .venv-peers alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Candles", "load_freqtrade_json", "bar_ms", "sma", "cross_signals", "backtest"]

_MAX_DECIMALS = 8


class Candles(NamedTuple):
    """Columns of a candle file as float64 arrays (time in ms since the epoch)."""

    time_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def load_freqtrade_json(path: Path | str) -> Candles:
    """Read freqtrade JSON candles (`[[ms, o, h, l, c, v], ...]`) into column arrays."""
    rows = np.asarray(json.loads(Path(path).read_text()), dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < 6 or len(rows) == 0:
        raise ValueError(f"{path}: expected a non-empty list of [ms, open, high, low, close, volume] rows")
    return Candles(*(np.ascontiguousarray(rows[:, k]) for k in range(6)))


def bar_ms(time_ms: np.ndarray) -> int:
    """The bar length in ms: the smallest step between open times (gaps only make steps longer)."""
    steps = np.diff(time_ms)
    return int(steps[steps > 0].min()) if len(steps) else 0


def sma(close: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average, NaN for the first period-1 bars (float; for display and peers)."""
    out = np.full(len(close), np.nan)
    if len(close) >= period:
        sums = np.cumsum(np.concatenate(([0.0], close)))
        out[period - 1 :] = (sums[period:] - sums[:-period]) / period
    return out


def _grid(close: np.ndarray, factor: int) -> np.ndarray | None:
    """Closes as exact int64 multiples of 10^-d for the smallest d that fits, else None.

    None also when `factor` times the sum of all closes could overflow int64.
    """
    for decimals in range(_MAX_DECIMALS + 1):
        scaled = np.rint(close * 10.0**decimals)
        if np.all(np.abs(scaled / 10.0**decimals - close) <= 1e-9 * np.maximum(1.0, np.abs(close))):
            if float(np.abs(scaled).sum()) * factor < 2.0**62:
                return scaled.astype(np.int64)
            return None
    return None


def _window_sums(values: np.ndarray, period: int) -> np.ndarray:
    sums = np.cumsum(np.concatenate((np.zeros(1, dtype=values.dtype), values)))
    return sums[period:] - sums[:-period]  # sums[k] is the window ending at bar k + period - 1


def cross_signals(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Bars of golden and death crosses, and the number of bars where fast == slow exactly.

    The sign of fast - slow is taken from exact integer sums when the closes sit on a decimal
    grid (always, for exchange data), from float sums otherwise.
    """
    if not 0 < fast < slow:
        raise ValueError(f"need 0 < fast < slow, got fast={fast} slow={slow}")
    n = len(close)
    if n < slow + 1:
        return np.empty(0, np.int64), np.empty(0, np.int64), 0
    grid = _grid(close, slow)
    values = grid if grid is not None else close
    fast_sums = _window_sums(values, fast)[slow - fast :]  # aligned: both end at bars slow-1 .. n-1
    slow_sums = _window_sums(values, slow)
    sign = np.sign(slow * fast_sums - fast * slow_sums)  # sign(fast_sma - slow_sma)
    prev, cur = sign[:-1], sign[1:]
    golden = np.flatnonzero((cur > 0) & (prev <= 0)) + slow  # index into bars
    death = np.flatnonzero((cur < 0) & (prev >= 0)) + slow
    return golden, death, int(np.count_nonzero(sign == 0))


def backtest(
    candles: Candles,
    *,
    fast: int = 50,
    slow: int = 200,
    fee: float = 0.001,
    fill: str = "open",
    cash: float = 10_000.0,
) -> dict[str, Any]:
    """Run the MA cross and return entries, exits, final equity, trades and tie count.

    Trades carry the fill instant in ms (the bar's open for next-open fills, its close for
    signal-close fills), side, price, size and fee (quote).
    """
    if fill not in ("open", "close"):
        raise ValueError(f"fill must be 'open' or 'close', got {fill!r}")
    golden, death, ties = cross_signals(candles.close, fast, slow)
    n = len(candles.close)
    signals = sorted([(int(i), "buy") for i in golden] + [(int(i), "sell") for i in death])
    prices = candles.open if fill == "open" else candles.close
    shift = 1 if fill == "open" else 0
    late = bar_ms(candles.time_ms) if fill == "close" else 0
    size = 0.0
    trades: list[dict[str, Any]] = []
    for bar, side in signals:
        at = bar + shift
        if at >= n:
            break
        price = float(prices[at])
        if side == "buy" and size == 0.0:
            size = cash / (price * (1.0 + fee))
            notional = size * price
            paid = notional * fee
            cash -= notional + paid
        elif side == "sell" and size > 0.0:
            notional = size * price
            paid = notional * fee
            cash += notional - paid
        else:
            continue
        trades.append({"time": int(candles.time_ms[at]) + late, "side": side, "price": price, "size": size, "fee": paid})
        if side == "sell":
            size = 0.0
    entries = sum(1 for t in trades if t["side"] == "buy")
    return {
        "entries": entries,
        "exits": len(trades) - entries,
        "final_equity": cash + size * float(candles.close[-1]),
        "trades": trades,
        "ties": ties,
    }
