"""core.cap_balance: weights against a top-N market-cap index; properties: each side sums to 1, differences net to 0."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinwire.core.cap_balance import WEIGHT_DECIMALS, cap_balance, shares

CAPS = [("BTC", Decimal(600)), ("ETH", Decimal(300)), ("USDT", Decimal(80)), ("SOL", Decimal(100)), ("XRP", Decimal(50))]
CASH = {"USD", "USDT", "EUR"}


def test_an_example_by_hand() -> None:
    balance = cap_balance({"BTC": Decimal(1), "DOGE": Decimal(100), "USDT": Decimal(500), "ZZZ": Decimal(3)},
                          {"BTC": Decimal(300), "DOGE": Decimal(1), "USDT": Decimal(1)}, CAPS, CASH, top=3)
    assert balance.index == ["BTC", "ETH", "SOL"]  # the stablecoin is no part of the index
    assert balance.total == Decimal(400) and balance.cash == Decimal(500) and balance.unpriced == ["ZZZ"]
    rows = {r.asset: r for r in balance.assets}
    assert (rows["BTC"].weight, rows["BTC"].cap_weight) == (Decimal("0.75"), Decimal("0.6"))
    assert (rows["DOGE"].weight, rows["DOGE"].cap_weight, rows["DOGE"].stance) == (Decimal("0.25"), 0, "over")
    assert (rows["ETH"].weight, rows["ETH"].cap_weight, rows["ETH"].stance) == (0, Decimal("0.3"), "under")
    assert rows["SOL"].difference == Decimal("-0.1") and rows["ETH"].amount == 0
    assert [r.asset for r in balance.assets] == ["DOGE", "BTC", "SOL", "ETH"]  # most over-weight first
    assert "USDT" not in rows and "ZZZ" not in rows


def test_a_short_list_and_nothing_held() -> None:
    balance = cap_balance({}, {}, CAPS[:2], CASH, top=10)
    assert balance.index == ["BTC", "ETH"] and balance.total == 0
    assert all(r.stance == "under" and r.weight == 0 for r in balance.assets)
    with pytest.raises(ValueError):
        cap_balance({}, {}, CAPS, CASH, top=0)


def test_shares_round_by_largest_remainder() -> None:
    assert shares([Fraction(1)] * 3) == [Decimal("0.3333333334"), Decimal("0.3333333333"), Decimal("0.3333333333")]
    assert shares([]) == [] and shares([Fraction(0), Fraction(0)]) == [0, 0]


coin = st.sampled_from(["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "USDT", "EUR", "AVAX"])
amount = st.decimals(min_value=Decimal("0"), max_value=Decimal("1e9"), places=8, allow_nan=False, allow_infinity=False)
price = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e6"), places=8, allow_nan=False, allow_infinity=False)
cap = st.decimals(min_value=Decimal("0"), max_value=Decimal("1e13"), places=2, allow_nan=False, allow_infinity=False)


@given(holdings=st.dictionaries(coin, amount, max_size=9), prices=st.dictionaries(coin, price, max_size=9),
       caps=st.lists(st.tuples(coin, cap), max_size=12), top=st.integers(min_value=1, max_value=12))
def test_weights_sum_to_one_and_differences_net_to_zero(holdings: dict[str, Decimal], prices: dict[str, Decimal],
                                                        caps: list[tuple[str, Decimal]], top: int) -> None:
    balance = cap_balance(holdings, prices, caps, CASH, top)
    assert len(balance.index) <= top and not set(balance.index) & CASH
    weights = sum(r.weight for r in balance.assets)
    cap_weights = sum(r.cap_weight for r in balance.assets)
    assert weights == (1 if balance.total > 0 else 0)
    assert cap_weights == (1 if balance.index else 0)  # the index holds only coins with a cap above zero
    if balance.total > 0 and balance.index:
        assert sum(r.difference for r in balance.assets) == 0  # over- and under-weights net to exactly 0
    for row in balance.assets:
        assert 0 <= row.weight <= 1 and 0 <= row.cap_weight <= 1
        assert row.difference == row.weight - row.cap_weight
        assert row.cap_weight == 0 or row.asset in balance.index
        assert row.weight == 0 or row.value > 0
        assert row.weight.as_tuple().exponent >= -WEIGHT_DECIMALS  # type: ignore[operator]
    # each weight is within one rounding unit of the exact share
    if balance.total > 0:
        for row in balance.assets:
            assert abs(Fraction(row.weight) - Fraction(row.value) / Fraction(balance.total)) < Fraction(1, 10**WEIGHT_DECIMALS)


@given(values=st.lists(st.integers(min_value=0, max_value=10**20), min_size=1, max_size=20))
def test_shares_are_exact_to_one_unit(values: list[int]) -> None:
    out = shares([Fraction(v) for v in values])
    total = sum(values)
    assert sum(out) == (1 if total else 0)
    for share, value in zip(out, values, strict=True):
        assert total == 0 or abs(Fraction(share) - Fraction(value, total)) < Fraction(1, 10**WEIGHT_DECIMALS)
