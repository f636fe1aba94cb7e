"""The analyser's and signals' subjects: valid concrete subjects for any series and indicator, one per key, selected by
the documented patterns; the messages round-trip through the network bus encoding."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.bus.subjects import match, validate_subject
from coinwire.core.analysis import analysis_key, parse_indicator, parse_series
from coinwire.messages import AnalysisValue, Signal, analysis_subject, decode, encode, signal_subject

bases = st.sampled_from(["BTC", "ETH", "SOL", "1INCH"])
quotes = st.sampled_from(["USDT", "USD", "EUR"])
timeframes = st.sampled_from(["1m", "15m", "1h", "4h", "1d", "1w", "1M"])
series = st.one_of(
    st.builds(lambda e, b, q, perp, tf: f"market:{e}:{b}/{q}{':' + q if perp else ''}:{tf}",
              st.sampled_from(["binance", "demo", "kraken-x"]), bases, quotes, st.booleans(), timeframes),
    st.builds(lambda s, i, tf: f"portfolio:{s}:{i}:{tf}", st.sampled_from(["account", "wallet_set", "run", "user"]),
              st.sampled_from(["7", "12", "pp-abc_1"]), st.sampled_from(["15m", "1h", "1d"])),
    st.builds(lambda a, c: f"balance:{a}:{c}", st.integers(1, 10**9), quotes),
    st.builds(lambda a, b, q: f"position:{a}:{b}/{q}:{q}", st.integers(1, 10**9), bases, quotes),
)
indicators = st.sampled_from([("rsi", [14]), ("sma", [20]), ("bollinger.upper", [20, 2.5]), ("macd.signal", []),
                              ("drawdown", []), ("return", [96]), ("value", []), ("atr", [7])])


@settings(max_examples=300, deadline=None)
@given(text=series, chosen=indicators)
def test_every_analysis_subject_is_valid_and_selected_by_its_kind(text: str, chosen: tuple[str, list[float]]) -> None:
    ref = parse_series(text)
    ind = parse_indicator(*chosen)
    subject = analysis_subject(ref.text, ind.text, ind.params)
    assert validate_subject(subject) == subject and subject == subject.lower()
    assert len(subject.split(".")) == 4
    assert match(f"analysis.{ref.kind}.>", subject) and match("analysis.*.*.*", subject)
    message = AnalysisValue(key=analysis_key(ref.text, ind.text, ind.params), series=ref.text, indicator=ind.text,
                            params=list(ind.params), value=1.5, time=1_800_000_000, owner_id=3)
    assert decode(encode(message)) == message


def test_subjects_of_distinct_outputs_differ() -> None:
    seen: dict[str, str] = {}
    for text in ("market:binance:BTC/USDT:1h", "market:binance:BTC/USDT:USDT:1h", "market:binance:BTC/USDT:4h",
                 "portfolio:account:7:15m", "portfolio:account:7:1h", "portfolio:user:7:15m", "balance:7:USDT",
                 "position:7:BTC/USDT:USDT"):
        for indicator, params in (("rsi", [14]), ("rsi", [7]), ("sma", [20]), ("bollinger.upper", [20, 2.5]),
                                  ("bollinger.lower", [20, 2.5]), ("value", [])):
            ind = parse_indicator(indicator, params)
            subject = analysis_subject(text, ind.text, ind.params)
            key = analysis_key(text, indicator, params)
            assert seen.setdefault(subject, key) == key, (subject, key)
    assert analysis_subject("market:binance:BTC/USDT:1h", "rsi", [14]) == "analysis.market.binance-btc-usdt-1h.rsi-14"
    assert analysis_subject("portfolio:account:7:15m", "sma", [20]) == "analysis.portfolio.account-7-15m.sma-20"


def test_signal_subjects() -> None:
    assert signal_subject("pp-1a2b-20261207-010203", "ma_cross") == "signal.pp-1a2b-20261207-010203.ma_cross"
    assert validate_subject(signal_subject("my run.v2", "x*y")) == "signal.my_run_v2.x_y"
    message = Signal(run_id="pp-1", name="ma_cross", value="above", time=5, owner_id=2)
    assert decode(encode(message)) == message
