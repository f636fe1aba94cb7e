"""Native conditional orders through CcxtVenue on the local Binance: stops wait unworking, fire on the venue's trades, OCO lists.

The expectations are the server's own state (its orders in Binance's fields, what it holds
locked) and Binance's documented rules, computed here in decimals; the table
(venues/native_orders.py) decides what is native.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from coinwire.core.instruments import Instrument
from coinwire.core.orders import Order, OrderStatus, OrderType, TimeInForce, TriggerSource
from coinwire.history.binance_capture import BINANCE_BTCUSDT
from coinwire.venues.ccxt_stream import WEBSOCKET
from coinwire.venues.ccxt_venue import CcxtVenue
from coinwire.venues.native_orders import native_plan, oco_plan
from coinwire.venues.reports import ReportReason
from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_trading import TradingBinance
from tests.venues.conftest import SYMBOL, best, make_order, make_venue, until
from tests.venues.test_ccxt_stream import Collector


def conditional(instrument: Instrument, oid: str, side: str, kind: OrderType, size: str, **fields: object) -> Order:
    """One of our conditional orders: prices given as decimal strings are parsed on the instrument's grid."""
    limit = fields.pop("limit", None)
    order = make_order(instrument, oid, side, kind, size, str(limit) if limit is not None else None)
    for name in ("stop_price", "activation_price"):
        if name in fields:
            fields[name] = instrument.parse_price(str(fields[name]))
    return msgspec.structs.replace(order, **fields)


def server_order(exchange: TradingBinance, client_oid: str) -> dict[str, object]:
    return next(o for o in exchange.orders.values() if o["clientOrderId"] == client_oid)


# --- the table ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        (OrderType.STOP_MARKET, {"stop_price": 1}, ("STOP_LOSS", {"stopPrice": "0.01"})),
        (OrderType.STOP_LIMIT, {"stop_price": 1, "limit": 1}, ("STOP_LOSS_LIMIT", {"stopPrice": "0.01", "timeInForce": "GTC"})),
        (OrderType.TAKE_PROFIT_MARKET, {"stop_price": 2}, ("TAKE_PROFIT", {"stopPrice": "0.02"})),
        (OrderType.TAKE_PROFIT_LIMIT, {"stop_price": 2, "limit": 2, "time_in_force": TimeInForce.IOC},
         ("TAKE_PROFIT_LIMIT", {"stopPrice": "0.02", "timeInForce": "IOC"})),
        # GTD: Binance has none; the order rests GTC and coinwire cancels it at expire_at
        (OrderType.STOP_LIMIT, {"stop_price": 1, "limit": 1, "time_in_force": TimeInForce.GTD, "expire_at": 5},
         ("STOP_LOSS_LIMIT", {"stopPrice": "0.01", "timeInForce": "GTC"})),
        (OrderType.TRAILING_STOP, {"trail_ppm": 15_000}, ("STOP_LOSS", {"trailingPercent": "1.50"})),
        (OrderType.TRAILING_STOP, {"trail_ppm": 10_000}, ("STOP_LOSS", {"trailingPercent": "1"})),
        # an activation price: the TAKE_PROFIT type starts following once the price reaches it (Binance's FAQ)
        (OrderType.TRAILING_STOP, {"trail_ppm": 1_000, "activation_price": 3},
         ("TAKE_PROFIT", {"trailingPercent": "0.10", "trailingTriggerPrice": "0.03"})),
        # emulated: an absolute distance, off the BIPS grid, outside TRAILING_DELTA, a mark or touch trigger
        (OrderType.TRAILING_STOP, {"trail_delta": 100}, None),
        (OrderType.TRAILING_STOP, {"trail_ppm": 15_050}, None),
        (OrderType.TRAILING_STOP, {"trail_ppm": 500}, None),
        (OrderType.TRAILING_STOP, {"trail_ppm": 210_000}, None),
        (OrderType.STOP_MARKET, {"stop_price": 1, "trigger": TriggerSource.MARK}, None),
        (OrderType.STOP_LIMIT, {"stop_price": 1, "limit": 1, "trigger": TriggerSource.BID_ASK}, None),
    ],
)
def test_binance_native_orders_table(kind: OrderType, fields: dict[str, object], expected: tuple[str, dict[str, str]] | None) -> None:
    order = msgspec.structs.replace(make_order(BINANCE_BTCUSDT, "t", "sell", kind, "0.001"), **fields)
    plan = native_plan("binance", order, BINANCE_BTCUSDT, None)
    assert (None if plan is None else (plan.venue_type, plan.params)) == expected
    assert native_plan("kraken", order, BINANCE_BTCUSDT, None) is None  # no row: everything is emulated


