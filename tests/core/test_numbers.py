"""core.numbers: decimal text in ASCII digits only, read exactly, refused rather than rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import INT64_MAX, parse_decimal, read_int, to_units

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


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10", 10), ("-3", -3), (str(INT64_MAX), INT64_MAX), ("\u0661\u0660", None), ("1_0", None), (" 5", None),
     ("", None), ("+5", None), ("99999999999999999999", None), (str(INT64_MAX + 1), None)],
)
def test_integer_text_is_ascii_digits_within_64_bits(text: str, expected: int | None) -> None:
    assert read_int(text) == expected


def test_integer_text_outside_the_callers_range_is_none() -> None:
    assert (read_int("0", 1, 1000), read_int("1000", 1, 1000), read_int("1001", 1, 1000)) == (None, 1000, None)


@pytest.mark.parametrize(("text", "code"), [("1e999999", "number_out_of_range"), ("1e-999999", "number_out_of_range"),
                                            ("\u0661", "invalid_number"), ("1_0", "invalid_number")])
def test_decimal_text_is_ascii_with_a_bounded_exponent(text: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_decimal(text, "amount")
    assert refused.value.code == code


def test_decimal_text_within_bounds_is_exact() -> None:
    assert parse_decimal("0.1", "amount") == Decimal("0.1") and parse_decimal("1e60", "amount") == Decimal("1e60")
