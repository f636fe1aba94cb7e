"""core.indicators: hand-computed values, batch == streaming (hypothesis), accuracy, errors, and TA-Lib."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.core.indicators import (
    ATR,
    EMA,
    INDICATORS,
    MACD,
    RSI,
    SMA,
    Bollinger,
    atr,
    bollinger,
    crossover,
    crossunder,
    ema,
    indicator_spec,
    macd,
    rsi,
    sma,
)

nan = math.nan


def assert_same(actual: np.ndarray, expected: list[float] | np.ndarray) -> None:
    np.testing.assert_allclose(actual, np.asarray(expected, dtype=float), rtol=1e-12, atol=0, equal_nan=True)


def random_walk(size: int, seed: int = 7, start: float = 20_000.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded geometric random walk closes with highs and lows around them."""
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0, 0.01, size)))
    spread = close * rng.uniform(0, 0.01, size)
    return close + spread, close - spread * rng.uniform(0, 1, size), close


# --- hand-computed values ------------------------------------------------------------------------
def test_sma_by_hand() -> None:
    assert_same(sma([1, 2, 3, 4, 5], 3), [nan, nan, 2, 3, 4])
    assert_same(sma([1, 2, 3, 4, 5, 6, 7], 2), [nan, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
    assert_same(sma([4.0], 1), [4.0])
    assert_same(sma([1, 2], 3), [nan, nan])


def test_ema_is_sma_seeded() -> None:
    # alpha = 2/(3+1) = 0.5; seed = mean(2, 4, 6) = 4; then 4 + 0.5*(8-4) = 6; 6 + 0.5*(12-6) = 9
    assert_same(ema([2, 4, 6, 8, 12], 3), [nan, nan, 4, 6, 9])


def test_rsi_wilder_by_hand() -> None:
    # changes +1 -1 +1 +1; n=2: first averages 0.5/0.5 -> 50; then (0.5+1)/2=0.75 vs 0.25 -> 75; 0.875/0.125 -> 87.5
    assert_same(rsi([1, 2, 1, 2, 3], 2), [nan, nan, 50, 75, 87.5])
    assert_same(rsi([5, 5, 5, 5], 2), [nan, nan, 50, 50])  # no change at all: neutral, not "oversold"
    assert_same(rsi([1, 2, 3, 4], 2), [nan, nan, 100, 100])


def test_atr_by_hand() -> None:
    high, low, close = [10, 11, 12, 11], [8, 9, 9, 10], [9, 10, 11, 10.5]
    # true ranges from bar 1: max(2, 2, 0)=2, max(3, 2, 1)=3, max(1, 0, 1)=1; ATR(2): (2+3)/2, then (2.5+1)/2
    assert_same(atr(high, low, close, 2), [nan, nan, 2.5, 1.75])


def test_bollinger_by_hand() -> None:
    upper, middle, lower = bollinger([1, 2, 3, 5], 3, 2)
    std1, std2 = math.sqrt(2 / 3), math.sqrt(14 / 9)  # population std of (1,2,3) and (2,3,5)
    assert_same(middle, [nan, nan, 2, 10 / 3])
    assert_same(upper, [nan, nan, 2 + 2 * std1, 10 / 3 + 2 * std2])
    assert_same(lower, [nan, nan, 2 - 2 * std1, 10 / 3 - 2 * std2])


def test_macd_is_ema_difference_and_its_signal() -> None:
    _, _, close = random_walk(300)
    line, signal, hist = macd(close, 12, 26, 9)
    assert_same(line, ema(close, 12) - ema(close, 26))
    expected_signal = np.full(300, np.nan)
    expected_signal[25:] = ema(line[25:], 9)
    assert_same(signal, expected_signal)
    assert_same(hist, line - signal)
    assert np.isnan(signal[:33]).all() and not np.isnan(signal[33])  # slow + signal - 2


def test_crossover_and_crossunder() -> None:
    a = [1, 3, 3, 1, 2, 2, 5]
    b = [2, 2, 3, 2, 2, 2, 2]
    assert crossover(a, b).tolist() == [False, True, False, False, False, False, True]
    assert crossunder(a, b).tolist() == [False, False, False, True, False, False, False]
    assert crossover([nan, 3.0], [1.0, 1.0]).tolist() == [False, False]  # warm-up never crosses
    assert crossover([1.0, 3.0, 1.0], 2.0).tolist() == [False, True, False]  # a scalar level


def test_leading_nans_are_skipped_so_indicators_chain() -> None:
    assert_same(sma([nan, nan, 1, 2, 3], 2), [nan, nan, nan, 1.5, 2.5])
    _, _, close = random_walk(100)
    chained = ema(rsi(close, 14), 5)
    assert np.isnan(chained[:18]).all() and np.isfinite(chained[18:]).all()


# --- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: sma([1, 2, 3], 0),
        lambda: ema([1, 2, 3], 2.5),
        lambda: rsi([1, 2, 3], True),
        lambda: macd([1, 2, 3], 26, 12),
        lambda: bollinger([1, 2, 3], 2, -1),
        lambda: SMA(0),
        lambda: MACD(5, 5),
    ],
)
def test_bad_parameters_are_refused(call: object) -> None:
    with pytest.raises(InvalidInput) as info:
        call()  # type: ignore[operator]
    assert info.value.code == "invalid_parameter"