def test_a_type_the_market_does_not_list_is_emulated() -> None:
    order = msgspec.structs.replace(make_order(BINANCE_BTCUSDT, "t", "sell", OrderType.STOP_MARKET, "0.001"), stop_price=1)
    assert native_plan("binance", order, BINANCE_BTCUSDT, {"LIMIT", "MARKET", "STOP_LOSS_LIMIT"}) is None
    assert native_plan("binance", order, BINANCE_BTCUSDT, {"STOP_LOSS"}) is not None


def test_an_oco_is_native_with_a_stop_leg_binance_takes() -> None:
    limit_leg = msgspec.structs.replace(make_order(BINANCE_BTCUSDT, "a", "sell", OrderType.LIMIT, "0.001", "110"))
    stop_leg = msgspec.structs.replace(make_order(BINANCE_BTCUSDT, "b", "sell", OrderType.STOP_MARKET, "0.001"), stop_price=9000)
    plan = oco_plan("binance", limit_leg, stop_leg, BINANCE_BTCUSDT, "a")
    assert plan is not None and plan.request == {
        "side": "SELL", "quantity": "0.001", "listClientOrderId": "a", "newOrderRespType": "FULL",
        "aboveType": "LIMIT_MAKER", "abovePrice": "110", "aboveClientOrderId": "a",
        "belowType": "STOP_LOSS", "belowStopPrice": "90", "belowClientOrderId": "b",
    }
    marked = msgspec.structs.replace(stop_leg, trigger=TriggerSource.MARK)
    assert oco_plan("binance", limit_leg, marked, BINANCE_BTCUSDT, "a") is None


