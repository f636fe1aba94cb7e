"""Subject grammar: validation errors, wildcard matching, pattern intersection, durability."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.bus.subjects import SubjectFilter, intersect, is_durable, match, validate_namespace, validate_pattern, validate_subject
from coinwire.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("trade.binance.usdt.btc", "trade.binance.usdt.btc", True),
        ("trade.binance.usdt.btc", "trade.binance.usdt.eth", False),
        ("trade.binance.usdt.*", "trade.binance.usdt.eth", True),
        ("trade.binance.usdt.*", "trade.binance.usdt", False),
        ("trade.binance.usdt.*", "trade.binance.usdt.eth.x", False),
        ("*", "log", True),
        ("*", "log.info", False),
        ("*.info", "log.info", True),
        ("trade.>", "trade.binance", True),
        ("trade.>", "trade.binance.usdt.btc", True),
        ("trade.>", "trade", False),
        ("trade.>", "trades.binance", False),
        (">", "log", True),
        (">", "trade.binance.usdt.btc", True),
        ("*.binance.>", "book.binance.usdt.btc", True),
        ("*.binance.>", "book.binance", False),
        ("*.binance.>", "book.kraken.usdt.btc", False),
        ("order.*.usdt.>", "order.x.usdt.btc", True),
        ("order.*.usdt.>", "order.x.eur.btc", False),
        ("a+b.c", "a+b.c", True),  # regex characters are literal
        ("a+b.*", "aab.c", False),
    ],
)
def test_match(pattern: str, subject: str, expected: bool) -> None:
    assert match(pattern, subject) is expected


@pytest.mark.parametrize("subject", ["", "trade..btc", ".trade", "trade.", "trade.*", "trade.>", "*", "tr ade", "a.b\tc", "a.b*"])
def test_invalid_subjects(subject: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_subject(subject)
    assert error.value.code == "invalid_subject"


@pytest.mark.parametrize("pattern", ["", "a..b", ".a", "a.", ">.a", "a.>.b", "a*", "a.b>", "a b.*"])
def test_invalid_patterns(pattern: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_pattern(pattern)
    assert error.value.code == "invalid_pattern"


def test_error_messages_say_what_is_wrong() -> None:
    with pytest.raises(InvalidInput, match="wildcard"):
        validate_subject("trade.*.usdt.btc")
    with pytest.raises(InvalidInput, match="empty token"):
        validate_subject("trade..btc")
    with pytest.raises(InvalidInput, match="last token"):
        validate_pattern("trade.>.btc")


def test_valid_names_pass_through() -> None:
    assert validate_subject("order.binance.usdt.1000shib") == "order.binance.usdt.1000shib"
    assert validate_pattern("*.binance.>") == "*.binance.>"
    assert validate_namespace("coinwire-test_1") == "coinwire-test_1"
    for namespace in ("", "a.b", "a b", "a*", "a/b"):
        with pytest.raises(InvalidInput):
            validate_namespace(namespace)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (">", "order.>", "order.>"),
        ("*.binance.>", "order.>", "order.binance.>"),
        ("order.binance.usdt.*", "order.>", "order.binance.usdt.*"),
        ("trade.>", "order.>", None),
        ("a.*", "*.b", "a.b"),
        ("*", "a.>", None),
        ("a.b", "a.b.c", None),
        ("*.*", "order.>", "order.*"),
        ("a.>", "*.b.>", "a.b.>"),
    ],
)
def test_intersect(a: str, b: str, expected: str | None) -> None:
    assert intersect(a, b) == expected
    assert intersect(b, a) == expected


_tokens = st.sampled_from(["a", "b", "c"])
_subjects = st.lists(_tokens, min_size=1, max_size=4).map(".".join)
_patterns = st.lists(st.sampled_from(["a", "b", "*"]), min_size=1, max_size=4).flatmap(
    lambda ts: st.sampled_from([".".join(ts), ".".join(ts[:-1] + [">"])])
)


@settings(max_examples=200, deadline=None)
@given(a=_patterns, b=_patterns, subject=_subjects)
def test_intersection_selects_exactly_what_both_select(a: str, b: str, subject: str) -> None:
    both = match(a, subject) and match(b, subject)
    common = intersect(a, b)
    assert (common is not None and match(common, subject)) is both


def test_durable_subjects() -> None:
    assert is_durable("order.binance.usdt.btc")
    assert is_durable("fill.kraken.eur.eth")
    assert not is_durable("trade.binance.usdt.btc")
    assert not is_durable("orders.binance")


@settings(max_examples=200, deadline=None)
@given(patterns=st.lists(_patterns, min_size=1, max_size=5), subject=_subjects)
def test_a_subject_filter_selects_what_any_of_its_patterns_selects(patterns: list[str], subject: str) -> None:
    chosen = SubjectFilter(patterns)
    assert chosen(subject) is any(match(p, subject) for p in patterns)
    assert list(chosen) == list(dict.fromkeys(patterns)) and len(chosen) == len(set(patterns))  # in order, each once


def test_a_subject_filter_refuses_an_invalid_pattern() -> None:
    with pytest.raises(InvalidInput) as refused:
        SubjectFilter(["ticker.a.*", "ticker..b"])
    assert refused.value.code == "invalid_pattern"
