"""core.analysis and the analyser's indicators: series grammar, keys, and peak/drawdown/return streaming == batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.analysis import (
    DrawdownFromPeak,
    Peak,
    ReturnOverWindow,
    SeriesRef,
    Stream,
    analysis_key,
    parse_analysis_key,
    parse_indicator,
    parse_series,
)
from coinwire.core.errors import InvalidInput
from coinwire.core.indicators import INDICATORS, drawdown, indicator_spec, peak, returns

nan = math.nan


def test_series_grammar_and_canonical_text() -> None:
    market = parse_series("market:Binance:btc_usdt:1h")
    assert market == SeriesRef("market", exchange="binance", symbol="BTC/USDT", timeframe="1h")
    assert market.text == "market:binance:BTC/USDT:1h" and market.candles and market.resolved
    perp = parse_series("market:binance:BTC/USDT:USDT:4h")
    assert perp.symbol == "BTC/USDT:USDT" and perp.timeframe == "4h"
    own = parse_series("portfolio")
    assert not own.resolved and own.timeframe == "15m" and own.text == "portfolio"
    assert own.in_scope("account", "7") == parse_series("portfolio:account:7:15m")
    assert parse_series("portfolio:1h").in_scope("user", "3").text == "portfolio:user:3:1h"
    assert parse_series("balance:3:usdt") == SeriesRef("balance", account_id=3, currency="USDT")
    position = parse_series("position:3:btc_usdt:usdt")
    assert position.symbol == "BTC/USDT:USDT" and not position.candles and position.text == "position:3:BTC/USDT:USDT"
    for text in ("market:binance:BTC/USDT:1h", "portfolio:wallet_set:9:1d", "balance:2:BTC", "position:2:ETH/USDT"):
        assert parse_series(text).text == text


@pytest.mark.parametrize(
    "bad",
    ["", "candles:x", "market:binance:BTC/USDT", "market:binance:BTCUSDT:1h", "market:bin ance:BTC/USDT:1h",
     "market:binance:BTC/USDT:1x", "portfolio:account:7:5m", "portfolio:team:7:1h", "portfolio:account:7",
     "balance:x:USDT", "balance:0:USDT", "balance:1:US-D", "position:1", "position:-1:BTC/USDT"],
)
def test_unknown_series_is_refused_with_one_code(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_series(bad)
    assert info.value.code == "unknown_series" and repr(bad) in info.value.message


def test_keys_are_canonical() -> None:
    assert analysis_key("market:binance:BTC/USDT:1h", "rsi", [14]) == "market.binance.BTC-USDT.1h:rsi(14)"
    assert analysis_key("market:binance:btc_usdt:1h", "RSI") == "market.binance.BTC-USDT.1h:rsi(14)"  # default n
    assert analysis_key("portfolio:account:7:1h", "bollinger.upper", [20, 2.0]) == \
        analysis_key("portfolio:account:7:1h", "bollinger.upper", [20, 2]) == "portfolio.account.7.1h:bollinger.upper(20,2)"
    assert analysis_key("portfolio", "macd.macd") == analysis_key("portfolio", "macd") == "portfolio:macd(12,26,9)"
    assert analysis_key("balance:3:USDT", "value") == "balance.3.USDT:value()"
    assert analysis_key("position:3:BTC/USDT:USDT", "drawdown") == "position.3.BTC-USDT.USDT:drawdown()"
    assert analysis_key("portfolio:user:1:15m", "return", [4]) == "portfolio.user.1.15m:return(4)"


@pytest.mark.parametrize(
    ("indicator", "params", "code"),
    [("rsi", [0], "invalid_parameter"), ("nope", [], "unknown_indicator"), ("rsi", [1, 2], "invalid_parameter"),
     ("macd.x", [], "unknown_indicator"), ("rsi.signal", [], "unknown_indicator"), ("sma", [], "invalid_parameter"),
     ("sma", [True], "invalid_parameter"), ("sma", [nan], "invalid_parameter"), ("macd", [5, 3], "invalid_parameter"),
     ("", [], "unknown_indicator"), ("sma", "20", "invalid_parameter")],
)
def test_bad_indicators(indicator: str, params: list[object], code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_indicator(indicator, params)  # type: ignore[arg-type]
    assert info.value.code == code


def test_registry_knows_the_analyser_indicators() -> None:
    assert indicator_spec("peak").stream is Peak and indicator_spec(DrawdownFromPeak) is INDICATORS["drawdown"]
    assert indicator_spec("return").stream is ReturnOverWindow and indicator_spec("return").params == ("n",)


def test_hand_computed_values() -> None:
    x = [nan, 100.0, 120.0, 90.0, 130.0, 104.0]
    np.testing.assert_array_equal(peak(x), [nan, 100, 120, 120, 130, 130])
    np.testing.assert_allclose(drawdown(x), [nan, 0, 0, 25, 0, 20], equal_nan=True)
    np.testing.assert_allclose(returns(x, 2), [nan, nan, nan, -10, 130 / 120 * 100 - 100, 104 / 90 * 100 - 100], equal_nan=True)
    assert math.isnan(drawdown([-5.0, -1.0])[1])  # no positive peak: no percent
    assert math.isnan(returns([0.0, 5.0], 1)[1])
    dd = DrawdownFromPeak()
    for v in (100.0, 80.0):
        dd.update(v)
    assert dd.value == 20.0 and dd.peak == 100.0


def test_stream_reads_the_named_output_and_points_feed_ohlc() -> None:
    upper = Stream(parse_indicator("bollinger.upper", [2, 1]))
    middle = Stream(parse_indicator("bollinger", [2, 1]))
    for v in (1.0, 3.0):
        u, m = upper.update(v, v, v), middle.update(v, v, v)
    assert (u, m) == (3.0, 2.0)
    atr = Stream(parse_indicator("atr", [1]))
    atr.update(2.0, 1.0, 1.5)
    assert atr.update(4.0, 2.0, 3.0) == 2.5  # max(2, |4-1.5|, |2-1.5|)
    value = Stream(parse_indicator("value"))
    assert value.update(7.0, 7.0, 7.0) == 7.0


def stream_of(indicator: object, x: np.ndarray) -> np.ndarray:
    return np.array([indicator.update(v) for v in x.tolist()])  # type: ignore[attr-defined]


values = st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), max_size=120)


@settings(max_examples=200, deadline=None)
@given(values=values, n=st.integers(1, 20), lead=st.integers(0, 3))
def test_streaming_peak_drawdown_return_equal_batch_bit_for_bit(values: list[float], n: int, lead: int) -> None:
    x = np.array([nan] * lead + values)
    np.testing.assert_array_equal(stream_of(Peak(), x), peak(x))
    np.testing.assert_array_equal(stream_of(DrawdownFromPeak(), x), drawdown(x))
    np.testing.assert_array_equal(stream_of(ReturnOverWindow(n), x), returns(x, n))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(1e-3, 1e6, allow_nan=False), min_size=1, max_size=80))
def test_peak_never_decreases_and_drawdown_is_a_percent(values: list[float]) -> None:
    top, dd = peak(values), drawdown(values)
    assert (np.diff(top) >= 0).all() and (top >= np.array(values)).all()
    assert ((dd >= 0) & (dd < 100)).all()


def test_streams_refuse_a_gap_after_the_first_value() -> None:
    for stream in (Peak(), DrawdownFromPeak(), ReturnOverWindow(2)):
        stream.update(nan)  # warm-up NaN skipped
        stream.update(1.0)
        with pytest.raises(InvalidInput) as info:
            stream.update(nan)
        assert info.value.code == "invalid_series"


@pytest.mark.parametrize(("series", "indicator", "params"), [
    ("market:binance:BTC/USDT:1h", "rsi", (14,)), ("market:demo:BTC/USDT:USDT:15m", "macd.signal", ()),
    ("portfolio:account:7:1h", "sma", (50,)), ("portfolio:wallet_set:9:15m", "bollinger.upper", (20, 2.5)),
    ("balance:3:USDT", "value", ()), ("position:3:BTC/USDT:USDT", "ema", (5,)), ("market:my-ex:ETH/BTC:1d", "value", ()),
    ("portfolio:1h", "sma", (20,)), ("portfolio", "drawdown", ()),
])
def test_an_analysis_key_names_back_its_series_indicator_and_params(series: str, indicator: str,
                                                                    params: tuple[int | float, ...]) -> None:
    """A rule's `other` key is computed from what it names: the key's folded spelling is inverted exactly."""
    key = analysis_key(series, indicator, params)
    again = parse_analysis_key(key)
    assert analysis_key(*again) == key and again[0] == parse_series(series).text


@pytest.mark.parametrize("key", ["x", "a:b:c", "market.binance.BTC-USDT.1h:rsi(14", "market.binance.BTC-USDT.1h:nope(1)",
                                 "market.binance.BTC-USDT.1h:rsi(x)", "market.binance.BTC-USDT.1h:rsi(14.0)",
                                 "market.binance.BTC-USDT.1h:sma", "moon.1.BTC:value()"])
def test_a_key_nothing_spells_is_refused(key: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_analysis_key(key)
    assert refused.value.code == "unknown_series"