# --- on the local Binance ---------------------------------------------------------------------------
async def test_a_native_stop_limit_waits_unworking_holding_its_base_then_fires_on_a_trade(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, _ = best(exchange, "SELL")
    exchange.trade(bid, Decimal("0.001"))  # the last price: the stop below it does not fire at once
    stop, limit = bid - 5, bid - 10
    order = conditional(btc, "stop-1", "sell", OrderType.STOP_LIMIT, "0.01", stop_price=stop, limit=limit)
    plan = venue.native(order, btc)
    assert plan is not None
    report = await venue.place(order, btc, plan)
    assert (report.status, report.working, report.filled_size, report.limit) == (
        OrderStatus.OPEN, False, 0, btc.parse_price(str(limit)))
    sent = server_order(exchange, "stop-1")
    assert (sent["type"], sent["isWorking"], Decimal(str(sent["stopPrice"])), sent["workingTime"]) == (
        "STOP_LOSS_LIMIT", False, stop, -1)
    assert exchange.locked["BTC"] == Decimal("0.01")  # held from acceptance
    exchange.trade(stop + Decimal("0.01"), Decimal("0.001"))  # above the stop: nothing
    assert (await venue.fetch(order)).working is False
    levels = [(p, q) for p, q in exchange.book_side("SELL") if p >= limit]
    exchange.trade(stop, Decimal("0.001"))  # at the stop: it fires and sells into the bids down to its limit
    fired = await venue.fetch(order)
    assert fired.working is True and sent["isWorking"] is True
    expected = min(Decimal("0.01"), sum((q for _, q in levels), Decimal(0)))
    assert Decimal(fired.filled_size).scaleb(-btc.size_decimals) == expected
    assert fired.fills and all(f.price >= btc.parse_price(str(limit)) for f in fired.fills)
    assert exchange.locked["BTC"] == Decimal("0.01") - expected


async def test_a_native_oco_holds_once_and_one_leg_filling_ends_the_other(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, ask = best(exchange, "SELL")[0], best(exchange, "BUY")[0]
    exchange.trade(bid, Decimal("0.001"))
    limit_leg = make_order(btc, "oco-1", "sell", OrderType.LIMIT, "0.02", str(ask + 20))
    stop_leg = conditional(btc, "oco-1s", "sell", OrderType.STOP_MARKET, "0.02", stop_price=bid - 20)
    assert venue.native_oco(limit_leg, stop_leg, btc)
    limit_report, stop_report = await venue.place_oco(limit_leg, stop_leg, btc)
    assert (limit_report.status, limit_report.working, stop_report.status, stop_report.working) == (
        OrderStatus.OPEN, True, OrderStatus.OPEN, False)
    legs = [server_order(exchange, "oco-1"), server_order(exchange, "oco-1s")]
    assert [o["type"] for o in legs] == ["LIMIT_MAKER", "STOP_LOSS"]
    assert legs[0]["orderListId"] == legs[1]["orderListId"] != -1
    assert exchange.locked["BTC"] == Decimal("0.02")  # once for the list, not twice
    exchange.trade(ask + 20, Decimal("0.005"))  # the limit leg fills in part: the stop leg is gone
    limit_now, stop_now = await venue.fetch(limit_leg), await venue.fetch(stop_leg)
    assert (limit_now.status, limit_now.filled_size) == (OrderStatus.OPEN, btc.parse_size("0.005"))
    assert (stop_now.status, stop_now.reason) == (OrderStatus.DONE, ReportReason.EXPIRED)
    assert exchange.locked["BTC"] == Decimal("0.015")
    cancelled = await venue.cancel(limit_leg)
    assert (cancelled.status, cancelled.reason) == (OrderStatus.DONE, ReportReason.CANCELLED)
    assert exchange.locked["BTC"] == 0


async def test_a_native_oco_stop_firing_moves_the_hold_and_sells(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, ask = best(exchange, "SELL")[0], best(exchange, "BUY")[0]
    exchange.trade(bid, Decimal("0.001"))
    limit_leg = make_order(btc, "oco-2", "sell", OrderType.LIMIT, "0.001", str(ask + 20))
    stop_leg = conditional(btc, "oco-2s", "sell", OrderType.STOP_MARKET, "0.001", stop_price=bid - 1)
    await venue.place_oco(limit_leg, stop_leg, btc)
    exchange.trade(bid - 1, Decimal("0.001"))
    limit_now, stop_now = await venue.fetch(limit_leg), await venue.fetch(stop_leg)
    assert (limit_now.status, limit_now.reason) == (OrderStatus.DONE, ReportReason.EXPIRED)
    assert (stop_now.status, stop_now.working, stop_now.filled_size) == (OrderStatus.DONE, True, btc.parse_size("0.001"))
    assert exchange.locked["BTC"] == 0 and exchange.free["BTC"] == Decimal("0.999")


async def test_a_native_trailing_stop_follows_the_highest_trade_and_fires_on_its_delta(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, _ = best(exchange, "SELL")
    order = conditional(btc, "trail-1", "sell", OrderType.TRAILING_STOP, "0.001", trail_ppm=10_000)  # 1%
    plan = venue.native(order, btc)
    assert plan is not None
    report = await venue.place(order, btc, plan)
    sent = server_order(exchange, "trail-1")
    assert (sent["type"], sent["trailingDelta"], report.working) == ("STOP_LOSS", 100, False)
    high = bid + 100
    for price in (bid, high, high - Decimal("0.5")):  # the best is the high; 0.5 below it is not 1%
        exchange.trade(price, Decimal("0.001"))
    assert sent["isWorking"] is False
    exchange.trade(high * Decimal("0.99"), Decimal("0.001"))  # 1% below the highest trade: fires, sells at market
    done = await venue.fetch(order)
    assert (done.status, done.working, done.filled_size) == (OrderStatus.DONE, True, order.size)


async def test_the_user_data_stream_says_when_a_native_stop_starts_working(server: ServerRunner, exchange: TradingBinance) -> None:
    """Binance's executionReport `w` (is working) turns true when the stop fires: news on the stream, with no poll."""
    venue = make_venue(server, reconcile_interval=60.0)
    (btc,) = await venue.load_instruments([SYMBOL])
    collector = Collector(venue)
    try:
        await until(lambda: exchange.subscribed == 1)
        bid, _ = best(exchange, "SELL")
        exchange.trade(bid, Decimal("0.001"))
        order = conditional(btc, "ws-stop", "sell", OrderType.STOP_LIMIT, "0.01", stop_price=bid - 5, limit=bid - 1000)
        placed = await venue.place(order, btc, venue.native(order, btc))
        assert not placed.working  # its NEW event on the stream says the same: no news
        exchange.trade(bid - 5, Decimal("0.001"))
        await until(collector.done)
        assert venue.report_mode == WEBSOCKET
    finally:
        await collector.stop()
        await venue.close()
    states = [(r.status, r.working, r.filled_size) for r in collector.orders()]
    assert states[0] == (OrderStatus.OPEN, True, 0)  # fired: working, then filled
    assert states[-1] == (OrderStatus.DONE, False, order.size)  # a finished order is not working either
    assert sum(f.size for f in collector.fills()) == order.size
    assert "GET /api/v3/order" not in exchange.requests
