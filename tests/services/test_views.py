"""JSON views: the memoised formatting gives exactly the text of the plain formulas."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from coinwire.core.numbers import ATTO_DECIMALS, units_to_str
from coinwire.services.views import iso
from coinwire.store.codec import units_text


def _isoformat(ns: int) -> str:
    seconds, rem = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rem // 1000).isoformat()


@given(st.integers(0, 253_402_300_799_999_999_999))  # up to 9999-12-31T23:59:59.999999999
def test_iso_is_isoformat(ns: int) -> None:
    assert iso(ns) == _isoformat(ns)
    assert iso(ns) == _isoformat(ns)  # memoised second: same text


def test_iso_edges() -> None:
    assert iso(None) is None
    assert iso(0) == "1970-01-01T00:00:00+00:00"
    assert iso(999) == "1970-01-01T00:00:00+00:00"  # below a microsecond: no fraction, like isoformat
    assert iso(1_000) == "1970-01-01T00:00:00.000001+00:00"
    assert iso(1_763_820_000_123_456_789) == "2025-11-22T14:00:00.123456+00:00"
    assert iso(-1) == _isoformat(-1)


@given(st.integers(-(10**40), 10**40), st.integers(0, 25))
def test_units_text_is_units_to_str(units: int, decimals: int) -> None:
    assert units_text(units, decimals) == units_to_str(units, decimals)
    assert units_text(units, decimals) == units_to_str(units, decimals)


def test_units_text_memo_stays_bounded() -> None:
    for units in range(10_000):
        assert units_text(units, ATTO_DECIMALS) == units_to_str(units, ATTO_DECIMALS)
    from coinwire.store import codec

    assert all(len(texts) <= codec._TEXTS_LIMIT for texts in codec._TEXTS)
