"""Outside signals' formats: TradingView alerts and generic signals read into the normalised form, refusals naming the field,
times in one grammar, and a recorded line reading back as what was normalised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.core.outside_signals import check_provider, normalise, parse_ts, read_line, take_credential, tradingview_symbol

NOW = 1_800_000_000_000_000_000  # ns (2027-01-15)

# what a TradingView strategy alert's message box holds once TradingView filled its placeholders
ALERT = {"passphrase": "cwk_x", "ticker": "BINANCE:BTCUSDT", "exchange": "BINANCE", "action": "BUY",
         "contracts": Decimal("0.0125"), "price": "43210.5", "position": "long", "position_size": "0.0125",
         "order_id": "Long", "comment": "entry", "interval": "60", "time": "2026-12-07T09:00:00Z",
         "timenow": "2026-12-07T09:59:58Z", "strategy": "my ema"}


def test_a_tradingview_strategy_alert_is_normalised_with_its_key_taken_out() -> None:
    body, key = take_credential(ALERT)
    assert key == "cwk_x" and "passphrase" not in body
    signal = normalise("tradingview", body, NOW, tradingview=True)
    assert signal["provider"] == "tradingview" and signal["method"] == "alert" and signal["ts"] == NOW
    params = signal["params"]
    assert params["symbol"] == "BTC/USDT" and params["ticker"] == "BINANCE:BTCUSDT" and params["action"] == "buy"
    assert params["contracts"] == "0.0125" and params["price"] == "43210.5" and params["position"] == "long"
    assert params["time"] == "2026-12-07T09:00:00Z" and params["extra"] == {"strategy": "my ema"}
    assert params["close"] is None and params["message"] is None  # every field present, None when the alert has none
    assert "passphrase" not in params and "cwk_x" not in repr(signal)


@pytest.mark.parametrize(("ticker", "symbol"), [
    ("BTCUSDT", "BTC/USDT"), ("BINANCE:ETHBTC", "ETH/BTC"), ("COINBASE:BTCUSD", "BTC/USD"), ("BTC/USDT", "BTC/USDT"),
    ("BTC-EUR", "BTC/EUR"), ("BTCUSDT.P", "BTC/USDT"), ("SOLUSDC", "SOL/USDC"), ("AAPL", None), ("USDT", None),
])
def test_tradingview_tickers_map_to_unified_symbols_or_none(ticker: str, symbol: str | None) -> None:
    assert tradingview_symbol(ticker) == symbol


@pytest.mark.parametrize(("change", "code", "field"), [
    ({"ticker": None}, "invalid_signal", "ticker"),
    ({"action": "{{strategy.order.action}}"}, "unfilled_placeholder", "action"),
    ({"action": "hold"}, "invalid_signal", "action"),
    ({"contracts": "lots"}, "invalid_signal", "contracts"),
    ({"contracts": "-1"}, "invalid_signal", "contracts"),
    ({"position": "sideways"}, "invalid_signal", "position"),
    ({"time": "yesterday"}, "invalid_signal", "time"),
    ({"comment": ["a"]}, "invalid_signal", "comment"),
    ({"method": "no spaces"}, "invalid_signal", "method"),
])
def test_a_bad_tradingview_field_is_refused_by_name(change: dict[str, Any], code: str, field: str) -> None:
    body = {k: v for k, v in {**ALERT, **change}.items() if v is not None and k != "passphrase"}
    with pytest.raises(InvalidInput) as refused:
        normalise("tradingview", body, NOW, tradingview=True)
    assert refused.value.code == code and refused.value.data["field"] == field and field in refused.value.message


def test_a_generic_signal_keeps_its_own_time_and_exact_numbers() -> None:
    signal = normalise("news", {"method": "headline", "params": {"text": "ETF", "score": Decimal("0.93"), "n": 3},
                                "ts": "2026-12-07T10:00:00.5Z"}, NOW, tradingview=False)
    when = datetime(2026, 12, 7, 10, 0, 0, 500_000, tzinfo=UTC)
    assert signal == {"provider": "news", "method": "headline", "ts": int(when.timestamp()) * 10**9 + 500_000_000,
                      "params": {"text": "ETF", "score": "0.93", "n": 3}}
    assert normalise("generic", {"method": "ping"}, NOW, tradingview=False) == {"provider": "generic", "method": "ping",
                                                                                 "ts": NOW, "params": {}}


@pytest.mark.parametrize(("body", "field"), [
    ({"params": {}}, "method"), ({"method": "x", "extra": 1}, "extra"), ({"method": "x", "params": []}, "params"),
    ({"method": "x", "ts": NOW + 1}, "ts"), ({"method": "x", "ts": True}, "ts"), ({"method": "x", "ts": "soon"}, "ts"),
    ({"method": "x", "params": {"big": "x" * 9000}}, "params"), ([1, 2], "body"),
])
def test_a_bad_generic_signal_is_refused_by_name(body: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise("generic", body, NOW, tradingview=False)
    assert refused.value.code == "invalid_signal" and refused.value.data["field"] == field


def test_credentials_and_provider_names() -> None:
    assert take_credential({"key": "k", "method": "m"}) == ({"method": "m"}, "k")
    assert take_credential({"method": "m"}) == ({"method": "m"}, None)
    for bad in ({"key": "a", "passphrase": "b"}, {"key": 5}):
        with pytest.raises(InvalidInput):
            take_credential(bad)
    assert check_provider("news-feed_2") == "news-feed_2"
    for name in ("", "News", "1st", "a" * 25, "a/b", None):
        with pytest.raises(InvalidInput) as refused:
            check_provider(name)
        assert refused.value.code == "invalid_provider"


def test_a_recorded_line_is_checked() -> None:
    line = {"provider": "tradingview", "method": "alert", "ts": NOW, "params": {"action": "buy"}}
    assert read_line(line) == line
    for bad, field in (({**line, "x": 1}, "x"), ({"provider": "tradingview", "method": "alert"}, "ts"),
                       ({**line, "params": 3}, "params")):
        with pytest.raises(InvalidInput) as refused:
            read_line(bad, "signals.jsonl:3")
        assert refused.value.data["field"] == field and refused.value.message.startswith("signals.jsonl:3")


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))  # noqa: DTZ001 - hypothesis bounds are naive
def test_an_iso_time_and_its_nanoseconds_agree(when: datetime) -> None:
    ns = parse_ts(when.isoformat())
    assert parse_ts(ns) == ns
    assert datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000) == when and ns % 1000 == 0


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=20)
                     | st.decimals(allow_nan=False, allow_infinity=False, places=6),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["method", "params", "ts", "other"]), _JSON, max_size=4), st.booleans())
def test_any_body_is_normalised_or_refused_cleanly_and_a_normalised_one_reads_back(body: dict[str, Any], tradingview: bool) -> None:
    try:
        signal = normalise("generic", body, NOW, tradingview=tradingview)
    except InvalidInput as refused:
        assert refused.code in ("invalid_signal", "unfilled_placeholder") and refused.data.get("field")
        return
    assert signal["ts"] <= NOW and isinstance(signal["params"], dict)
    assert read_line(signal) == signal  # what is stored and replayed is what runs were sent
