"""Symbol spelling: spot `BTC/USDT` and linear perpetuals `BTC/USDT:USDT`, in every accepted spelling, and their subjects."""

from __future__ import annotations

import pytest

from coinwire.core.errors import InvalidInput
from coinwire.core.symbols import normalize_symbol, split_symbol, symbol_token
from coinwire.messages import account_subject, subject


@pytest.mark.parametrize("given", ["BTC/USDT:USDT", "btc_usdt:usdt", " BTC_USDT:usdt "])
def test_a_perpetual_keeps_its_settle_currency(given: str) -> None:
    assert normalize_symbol(given) == "BTC/USDT:USDT"
    assert split_symbol(given) == ("BTC", "USDT")  # currencies, the settle one left out
    assert symbol_token(given) == "BTC_USDT:USDT"


@pytest.mark.parametrize("given", ["BTC/USDT:", "BTC/USDT:US-DT", "BTC/USDT:USDT:USDT", ":USDT", "BTC:USDT"])
def test_malformed_perpetual_symbols_are_refused(given: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_symbol(given)
    assert refused.value.code == "invalid_symbol"


def test_a_perpetuals_subjects_never_meet_its_spot_markets() -> None:
    assert subject("book", "binance", "BTC/USDT:USDT") == "book.binance.usdt:usdt.btc"
    assert subject("book", "binance", "BTC/USDT") == "book.binance.usdt.btc"
    assert account_subject("position", 7, "Perp", "btc_usdt:usdt") == "position.7.perp.usdt:usdt.btc"
