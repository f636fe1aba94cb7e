"""api.order_params: trailing distances, instants and conditional prices parse exactly or are refused with their code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinwire.api.order_params import PERCENT_DECIMALS, parse_instant, parse_trailing_delta, price_units
from coinwire.core.conditional import PPM
from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument

# a tick of 0.05: prices on the 0.01 grid but off the tick exist, as on many exchanges
INST = Instrument(exchange="x", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5, tick=5)


def _code(call: object, *args: object) -> str:
    with pytest.raises(InvalidInput) as info:
        call(*args)  # type: ignore[operator]
    return info.value.code


def _percent(ppm: int) -> str:
    return f"{(Decimal(ppm) / 10**PERCENT_DECIMALS).normalize():f}%"


@given(st.integers(1, PPM - 1), st.sampled_from(["", " "]))
def test_a_percentage_is_its_millionths_exactly(ppm: int, space: str) -> None:
    assert parse_trailing_delta(INST, f"{space}{_percent(ppm)[:-1]}{space}%") == (ppm, 0)


@given(st.integers(PPM, 10 * PPM) | st.integers(-PPM, 0))
def test_a_percentage_outside_zero_to_a_hundred_is_out_of_range(ppm: int) -> None:
    assert _code(parse_trailing_delta, INST, _percent(ppm)) == "trailing_delta_out_of_range"


@given(st.integers(1, 10**9).map(lambda n: n * INST.tick), st.booleans())
def test_a_distance_on_the_tick_is_its_units_exactly_as_text_or_number(units: int, as_number: bool) -> None:
    text = INST.price_str(units)
    assert parse_trailing_delta(INST, Decimal(text) if as_number else text) == (0, units)


@given(st.integers(1, 10**9).filter(lambda n: n % INST.tick))
def test_a_distance_off_the_tick_is_refused_never_rounded(units: int) -> None:
    assert _code(parse_trailing_delta, INST, INST.price_str(units)) == "trailing_delta_off_tick"
    assert _code(parse_trailing_delta, INST, INST.price_str(units) + "1") == "trailing_delta_off_tick"  # beyond the decimals


@given(st.integers(-(10**9), 0))
def test_a_distance_of_zero_or_less_is_out_of_range(units: int) -> None:
    assert _code(parse_trailing_delta, INST, INST.price_str(units)) == "trailing_delta_out_of_range"


@pytest.mark.parametrize(("value", "code"), [("", "invalid_number"), ("%", "invalid_number"), ("abc", "invalid_number"),
                                           ("1.5 %%", "invalid_number"), ("NaN", "invalid_number"), ("1e400%", "number_out_of_range"),
                                           (True, "invalid_params"), ([1], "invalid_params")])
def test_a_trailing_delta_that_is_not_a_number_is_refused(value: object, code: str) -> None:
    assert _code(parse_trailing_delta, INST, value) == code


@given(st.integers(1, 10**12))
def test_a_price_on_the_tick_parses_and_off_it_is_refused_with_the_fields_code(n: int) -> None:
    units = n * INST.tick
    assert price_units(INST, "stop_price", INST.price_str(units)) == units
    assert _code(price_units, INST, "stop_price", INST.price_str(units + 1)) == "stop_price_off_tick"
    finer = str(Decimal(INST.price_str(units)) + Decimal("0.001"))
    assert _code(price_units, INST, "activation_price", finer) == "activation_price_off_tick"


_NAIVE = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9999, 1, 1))  # noqa: DTZ001 - naive on purpose: UTC


@given(_NAIVE.map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)))
def test_an_instant_as_iso_text_and_as_epoch_milliseconds_is_the_same(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC)
    ms = (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert parse_instant(aware.isoformat()) == parse_instant(ms) == ms * 1_000_000
    assert parse_instant(moment.isoformat()) == ms * 1_000_000  # no offset: UTC
    assert parse_instant(aware.isoformat().replace("+00:00", "Z")) == ms * 1_000_000
    shifted = aware.astimezone(datetime.now(UTC).astimezone().tzinfo)
    assert parse_instant(shifted.isoformat()) == ms * 1_000_000


@pytest.mark.parametrize("value", ["next tuesday", "2026-13-01", "", True, 1.5, None])
def test_an_instant_that_is_neither_is_invalid_params(value: object) -> None:
    assert _code(parse_instant, value) == "invalid_params"