def test_nan_after_the_start_is_refused_with_its_index() -> None:
    with pytest.raises(InvalidInput, match=r"x\[3\]") as info:
        sma([1, 2, 3, nan, 5], 2)
    assert info.value.code == "invalid_series" and info.value.data["index"] == 3
    with pytest.raises(InvalidInput):
        ema([1, 2, math.inf], 2)
    stream = SMA(2)
    assert math.isnan(stream.update(nan))  # leading: skipped
    stream.update(1.0)
    with pytest.raises(InvalidInput) as info:
        stream.update(nan)
    assert info.value.code == "invalid_series"
    with pytest.raises(InvalidInput):
        atr([1, 2], [1, 2, 3], [1, 2, 3], 2)


def test_registry_by_name_and_class() -> None:
    assert indicator_spec("SMA") is INDICATORS["sma"] is indicator_spec(SMA)
    for name, (batch, stream, params) in INDICATORS.items():
        assert stream.name == name and callable(batch)
        assert params or name in ("peak", "drawdown")  # peak and drawdown take no parameter
    with pytest.raises(InvalidInput) as info:
        indicator_spec("smaa")
    assert info.value.code == "unknown_indicator" and "sma" in info.value.message


# --- batch == streaming ------------------------------------------------------------------------------
def stream_values(indicator: object, *inputs: np.ndarray) -> np.ndarray:
    update = indicator.update  # type: ignore[attr-defined]
    return np.array([update(*row) for row in zip(*(x.tolist() for x in inputs), strict=True)])


prices = st.lists(st.floats(1e-4, 1e6, allow_nan=False, allow_infinity=False), min_size=0, max_size=120)


@settings(max_examples=150, deadline=None)
@given(values=prices, n=st.integers(1, 30), lead=st.integers(0, 3))
def test_streaming_sma_ema_rsi_equal_batch_bit_for_bit(values: list[float], n: int, lead: int) -> None:
    x = np.array([nan] * lead + values)
    for batch, stream in ((sma, SMA), (ema, EMA), (rsi, RSI)):
        expected = batch(x, n)
        got = stream_values(stream(n), x)
        np.testing.assert_array_equal(got, expected)  # exact, NaN where NaN


