"""core.external_trades: both webhook shapes read exactly, their movements, the signature; properties over any amounts."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.core.external_trades import movements, read_trade, sign, signature_ok

KRIPTO = {"id": "aa368788-bb4f-40c0-b80f-afcfdaf18574", "side": "buy", "productId": "BTC-GBP", "funds": "9.95024875",
          "settled": True, "createdAt": "2020-05-19T19:39:00", "fillFees": "0.049751102976", "filledSize": "0.00125952",
          "executedValue": "9.9502205952"}
ATTO = 10**18


def read(trade: dict[str, Any]) -> Any:
    return read_trade(json.dumps(trade).encode(), 7, 123)


def test_kripto_trade_is_read_exactly() -> None:
    trade = read(KRIPTO)
    assert (trade.account_id, trade.trade_id, trade.kind, trade.side, trade.base, trade.quote, trade.shape) == (
        7, KRIPTO["id"], "trade", "buy", "BTC", "GBP", "kripto")
    assert trade.size == 1_259_520_000_000_000 and trade.notional == 9_950_220_595_200_000_000
    assert trade.fee == 49_751_102_976_000_000
    assert trade.created_at == 1_589_917_140 * 10**9 and trade.received_at == 123  # no zone: UTC
    assert movements(trade) == {"BTC": trade.size, "GBP": -(trade.notional + trade.fee)}


def test_own_shape_and_transfers() -> None:
    sell = read({"id": 5, "side": "sell", "symbol": "eth_usdt", "exec_amount": "0.5", "exec_price": "3000.1", "fee": "0.3",
                 "timestamp": "2026-12-01T11:00:00+01:00"})
    assert (sell.trade_id, sell.base, sell.quote, sell.shape) == ("5", "ETH", "USDT", "coinwire")
    assert sell.notional == 1500_050_000_000_000_000_000 and sell.created_at == 1_796_119_200 * 10**9  # 10:00 UTC
    assert movements(sell) == {"ETH": -sell.size, "USDT": sell.notional - sell.fee}
    deposit = read({"id": "d", "kind": "deposit", "currency": "sol", "amount": "7", "timestamp": 1})
    assert movements(deposit) == {"SOL": 7 * ATTO}
    withdrawal = read({"id": "w", "kind": "withdrawal", "currency": "SOL", "amount": "2", "timestamp": 1})
    assert movements(withdrawal) == {"SOL": -2 * ATTO}


def test_a_fee_equal_to_the_proceeds_leaves_no_quote_entry() -> None:
    trade = read(dict(KRIPTO, side="sell", fillFees=KRIPTO["executedValue"]))
    assert movements(trade) == {"BTC": -trade.size}


@pytest.mark.parametrize(("field", "value"), [("id", ""), ("side", "BUY"), ("productId", "BTC/GBP"), ("createdAt", "2020-05-19 x"),
                                              ("filledSize", "0.0000000000000000001"), ("fillFees", 1.5), ("settled", 1)])
def test_malformed_kripto_fields_are_named(field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        read(dict(KRIPTO, **{field: value}))
    assert caught.value.code == "invalid_trade" and caught.value.data["field"] == field


def test_unsettled_is_its_own_code() -> None:
    with pytest.raises(InvalidInput) as caught:
        read(dict(KRIPTO, settled=False))
    assert caught.value.code == "trade_not_settled"


def test_signature_is_hmac_sha256_hex_of_the_raw_body() -> None:
    body = json.dumps(KRIPTO).encode()
    assert sign("s3cret", body) == hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signature_ok("s3cret", body, sign("s3cret", body).upper())
    assert not signature_ok("s3cret", body, None)
    assert not signature_ok("s3cret", body, "")
    assert not signature_ok("s3cret", body + b" ", sign("s3cret", body))


amounts = st.integers(min_value=1, max_value=10**30)
decimals_text = amounts.map(lambda units: str(Decimal(units).scaleb(-18).normalize()))


@given(size=decimals_text, value=decimals_text, fee=st.integers(min_value=0, max_value=10**24), side=st.sampled_from(["buy", "sell"]))
def test_a_trade_moves_base_and_quote_and_nothing_else(size: str, value: str, fee: int, side: str) -> None:
    """The base moves by the size, the quote by the value and the fee against the trader, both ways exactly."""
    trade = read(dict(KRIPTO, side=side, filledSize=size, executedValue=value, fillFees=str(Decimal(fee).scaleb(-18))))
    moves = movements(trade)
    sign_ = 1 if side == "buy" else -1
    assert Decimal(moves["BTC"]).scaleb(-18) == sign_ * Decimal(size)
    quote = Decimal(moves.get("GBP", 0)).scaleb(-18)
    assert quote == -sign_ * Decimal(value) - Decimal(fee).scaleb(-18)
    assert set(moves) <= {"BTC", "GBP"}


@given(amount=decimals_text, price=decimals_text)
def test_own_notional_is_amount_times_price_rounded_half_even(amount: str, price: str) -> None:
    trade = read({"id": "p", "side": "buy", "symbol": "BTC/USDT", "exec_amount": amount, "exec_price": price, "timestamp": 1})
    with localcontext() as ctx:
        ctx.prec = 200
        expected = (Decimal(amount) * Decimal(price)).scaleb(18).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    assert trade.notional == int(expected)


@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40), flip=st.integers(min_value=0, max_value=511))
def test_any_change_of_the_body_breaks_the_signature(body: bytes, secret: str, flip: int) -> None:
    signature = sign(secret, body)
    assert signature_ok(secret, body, signature)
    if body:
        index = flip % len(body)
        altered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1:]
        assert not signature_ok(secret, altered, signature)
