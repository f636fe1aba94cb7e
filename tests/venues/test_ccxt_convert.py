"""venues.ccxt_convert: our orders as CCXT arguments (decimal strings) and CCXT's structures as exact reports."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from coinwire.core.errors import InvalidInput, NotReady
from coinwire.core.numbers import to_units
from coinwire.core.orders import Order, OrderStatus, OrderType, Side
from coinwire.history.binance_capture import BINANCE_BTCUSDT
from coinwire.venues.ccxt_convert import (
    balances_from_ccxt,
    fill_report,
    order_args,
    order_report,
)
from coinwire.venues.reports import Liquidity, ReportReason

BTC = msgspec.structs.replace(BINANCE_BTCUSDT, max_size=9000 * 10**8)
ATTO = 10**18


def order(kind: OrderType, size: str = "0.00012", limit: str | None = "61837.63", side: str = "buy") -> Order:
    return Order(
        id=1, client_oid="cw-1", exchange="binance", symbol="BTC/USDT", side=Side(side), type=kind,
        size=BTC.parse_size(size), limit=BTC.parse_price(limit) if limit else 0,
    )


@pytest.mark.parametrize(
    ("kind", "ccxt_type", "params"),
    [
        (OrderType.LIMIT, "limit", {"timeInForce": "GTC"}),
        (OrderType.IOC, "limit", {"timeInForce": "IOC"}),
        (OrderType.FOK, "limit", {"timeInForce": "FOK"}),
        (OrderType.POST_ONLY, "limit", {"postOnly": True}),
    ],
)
def test_limit_orders_leave_as_exact_decimal_strings(kind: OrderType, ccxt_type: str, params: dict[str, Any]) -> None:
    assert order_args(order(kind), BTC) == (ccxt_type, "buy", "0.00012", "61837.63", {**params, "clientOrderId": "cw-1"})


def test_market_orders_leave_without_a_price() -> None:
    # a price would make ccxt.binance send quoteOrderQty (size x price) instead of the size
    assert order_args(order(OrderType.MARKET, "1.5", None, "sell"), BTC) == ("market", "sell", "1.5", None, {"clientOrderId": "cw-1"})


def test_orders_off_the_grid_are_refused_before_ccxt_can_round_them() -> None:
    with pytest.raises(InvalidInput) as raised:
        order_args(msgspec.structs.replace(order(OrderType.LIMIT), size=12_345), BTC)  # 0.00012345: off the 0.00001 step
    assert raised.value.code == "size_off_step"
    with pytest.raises(InvalidInput) as raised:
        order_args(msgspec.structs.replace(order(OrderType.LIMIT), size=100), BTC)  # below the 0.00001 minimum
    assert raised.value.code == "size_off_step"
    with pytest.raises(InvalidInput) as raised:
        order_args(msgspec.structs.replace(order(OrderType.LIMIT), symbol="ETH/USDT"), BTC)
    assert raised.value.code == "instrument_mismatch"


def ccxt_order(**fields: Any) -> dict[str, Any]:
    """A CCXT unified order as ccxt.binance parses a POST /api/v3/order FULL answer (floats, as CCXT gives them)."""
    base: dict[str, Any] = {
        "id": "1001", "clientOrderId": "cw-1", "timestamp": 1723161254206, "lastTradeTimestamp": 1723161254206,
        "lastUpdateTimestamp": 1723161254206, "symbol": "BTC/USDT", "type": "limit", "side": "buy",
        "price": 61837.63, "amount": 0.002, "filled": 0.002, "cost": 123.67525, "status": "closed", "trades": [],
    }
    return {**base, **fields}


def ccxt_trade(trade_id: str, price: float, amount: float, fee: float | None = None, maker: str | None = None) -> dict[str, Any]:
    return {
        "id": trade_id, "order": None, "timestamp": None, "symbol": "BTC/USDT", "side": None, "price": price, "amount": amount,
        "takerOrMaker": maker, "fee": {"cost": fee, "currency": "BTC"} if fee is not None else None,
    }


def test_an_order_with_fills_is_reported_exactly() -> None:
    raw = ccxt_order(
        price=61840.0, filled=0.002, cost=123.67526,
        trades=[ccxt_trade("7", 61837.63, 0.001, 1e-06), ccxt_trade("8", 61837.64, 0.001, 1e-06)],
    )
    report = order_report(raw, BTC)
    assert (report.status, report.reason, report.client_oid, report.venue_order_id) == (
        OrderStatus.DONE, ReportReason.FILLED, "cw-1", "1001"
    )
    assert (report.size, report.limit, report.filled_size) == (200_000, 6_184_000, 200_000)
    assert report.filled_notional == 123_675_270 * 10**12  # 61.83763 + 61.83764 exactly, not CCXT's cost
    assert report.average_price == 6_183_764  # 61837.635 to the nearest cent, halves up
    assert [(f.trade_id, f.price, f.size, f.fee, f.fee_currency, f.liquidity, f.side, f.ts) for f in report.fills] == [
        ("7", 6_183_763, 100_000, 10**12, "BTC", Liquidity.TAKER, Side.BUY, 1723161254206 * 10**6),
        ("8", 6_183_764, 100_000, 10**12, "BTC", Liquidity.TAKER, Side.BUY, 1723161254206 * 10**6),
    ]
    assert {f.venue_order_id for f in report.fills} == {"1001"}


def test_without_fills_the_venue_s_cumulative_cost_is_the_notional() -> None:
    report = order_report(ccxt_order(status="open", filled=0.001, cost=61.83763), BTC, client_oid="mine", fills=())
    assert (report.status, report.reason, report.client_oid) == (OrderStatus.OPEN, None, "mine")
    assert (report.filled_notional, report.average_price, report.fills) == (61_837_630 * 10**12, 6_183_763, ())


@pytest.mark.parametrize(
    ("status", "reason"),
    [("canceled", ReportReason.CANCELLED), ("expired", ReportReason.EXPIRED), ("rejected", ReportReason.REJECTED)],
)
def test_finished_statuses(status: str, reason: ReportReason) -> None:
    report = order_report(ccxt_order(status=status, filled=0.0, cost=0.0), BTC)
    assert (report.status, report.reason, report.filled_size, report.average_price) == (OrderStatus.DONE, reason, 0, 0)


def test_market_orders_report_no_limit() -> None:
    assert order_report(ccxt_order(type="market", price=0.0), BTC).limit == 0


def test_impossible_venue_answers_are_refused_not_rounded() -> None:
    with pytest.raises(InvalidInput) as raised:
        order_report(ccxt_order(filled=0.000123456), BTC)  # finer than the instrument's sizes
    assert raised.value.code == "too_precise"
    with pytest.raises(NotReady) as bad:
        order_report(ccxt_order(status="weird"), BTC)
    assert bad.value.code == "exchange_bad_response"


def test_a_maker_fill_without_fee() -> None:
    raw = {**ccxt_trade("9", 61837.63, 0.5, None, "maker"), "side": "sell", "order": "1002", "timestamp": 1723161254300}
    fill = fill_report(raw, BTC, client_oid="cw-2")
    assert (fill.side, fill.liquidity, fill.fee, fill.fee_currency, fill.venue_order_id, fill.ts) == (
        Side.SELL, Liquidity.MAKER, 0, "", "1002", 1723161254300 * 10**6
    )
    assert fill.notional == 30_918_815 * 10**15


def test_balances_are_atto_and_empty_currencies_are_left_out() -> None:
    balance = {
        "free": {"BTC": 0.12345678, "USDT": 100000.5, "ETH": 0.0},
        "used": {"BTC": 0.0, "USDT": 6.18376300, "ETH": 0.0},
    }
    assert balances_from_ccxt(balance) == {
        "BTC": (12_345_678 * 10**10, 0),
        "USDT": (1_000_005 * 10**17, 6_183_763 * 10**12),
    }


def test_a_market_buy_by_funds_sends_the_funds_less_the_taker_fee_as_its_cost() -> None:
    by_funds = msgspec.structs.replace(order(OrderType.MARKET, limit=None), size=0, funds=10 * ATTO)
    rate = BTC.taker_fee  # 1e-8 units
    cost = 10 * ATTO * 10**8 // (10**8 + rate)
    ccxt_type, side, amount, price, params = order_args(by_funds, BTC)
    assert (ccxt_type, side, price) == ("market", "buy", None)
    assert amount == params["cost"] and params["clientOrderId"] == "cw-1"
    sent = to_units(params["cost"], 18)
    assert sent == cost and sent + sent * rate // 10**8 <= 10 * ATTO  # what the venue may spend, its fee on top, fits
    with pytest.raises(InvalidInput) as refusal:
        order_args(msgspec.structs.replace(by_funds, side=Side.SELL), BTC)
    assert refusal.value.code == "funds_market_buy_only"
