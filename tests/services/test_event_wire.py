"""The order and fill views are typed structs (messages.OrderView, FillView) and still the exact bytes clients got as dicts.

The expected JSON is what the views gave when they were dicts (a7d1d9a), byte for byte: the
dashboard, the API pushes and the replay of NATS-kept notifications all read these objects.
The kripto Trade fields (`funds`, `executed_value`, `fill_fees`, `settled`, and `filled_size`
on fills) were appended after `seq`, then the conditional orders' fields after `settled` (a
bracket parent's `bracket` last), so
every key before keeps its place, and a notification kept before they existed still decodes
(with their defaults).
"""

from __future__ import annotations

import json

import msgspec

from coinwire import messages
from coinwire.core.instruments import Instrument
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, OrderType, PositionSide, Side
from coinwire.messages import FillEvent, FillView, OrderUpdate, OrderView
from coinwire.services.views import fill_view, order_view

INST = Instrument(exchange="binance", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5)
T = 1_763_820_000_123_456_000
ORDER = Order(id=41, client_oid="mkt-1", exchange="binance", symbol="BTC/USDT", side=Side.BUY, type=OrderType.LIMIT, size=150_000,
              limit=6_000_050, cancel_after=30, wallet_set_id=3, run_id=None, status=OrderStatus.DONE, done_reason=DoneReason.FILLED,
              created_at=T, exchange_at=T, done_at=T + 2_000_000_000, last_updated_at=T + 2_000_000_000, filled_size=150_000,
              filled_notional=90_000_750_000_000_000_000_000, fee=90_000_750_000_000_000, owner_id=5, account_id=7, seq=12)
FILL = Fill(id=9, order_id=41, client_oid="mkt-1", exchange="binance", symbol="BTC/USDT", side=Side.BUY, order_type=OrderType.LIMIT,
            price=6_000_050, size=150_000, notional=90_000_750_000_000_000_000_000, fee=90_000_750_000_000_000, maker=True,
            ts=T + 2_000_000_000, run_id="r-1", wallet_set_id=3, ext_id=None, fee_currency="BNB", account_id=7)
ORDER_JSON = (
    b'{"id":41,"created_at":"2025-11-22T14:00:00.123456+00:00","wallet_set_id":3,"exchange":"binance","client_order_id":"mkt-1'
    b'","run_id":null,"type":"limit","pair":"BTC_USDT","symbol":"BTC/USDT","size":"1.5","side":"buy","limit":"60000.5","cancel'
    b'_after":30,"status":"done","done_reason":"filled","done_at":"2025-11-22T14:00:02.123456+00:00","exchange_at":"2025-11-22'
    b'T14:00:00.123456+00:00","last_updated_at":"2025-11-22T14:00:02.123456+00:00","filled_size":"1.5","avg_price":"60000.5","'
    b'fee":"0.09000075","fee_currency":"USDT","account":7,"seq":13,"funds":null,"executed_value":"90000.75","fill_fees":"0.0900007'
    b'5","settled":true,"stop_price":null,"trigger":null,"trailing_delta":null,"activation_price":null,"time_in_force":"GTC","ex'
    b'pire_at":null,"triggered_at":null,"oco_id":null,"parent_id":null,"emulated":false,"reduce_only":false,"bracket":null,"position_side":null}'
)
OLD_ORDER_JSON = ORDER_JSON[:ORDER_JSON.index(b',"funds"')] + b"}"
FILL_JSON = (
    b'{"id":9,"order_id":41,"client_order_id":"mkt-1","run_id":"r-1","wallet_set_id":3,"account":7,"exchange":"binance","type"'
    b':"limit","side":"buy","pair":"BTC_USDT","symbol":"BTC/USDT","exec_amount":"1.5","exec_price":"60000.5","notional":"90000'
    b'.75","fee":"0.09000075","fee_currency":"BNB","maker":true,"ext_id":null,"timestamp":"2025-11-22T14:00:02.123456+00:00","'
    b'seq":11,"funds":null,"filled_size":"1.5","executed_value":"90000.75","fill_fees":"0.09000075","settled":true}'
)


def test_the_views_encode_to_the_json_of_the_dicts_they_replaced() -> None:
    assert msgspec.json.encode(order_view(ORDER, INST, 13)) == ORDER_JSON
    assert msgspec.json.encode(fill_view(FILL, INST, 11)) == FILL_JSON
    assert order_view(ORDER, INST).seq == 12  # without a notification's number: the order's latest


def test_bus_messages_keep_their_msgpack_bytes_and_decode_to_typed_views() -> None:
    update = OrderUpdate(order_view(ORDER, INST, 13), 5, 7, 13)
    event = FillEvent(fill_view(FILL, INST, 11), 5, 7, 11)
    as_dicts = {"type": "order", "order": json.loads(ORDER_JSON), "owner_id": 5, "account_id": 7, "seq": 13}
    assert messages.encode(update) == msgspec.msgpack.encode(as_dicts)
    as_dicts = {"type": "trade_fill", "trade": json.loads(FILL_JSON), "owner_id": 5, "account_id": 7, "seq": 11}
    assert messages.encode(event) == msgspec.msgpack.encode(as_dicts)
    decoded = messages.decode(messages.encode(update))
    assert decoded == update and isinstance(decoded, OrderUpdate) and isinstance(decoded.order, OrderView)
    decoded_fill = messages.decode(messages.encode(event))
    assert decoded_fill == event and isinstance(decoded_fill, FillEvent) and isinstance(decoded_fill.trade, FillView)
    assert decoded_fill.trade.fee_currency == "BNB" and decoded.order.avg_price == "60000.5"


def test_a_buy_by_funds_shows_its_funds_on_the_order_and_its_fills() -> None:
    by_funds = msgspec.structs.replace(ORDER, type=OrderType.MARKET, limit=0, funds=90_100 * 10**18)
    view = order_view(by_funds, INST)
    assert (view.funds, view.executed_value, view.fill_fees, view.filled_size, view.settled) == (
        "90100", "90000.75", "0.09000075", "1.5", True)
    assert fill_view(FILL, INST, 1, by_funds.funds).funds == "90100"
    open_order = msgspec.structs.replace(ORDER, status=OrderStatus.OPEN, done_reason=None, done_at=None)
    assert order_view(open_order, INST).settled is False


def test_an_order_notification_kept_before_the_trade_fields_still_decodes() -> None:
    old = msgspec.json.decode(OLD_ORDER_JSON, type=OrderView)
    assert old.funds is None and old.executed_value == "0" and old.settled is False and old.seq == 13


def test_a_hedge_mode_leg_says_its_side_and_a_one_way_order_says_none() -> None:
    perp = Instrument(exchange="binance", symbol="BTC/USDT:USDT", base="BTC", quote="USDT", price_decimals=1, size_decimals=3,
                      kind="perpetual", settle="USDT")
    leg = msgspec.structs.replace(ORDER, symbol="BTC/USDT:USDT", size=10, position_side=PositionSide.SHORT)
    assert order_view(leg, perp).position_side == "short"
    assert order_view(msgspec.structs.replace(leg, position_side=PositionSide.BOTH), perp).position_side is None
    assert order_view(ORDER, INST).position_side is None
