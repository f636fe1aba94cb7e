"""core.numbers: decimal text in ASCII digits only, read exactly, refused rather than rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import to_units

MAX_NUMBER_TEXT = 100  # core.numbers.MAX_NUMBER_TEXT, the documented limit


@pytest.mark.parametrize(
    ("value", "units"),
    [("12", 1200), ("-1.5", -150), ("0.01", 1), ("1e-02", 1), ("1E+2", 10000), (7, 700), (Decimal("2.50"), 250), (0.5, 50)],
)
def test_decimals_are_read_exactly(value: object, units: int) -> None:
    assert to_units(value, 2) == units


@pytest.mark.parametrize(
    "text",
    ["٦٠٠٠٠", "０.０１", "१०", "1_000", " 10", "10 ", "10\u00a0", "+1", ".5", "5.", "NaN", "Infinity", "", "1.2.3", "0x10", "1e", "--1"],
)
def test_anything_but_ascii_decimal_text_is_invalid_number(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        to_units(text, 2, "size")
    assert info.value.code == "invalid_number" and info.value.data["field"] == "size"


def test_long_text_is_refused_without_echoing_it() -> None:
    with pytest.raises(InvalidInput) as info:
        to_units("0" * (MAX_NUMBER_TEXT + 1), 2)
    assert info.value.code == "invalid_number" and "0" * 20 not in info.value.message
    assert to_units("0" * (MAX_NUMBER_TEXT - 1) + "1", 2) == 100


def test_an_exact_decimal_finer_than_the_grid_is_too_precise() -> None:
    with pytest.raises(InvalidInput) as info:
        to_units(Decimal("10000.00000000000000001"), 2, "limit")
    assert info.value.code == "too_precise"


def test_instruments_parse_sizes_and_prices_in_ascii_digits_only() -> None:
    inst = Instrument(exchange="demo", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5)
    assert inst.parse_price("60000") == 6_000_000 and inst.parse_size("0.01") == 1000
    for text in ("٦٠٠٠٠", "６００００"):
        with pytest.raises(InvalidInput) as info:
            inst.parse_price(text)
        assert info.value.code == "invalid_number"
        with pytest.raises(InvalidInput) as info:
            inst.parse_size(text)
        assert info.value.code == "invalid_number"
