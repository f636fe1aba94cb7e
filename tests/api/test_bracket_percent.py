"""make_order's bracket legs in percent of the parent's fill: `{"percent": "6"}` parses exactly, or is refused with its code."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from coinwire.api import params as P
from coinwire.api.order_params import apply_conditions
from coinwire.core.conditional import Bracket, decode_bracket
from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.core.orders import OrderRequest, OrderType, Side

INST = Instrument(exchange="demo", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5, tick=1)
NOW = 1_700_000_000 * 10**9


def _bracket(**legs: Any) -> Bracket:
    """The bracket a limit buy at 100.00 carries after make_order's parsing of `legs`."""
    p = msgspec.convert({"exchange": "demo", "side": "buy", "size": "1", "limit": "100", **legs}, P.MakeOrderParams)
    request = OrderRequest(exchange="demo", instrument=INST, side=Side.BUY, type=OrderType.LIMIT, size=100_000, limit=10_000,
                           cancel_after=0, client_oid="c", wallet_set_id=None, run_id=None)
    apply_conditions(request, p, None, NOW)
    assert request.bracket is not None
    return decode_bracket(request.bracket)


def test_percent_legs_are_millionths_of_the_fill_and_a_percent_take_profit_is_a_trigger_unless_typed_limit() -> None:
    b = _bracket(take_profit={"percent": "6"}, stop_loss={"percent": "2.5"})
    assert (b.take_profit_type, b.take_profit_ppm, b.take_profit_price) == (OrderType.TAKE_PROFIT_MARKET, 60_000, 0)
    assert (b.stop_loss_type, b.stop_loss_ppm, b.stop_loss_price) == (OrderType.STOP_MARKET, 25_000, 0)
    b = _bracket(take_profit={"percent": 0.0001, "type": "limit"}, stop_loss={"stop_price": "97"})
    assert (b.take_profit_type, b.take_profit_ppm, b.stop_loss_price, b.stop_loss_ppm) == (OrderType.LIMIT, 1, 9_700, 0)


@pytest.mark.parametrize(("legs", "code"), [
    ({"take_profit": {"percent": "0"}, "stop_loss": {"percent": "3"}}, "bracket_invalid"),
    ({"take_profit": {"percent": "6"}, "stop_loss": {"percent": "100"}}, "bracket_invalid"),
    ({"take_profit": {"percent": "6"}, "stop_loss": {"percent": "-3"}}, "bracket_invalid"),
    ({"take_profit": {"percent": "6"}, "stop_loss": {"percent": "3.00001"}}, "bracket_invalid"),
    ({"take_profit": {"percent": "six"}, "stop_loss": {"percent": "3"}}, "invalid_number"),
    ({"take_profit": {"percent": "6", "stop_price": "106"}, "stop_loss": {"percent": "3"}}, "invalid_params"),
    ({"take_profit": {"percent": "6"}, "stop_loss": {"percent": "3", "limit": "96"}}, "invalid_params"),
    ({"take_profit": {"percent": "6", "type": "take-profit-limit"}, "stop_loss": {"percent": "3"}}, "bracket_type_invalid"),
    ({"take_profit": {"percent": "6"}}, "bracket_incomplete"),
])
def test_a_percent_leg_that_cannot_be_sound_is_refused_with_its_code(legs: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        _bracket(**legs)
    assert info.value.code == code
