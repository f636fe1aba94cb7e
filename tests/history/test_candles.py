"""history.candles: construction, validation errors naming the row, slicing, merging, timeframes, dates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.history.candles import Candles, concat, parse_time, timeframe_seconds

H = 3600
T0 = 1_606_780_800  # 2020-12-01 00:00 UTC


def make(times: list[int], closes: list[float] | None = None, *, symbol: str = "BTC/USDT", tf: str = "1h") -> Candles:
    closes = closes if closes is not None else [100.0 + i for i in range(len(times))]
    c = np.asarray(closes, dtype=float)
    return Candles("binance", symbol, tf, times, c, c + 1, c - 1, c, np.ones(len(times)))


def test_columns_are_read_only_and_typed() -> None:
    candles = make([T0, T0 + H, T0 + 2 * H])
    assert len(candles) == 3 and candles.time.dtype == np.int64 and candles.close.dtype == np.float64
    assert candles.timeframe_seconds == H and candles.first == T0 and candles.end == T0 + 3 * H
    with pytest.raises(ValueError):
        candles.close[0] = 1.0
    with pytest.raises(AttributeError):
        candles.symbol = "ETH/USDT"  # type: ignore[misc]
    source = np.array([1.0, 2.0])
    c = Candles("binance", "btc_usdt", "1h", [T0, T0 + H], source, source, source, source, source)
    source[0] = 99.0  # the caller's array is copied, never frozen or shared
    assert c.open[0] == 1.0 and c.symbol == "BTC/USDT"


@pytest.mark.parametrize(
    ("column", "value", "code", "words"),
    [
        ("high", 50.0, "invalid_candle", "high is below"),
        ("low", 500.0, "invalid_candle", "low is above"),
        ("close", np.nan, "invalid_candle", "NaN"),
        ("volume", -1.0, "invalid_candle", "volume is negative"),
    ],
)
def test_bad_rows_are_named(column: str, value: float, code: str, words: str) -> None:
    good = make([T0, T0 + H, T0 + 2 * H])
    cols = {name: np.array(getattr(good, name)) for name in ("time", "open", "high", "low", "close", "volume")}
    cols[column][2] = value
    with pytest.raises(InvalidInput) as info:
        Candles("binance", "BTC/USDT", "1h", **cols)
    assert info.value.code == code and info.value.data["row"] == 2
    assert words in info.value.message and "row 2 (2020-12-01 02:00 UTC)" in info.value.message


def test_times_must_increase_by_whole_bars() -> None:
    with pytest.raises(InvalidInput) as info:
        make([T0, T0 + H, T0 + H])
    assert info.value.code == "unsorted_candles" and info.value.data["row"] == 2
    with pytest.raises(InvalidInput) as info:
        make([T0, T0 + H, T0 + H + 300])
    assert info.value.code == "timeframe_mismatch"
    assert len(make([T0, T0 + 3 * H])) == 2  # a gap of whole bars (exchange downtime) is fine


def test_timeframes() -> None:
    assert [timeframe_seconds(tf) for tf in ("1s", "1m", "5m", "15m", "1h", "4h", "1d", "1w")] == [
        1, 60, 300, 900, 3600, 14400, 86400, 604800,
    ]
    for bad in ("1M", "0m", "5", "h1", "1.5h", ""):
        with pytest.raises(InvalidInput) as info:
            timeframe_seconds(bad)
        assert info.value.code == "invalid_timeframe"


def test_slice_is_inclusive_start_exclusive_end() -> None:
    candles = make([T0 + i * H for i in range(10)])
    part = candles.slice(T0 + 2 * H, T0 + 5 * H)
    assert part.time.tolist() == [T0 + 2 * H, T0 + 3 * H, T0 + 4 * H]
    assert candles.slice(T0 + 2 * H + 1, None).first == T0 + 3 * H
    assert len(candles.slice(None, T0)) == 0 and len(candles.slice(T0 + 5 * H, T0)) == 0
    assert len(candles.slice()) == 10


def test_merge_sorts_deduplicates_and_later_wins() -> None:
    a = make([T0, T0 + H, T0 + 2 * H], [1, 2, 3])
    b = make([T0 - H, T0 + 2 * H, T0 + 3 * H], [0.5, 30, 40])
    merged = a.merge(b)
    assert merged.time.tolist() == [T0 - H, T0, T0 + H, T0 + 2 * H, T0 + 3 * H]
    assert merged.close.tolist() == [0.5, 1, 2, 30, 40]  # b's bar at T0+2h replaced a's
    assert b.merge(a).close.tolist() == [0.5, 1, 2, 3, 40]  # order decides
    with pytest.raises(InvalidInput) as info:
        concat([a, make([T0], symbol="ETH/USDT")])
    assert info.value.code == "series_mismatch"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=15, unique=True), min_size=1, max_size=4))
def test_merge_keeps_the_last_source_per_time(parts: list[list[int]]) -> None:
    series = [make([T0 + k * H for k in sorted(p)], [float(j * 100 + k) for k in sorted(p)]) for j, p in enumerate(parts)]
    merged = concat(series)
    expected: dict[int, float] = {}
    for j, p in enumerate(parts):
        for k in p:
            expected[T0 + k * H] = float(j * 100 + k)
    assert merged.time.tolist() == sorted(expected)
    assert merged.close.tolist() == [expected[t] for t in sorted(expected)]


def test_records_round_trip() -> None:
    candles = make([T0, T0 + H])
    again = Candles.from_records("binance", "BTC/USDT", "1h", candles.to_records())
    assert again.equals(candles) and not again.equals(make([T0, T0 + H], [1, 2]))


def test_parse_time() -> None:
    assert parse_time("2020-12-01") == T0
    assert parse_time("2020-12-01T01:00") == T0 + H == parse_time("2020-12-01 01:00:00")
    assert parse_time("2020-12-01T03:00+02:00") == T0 + H
    assert parse_time(str(T0)) == T0 == parse_time(str(T0 * 1000))
    with pytest.raises(InvalidInput) as info:
        parse_time("yesterday")
    assert info.value.code == "invalid_date"
