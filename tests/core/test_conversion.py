"""Best routes through known rates: fewest steps, then freshest; exact products; stable errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinwire.core.conversion import Rate, best_route, convert
from coinwire.core.errors import NotFound

D = Decimal
RATES = [
    Rate("BTC", "USDT", D("60000"), "ticker:binance", 100),
    Rate("ETH", "BTC", D("0.05"), "ticker:binance", 90),
    Rate("USDT", "USD", D("1"), "peg", 0),
    Rate("EUR", "USD", D("1.1"), "fx:ecb", 50),
    Rate("BTC", "EUR", D("55000"), "ticker:kraken", 10),
    Rate("BTC", "USD", D("60100"), "coins:coingecko", 80),
]


def test_fewest_steps_win_then_the_freshest() -> None:
    route = best_route(RATES, "BTC", "EUR")
    assert [r.source for r in route] == ["ticker:kraken"]  # one step beats fresher two-step routes
    route = best_route(RATES, "ETH", "USD")
    assert [(r.base, r.quote, r.source) for r in route] == [("ETH", "BTC", "ticker:binance"), ("BTC", "USD", "coins:coingecko")]
    fresher = RATES + [Rate("BTC", "USD", D("60050"), "coins:coinmarketcap", 95)]
    assert best_route(fresher, "ETH", "USD")[1].source == "coins:coinmarketcap"


def test_conversion_is_exact_and_inverse_rates_are_used() -> None:
    result = convert(D("2.5"), best_route(RATES, "ETH", "BTC"))
    assert result.result == D("0.125") and result.rate == D("0.05") and result.ts == 90
    back = convert(D("1.1"), best_route(RATES, "USD", "EUR"))
    assert back.result == D("1.000000000000000000000000000000000")
    assert convert(D("7"), best_route(RATES, "BTC", "BTC")).result == D("7")


def test_unknown_currency_and_no_route_have_stable_codes() -> None:
    with pytest.raises(NotFound) as caught:
        best_route(RATES, "DOGE", "USD")
    assert caught.value.code == "unknown_currency" and caught.value.data["currency"] == "DOGE"
    with pytest.raises(NotFound) as caught:
        best_route(RATES + [Rate("XAU", "XAG", D("80"), "fx:x", 1)], "XAU", "USD")
    assert caught.value.code == "no_route"
    with pytest.raises(NotFound) as caught:
        best_route(RATES, "ETH", "EUR", max_steps=1)
    assert caught.value.code == "no_route"


@given(st.lists(st.tuples(st.sampled_from("ABCDE"), st.sampled_from("ABCDE"), st.integers(0, 100)), min_size=1, max_size=12),
       st.lists(st.integers(1, 10**6), min_size=5, max_size=5))
def test_there_and_back_again_is_the_identity(edges: list[tuple[str, str, int]], values: list[int]) -> None:
    """With consistent rates (each currency has one value), any route there and any route back cancel out."""
    value = dict(zip("ABCDE", values, strict=True))
    rates = [Rate(a, b, D(value[a]) / D(value[b]), "t", ts) for a, b, ts in edges]
    for source in "ABCDE":
        for target in "ABCDE":
            try:
                there = best_route(rates, source, target)
            except NotFound:
                continue
            assert len(there) <= 4 and (not there or (there[0].base == source and there[-1].quote == target))
            assert all(a.quote == b.base for a, b in zip(there, there[1:], strict=False))
            back = best_route(rates, target, source)
            assert len(back) == len(there)  # the graph is symmetric: as few steps either way
            total = convert(D(1), there).rate * convert(D(1), back).rate
            assert abs(total - 1) < D("1e-25")