@settings(max_examples=100, deadline=None)
@given(values=prices, fast=st.integers(1, 10), extra=st.integers(1, 15), signal=st.integers(1, 10))
def test_streaming_macd_equals_batch(values: list[float], fast: int, extra: int, signal: int) -> None:
    x = np.array(values)
    line, sig, hist = macd(x, fast, fast + extra, signal)
    stream = MACD(fast, fast + extra, signal)
    rows = [(stream.update(v), stream.signal, stream.hist) for v in values]
    got = np.array(rows).reshape(-1, 3)
    np.testing.assert_array_equal(got[:, 0], line)
    np.testing.assert_array_equal(got[:, 1], sig)
    np.testing.assert_array_equal(got[:, 2], hist)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(1, 1e5), st.floats(0, 0.2), st.floats(0, 1)), min_size=0, max_size=100
    ),
    n=st.integers(1, 20),
)
def test_streaming_atr_equals_batch(rows: list[tuple[float, float, float]], n: int) -> None:
    close = np.array([c for c, _, _ in rows])
    high = close * (1 + np.array([w for _, w, _ in rows]))
    low = close - (high - close) * np.array([f for _, _, f in rows])
    np.testing.assert_array_equal(stream_values(ATR(n), high, low, close), atr(high, low, close, n))


@settings(max_examples=150, deadline=None)
@given(values=prices, n=st.integers(1, 25), k=st.floats(0, 4))
def test_streaming_bollinger_matches_batch(values: list[float], n: int, k: float) -> None:
    x = np.array(values)
    upper, middle, lower = bollinger(x, n, k)
    stream = Bollinger(n, k)
    got = np.array([(stream.update(v), stream.upper, stream.lower) for v in values]).reshape(-1, 3)
    np.testing.assert_array_equal(got[:, 0], middle)  # the middle band is the SMA, bit for bit
    scale = np.abs(x).max() if len(x) else 1.0  # bands are prices: compare relative to the price scale
    np.testing.assert_allclose(got[:, 1], upper, rtol=0, atol=1e-9 * scale, equal_nan=True)
    np.testing.assert_allclose(got[:, 2], lower, rtol=0, atol=1e-9 * scale, equal_nan=True)


def test_long_series_stays_accurate() -> None:
    """Over a million values SMA equals an exactly rounded sum per window to 1e-12 (no drift)."""
    _, _, close = random_walk(1_000_000, seed=3, start=60_000.0)
    n = 200
    got = sma(close, n)
    for end in (n - 1, 123_456, 999_999):
        window = close[end - n + 1 : end + 1]
        assert got[end] == pytest.approx(math.fsum(window) / n, rel=1e-12, abs=0)
    stream = SMA(n)
    for v in close[:5000].tolist():
        stream.update(v)
    assert stream.value == got[4999]


def test_streaming_bollinger_recovers_from_a_calm_window_after_a_jump() -> None:
    x = np.concatenate([np.full(20, 1.0), np.full(20, 1e6), 1e6 + np.arange(40) * 1e-3])
    upper, middle, _ = bollinger(x, 10, 2)
    stream = Bollinger(10, 2)
    for v in x.tolist():
        stream.update(v)
    assert stream.upper - stream.value == pytest.approx(upper[-1] - middle[-1], rel=1e-6)


# --- TA-Lib (test-only peer) ----------------------------------------------------------------------------
def test_agrees_with_talib() -> None:
    talib = pytest.importorskip("talib", reason="TA-Lib not installed (test-only peer: pip install TA-Lib==0.8.2)")
    high, low, close = random_walk(20_000, seed=11)

    def same(ours: np.ndarray, theirs: np.ndarray, skip: int = 0) -> None:
        np.testing.assert_array_equal(np.isnan(ours[skip:]), np.isnan(theirs[skip:]))
        np.testing.assert_allclose(ours[skip:], theirs[skip:], rtol=1e-9, equal_nan=True)

    for n in (2, 14, 50, 200):
        same(sma(close, n), talib.SMA(close, n))
        same(ema(close, n), talib.EMA(close, n))
        same(rsi(close, n), talib.RSI(close, n))
        same(atr(high, low, close, n), talib.ATR(high, low, close, n))
        for ours, theirs in zip(bollinger(close, n, 2.0), talib.BBANDS(close, n, 2.0, 2.0, 0), strict=True):
            same(ours, theirs)
    # TA-Lib starts MACD's fast EMA late (at the slow one's start); after 20 slow periods both agree
    for ours, theirs in zip(macd(close, 12, 26, 9), talib.MACD(close, 12, 26, 9), strict=True):
        np.testing.assert_allclose(ours[520:], theirs[520:], rtol=1e-6, atol=1e-9 * close.max())
