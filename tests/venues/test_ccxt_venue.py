"""CcxtVenue against a real ccxt.binance talking to a local Binance spot trading server on the recorded book.

Nothing here mocks CCXT or coinwire: `tests/venues/binance_trading.py` speaks Binance's signed
REST API (and its WebSocket API) from the recorded BTCUSDT capture, and every expectation is
computed independently from that server's book and account, in decimal strings.
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal

import msgspec
import pytest

from coinwire.core.errors import (
    Conflict,
    DomainError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    NotReady,
)
from coinwire.core.instruments import Instrument
from coinwire.core.orders import DoneReason, OrderStatus, OrderType
from coinwire.history.binance_capture import BINANCE_BTCUSDT
from coinwire.venues.ccxt_venue import CcxtVenue
from coinwire.venues.reports import Liquidity, OrderReport, ReportReason
from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_trading import LATE, LOST_RESPONSE, TradingBinance
from tests.venues.conftest import (
    SYMBOL,
    advance_trades,
    best,
    make_order,
    make_venue,
    until,
)

ATTO = 10**18
FEE = Decimal("0.001")


def atto(value: Decimal | str) -> int:
    scaled = Decimal(value) * ATTO
    assert scaled == scaled.to_integral_value()
    return int(scaled)


def fee_of(amount: Decimal) -> Decimal:
    return (amount * FEE).quantize(Decimal("0.00000001"), rounding=ROUND_UP)


def fills_total(report: OrderReport) -> int:
    return sum(f.size for f in report.fills)


# --- instruments and balances ----------------------------------------------------------------------
async def test_load_instruments_gives_binance_btcusdt_exactly(server: ServerRunner) -> None:
    venue = make_venue(server)
    try:
        # tickSize 0.01, stepSize 0.00001 at baseAssetPrecision 8, NOTIONAL 5, CCXT's 0.1% fees: the recorded instrument
        expected = msgspec.structs.replace(BINANCE_BTCUSDT, max_size=9000 * 10**8)
        assert await venue.load_instruments(["btc_usdt"]) == [expected]
        assert await venue.load_instruments() == [expected]  # every spot market the venue has
        with pytest.raises(InvalidInput) as raised:
            await venue.load_instruments(["ETH/USDT"])
        assert raised.value.code == "exchange_bad_symbol"
    finally:
        await venue.close()


async def test_balances_are_exact_and_follow_what_orders_hold(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    assert await venue.balances() == {"BTC": (ATTO, 0), "USDT": (100_000 * ATTO, 0)}
    bid, _ = best(exchange, "SELL")
    price = bid - Decimal(100)
    order = make_order(btc, "hold-1", "buy", OrderType.LIMIT, "0.12345", str(price))
    await venue.place(order, btc)
    held = atto(Decimal("0.12345") * price)
    assert await venue.balances() == {"BTC": (ATTO, 0), "USDT": (100_000 * ATTO - held, held)}
    await venue.cancel(order)
    assert await venue.balances() == {"BTC": (ATTO, 0), "USDT": (100_000 * ATTO, 0)}


# --- market orders -----------------------------------------------------------------------------------
async def test_market_buy_walks_the_book_and_settles_exactly(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    (p1, q1), (p2, _) = exchange.book_side("BUY")[:2]
    size = q1 + Decimal("0.005")  # all of the best ask, then some of the next level
    report = await venue.place(make_order(btc, "mkt-buy", "buy", OrderType.MARKET, str(size)), btc)

    assert report.status is OrderStatus.DONE and report.reason is ReportReason.FILLED
    assert report.done_reason(OrderType.MARKET) is DoneReason.FILLED
    assert [(f.price, f.size) for f in report.fills] == [
        (btc.parse_price(p1), btc.parse_size(q1)),
        (btc.parse_price(p2), btc.parse_size("0.005")),
    ]
    cost = p1 * q1 + p2 * Decimal("0.005")
    assert report.filled_size == btc.parse_size(size) == fills_total(report)
    assert report.filled_notional == atto(cost) == sum(f.notional for f in report.fills)
    assert report.average_price == btc.parse_price((cost / size).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    assert report.limit == 0 and report.client_oid == "mkt-buy"
    assert {f.liquidity for f in report.fills} == {Liquidity.TAKER}
    assert [f.fee for f in report.fills] == [atto(fee_of(q1)), atto(fee_of(Decimal("0.005")))]
    assert {f.fee_currency for f in report.fills} == {"BTC"}
    assert [f.trade_id for f in report.fills] == [str(t["id"]) for t in exchange.trades]
    fees = fee_of(q1) + fee_of(Decimal("0.005"))
    assert await venue.balances() == {"BTC": (atto(1 + size - fees), 0), "USDT": (atto(100_000 - cost), 0)}


async def test_market_sell_pays_its_fee_in_the_quote(venue: CcxtVenue, exchange: TradingBinance, btc: Instrument) -> None:
    price, size = best(exchange, "SELL")
    assert size >= Decimal("0.5")  # the recorded best bid is deep enough for one level
    report = await venue.place(make_order(btc, "mkt-sell", "sell", OrderType.MARKET, "0.5"), btc)
    (fill,) = report.fills
    assert (fill.price, fill.size, fill.fee_currency) == (btc.parse_price(price), btc.parse_size("0.5"), "USDT")
    assert fill.fee == atto(fee_of(price * Decimal("0.5")))
    assert await venue.balances() == {
        "BTC": (atto("0.5"), 0),
        "USDT": (atto(100_000 + price * Decimal("0.5") - fee_of(price * Decimal("0.5"))), 0),
    }


# --- limit orders: GTC, IOC, FOK, post-only ---------------------------------------------------------------
async def test_limit_order_rests_fills_partially_then_fully_as_maker(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, _ = best(exchange, "SELL")
    order = make_order(btc, "gtc-1", "buy", OrderType.LIMIT, "0.05", str(bid))
    placed = await venue.place(order, btc)
    assert (placed.status, placed.filled_size, placed.fills, placed.limit) == (OrderStatus.OPEN, 0, (), btc.parse_price(bid))
    assert exchange.orders[int(placed.venue_order_id)]["timeInForce"] == "GTC"

    advance_trades(exchange, 1)  # the first recorded trade hits the bid with 0.048
    partial = await venue.fetch(order)
    assert partial.status is OrderStatus.OPEN and 0 < partial.filled_size < order.size
    assert partial.filled_size == fills_total(partial)
    assert await venue.open_orders(SYMBOL) == [msgspec.structs.replace(partial, fills=())]

    advance_trades(exchange, 10)
    done = await venue.fetch(order)
    assert done.status is OrderStatus.DONE and done.reason is ReportReason.FILLED
    assert done.filled_size == order.size == fills_total(done)
    assert {(f.price, f.liquidity) for f in done.fills} == {(btc.parse_price(bid), Liquidity.MAKER)}
    assert done.filled_notional == atto(bid * Decimal("0.05")) and done.average_price == btc.parse_price(bid)
    assert await venue.open_orders() == []
    assert (await venue.balances())["USDT"] == (atto(100_000 - bid * Decimal("0.05")), 0)


async def test_marketable_limit_order_takes_then_rests_the_rest(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    ask, depth = best(exchange, "BUY")
    order = make_order(btc, "gtc-cross", "buy", OrderType.LIMIT, str(depth + Decimal("0.01")), str(ask))
    report = await venue.place(order, btc)
    assert report.status is OrderStatus.OPEN
    assert [(f.price, f.size, f.liquidity) for f in report.fills] == [
        (btc.parse_price(ask), btc.parse_size(depth), Liquidity.TAKER)
    ]
    assert [o.client_oid for o in await venue.open_orders()] == ["gtc-cross"]


async def test_ioc_takes_what_it_can_and_the_rest_expires(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    ask, depth = best(exchange, "BUY")
    order = make_order(btc, "ioc-1", "buy", OrderType.IOC, str(depth + Decimal("0.01")), str(ask))
    report = await venue.place(order, btc)
    assert exchange.orders[int(report.venue_order_id)]["timeInForce"] == "IOC"
    assert report.status is OrderStatus.DONE and report.reason is ReportReason.EXPIRED
    assert report.done_reason(OrderType.IOC) is DoneReason.CANCELLED
    assert report.filled_size == btc.parse_size(depth) == fills_total(report)
    assert await venue.open_orders() == []
    assert (await venue.balances())["USDT"][1] == 0  # nothing left held


async def test_fok_fills_entirely_or_is_killed(venue: CcxtVenue, exchange: TradingBinance, btc: Instrument) -> None:
    ask, depth = best(exchange, "BUY")
    killed = await venue.place(make_order(btc, "fok-1", "buy", OrderType.FOK, str(depth + Decimal("0.01")), str(ask)), btc)
    assert exchange.orders[int(killed.venue_order_id)]["timeInForce"] == "FOK"
    assert (killed.status, killed.reason, killed.filled_size, killed.fills) == (OrderStatus.DONE, ReportReason.EXPIRED, 0, ())
    assert killed.done_reason(OrderType.FOK) is DoneReason.KILLED
    assert await venue.balances() == {"BTC": (ATTO, 0), "USDT": (100_000 * ATTO, 0)}

    filled = await venue.place(make_order(btc, "fok-2", "buy", OrderType.FOK, "0.001", str(ask)), btc)
    assert (filled.reason, filled.filled_size) == (ReportReason.FILLED, btc.parse_size("0.001"))


async def test_post_only_rests_or_is_refused_when_it_would_take(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, _ = best(exchange, "SELL")
    ask, _ = best(exchange, "BUY")
    report = await venue.place(make_order(btc, "po-1", "buy", OrderType.POST_ONLY, "0.01", str(bid)), btc)
    assert report.status is OrderStatus.OPEN and report.fills == ()
    assert exchange.orders[int(report.venue_order_id)]["type"] == "LIMIT_MAKER"

    with pytest.raises(InvalidInput) as raised:
        await venue.place(make_order(btc, "po-2", "buy", OrderType.POST_ONLY, "0.01", str(ask)), btc)
    assert raised.value.code == "exchange_invalid_order"
    assert exchange.refusals[-1] == ("order", -2010)
    assert len(exchange.orders) == 1


# --- cancel ------------------------------------------------------------------------------------------
async def test_cancel_reports_the_cancelled_order_with_its_fills(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, _ = best(exchange, "SELL")
    order = make_order(btc, "cancel-1", "buy", OrderType.LIMIT, "0.5", str(bid))
    await venue.place(order, btc)
    advance_trades(exchange, 1)
    report = await venue.cancel(order)
    assert report.status is OrderStatus.DONE and report.reason is ReportReason.CANCELLED
    assert report.client_oid == "cancel-1"  # not the id Binance gave the cancel request
    assert 0 < report.filled_size == fills_total(report) < order.size
    assert (await venue.balances())["USDT"][1] == 0

    again = await venue.cancel(order)  # already done: its final report, not an error
    assert (again.reason, again.filled_size) == (ReportReason.CANCELLED, report.filled_size)


async def test_cancel_after_the_last_fill_returns_the_filled_order(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, _ = best(exchange, "SELL")
    order = make_order(btc, "cancel-late", "buy", OrderType.LIMIT, "0.01", str(bid))
    await venue.place(order, btc)
    advance_trades(exchange, 1)  # 0.048 traded at the bid: filled before the cancel arrives
    report = await venue.cancel(order)
    assert exchange.refusals == [("cancel", -2011)]
    assert (report.reason, report.filled_size) == (ReportReason.FILLED, order.size)


async def test_cancel_of_an_order_the_venue_never_had_is_not_found(venue: CcxtVenue, btc: Instrument) -> None:
    with pytest.raises(NotFound) as raised:
        await venue.cancel(make_order(btc, "never-placed", "buy", OrderType.LIMIT, "0.01", "60000"))
    assert raised.value.code == "exchange_order_not_found"
    with pytest.raises(NotFound):
        await venue.fetch(make_order(btc, "never-placed", "buy", OrderType.LIMIT, "0.01", "60000"))


# --- refusals ------------------------------------------------------------------------------------------
async def test_refusals_become_coinwire_errors(venue: CcxtVenue, exchange: TradingBinance, btc: Instrument) -> None:
    bid, _ = best(exchange, "SELL")
    with pytest.raises(InsufficientFunds) as funds:
        await venue.place(make_order(btc, "rich", "buy", OrderType.LIMIT, "10", str(bid)), btc)
    assert funds.value.code == "insufficient_funds" and funds.value.data["exchange"] == "binance"
    with pytest.raises(InvalidInput) as notional:  # 0.00001 BTC is worth less than the 5 USDT minimum
        await venue.place(make_order(btc, "tiny", "buy", OrderType.LIMIT, "0.00001", str(bid)), btc)
    assert notional.value.code == "exchange_invalid_order"
    assert exchange.refusals == [("order", -2010), ("order", -1013)]
    assert exchange.orders == {}


async def test_orders_off_the_grid_or_with_bad_client_ids_never_leave(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    off_step = msgspec.structs.replace(make_order(btc, "off-step", "buy", OrderType.LIMIT, "0.01", "60000"), size=10_001)
    with pytest.raises(InvalidInput) as raised:
        await venue.place(off_step, btc)
    assert raised.value.code == "size_off_step"
    huge = msgspec.structs.replace(off_step, client_oid="huge", size=btc.max_size + btc.step)
    with pytest.raises(InvalidInput) as raised:
        await venue.place(huge, btc)
    assert raised.value.code == "size_above_maximum"
    with pytest.raises(InvalidInput) as raised:
        await venue.place(make_order(btc, "not a valid id!", "buy", OrderType.LIMIT, "0.01", "60000"), btc)
    assert raised.value.code == "invalid_client_oid"
    assert [r for r in exchange.requests if r.startswith("POST")] == []


# --- idempotency and unknown outcomes -------------------------------------------------------------------
async def test_placing_the_same_order_twice_returns_it_and_a_different_one_conflicts(
    venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, _ = best(exchange, "SELL")
    order = make_order(btc, "twice", "buy", OrderType.LIMIT, "0.01", str(bid - 50))
    first = await venue.place(order, btc)
    assert await venue.place(order, btc) == first
    assert exchange.requests.count("POST /api/v3/order") == 1
    with pytest.raises(Conflict) as raised:
        await venue.place(msgspec.structs.replace(order, size=order.size * 2), btc)
    assert raised.value.code == "duplicate_client_oid"


async def test_a_restarted_venue_meets_the_venue_s_duplicate_client_id(
    server: ServerRunner, venue: CcxtVenue, exchange: TradingBinance, btc: Instrument
) -> None:
    bid, _ = best(exchange, "SELL")
    order = make_order(btc, "restart", "buy", OrderType.LIMIT, "0.01", str(bid - 50))
    first = await venue.place(order, btc)
    fresh = make_venue(server)  # knows nothing of what the first one placed
    try:
        await fresh.load_instruments([SYMBOL])
        assert await fresh.place(order, btc) == first
        assert exchange.refusals == [("order", -2010)]  # Binance: "Duplicate order sent."
        with pytest.raises(Conflict):
            await fresh.place(msgspec.structs.replace(order, limit=order.limit - 100), btc)
    finally:
        await fresh.close()
    assert len(exchange.orders) == 1


async def test_a_timeout_after_the_order_reached_the_venue_is_resolved_by_client_id(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    venue = make_venue(server, timeout=0.4)
    exchange.fault_delay = 1.0
    exchange.fail("order", LOST_RESPONSE)
    try:
        (btc,) = await venue.load_instruments([SYMBOL])
        report = await venue.place(make_order(btc, "lost-1", "buy", OrderType.MARKET, "0.01"), btc)
    finally:
        await venue.close()
    assert report.reason is ReportReason.FILLED and fills_total(report) == report.filled_size > 0
    assert len(exchange.orders) == 1
    assert exchange.requests == ["POST /api/v3/order", "GET /api/v3/order", "GET /api/v3/myTrades"]


async def test_a_timeout_before_the_order_arrived_waits_out_the_receive_window_then_resends(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    venue = make_venue(server, timeout=0.3, recv_window_ms=600, reconcile_margin=0.2)
    assert venue.order_ttl == pytest.approx(0.8)
    exchange.fault_delay = 1.2  # the first request reaches the matching engine after its 600 ms window
    exchange.fail("order", LATE)
    bid, _ = best(exchange, "SELL")
    try:
        (btc,) = await venue.load_instruments([SYMBOL])
        started = time.monotonic()
        report = await venue.place(make_order(btc, "late-1", "buy", OrderType.LIMIT, "0.01", str(bid)), btc)
        assert time.monotonic() - started >= 0.8
        await until(lambda: ("order", -1021) in exchange.refusals)  # the late original was refused on arrival
    finally:
        await venue.close()
    assert report.status is OrderStatus.OPEN and len(exchange.orders) == 1
    assert exchange.requests == [
        "POST /api/v3/order",  # lost in transit, arrives too late
        "GET /api/v3/order",  # not there
        "GET /api/v3/order",  # still not there once it can no longer arrive
        "POST /api/v3/order",  # so the resend is safe
    ]
    assert exchange.refusals == [("query", -2013), ("query", -2013), ("order", -1021)]


async def test_without_resends_a_lost_order_is_not_ready(server: ServerRunner, exchange: TradingBinance) -> None:
    venue = make_venue(server, timeout=0.3, recv_window_ms=300, reconcile_margin=0.1, max_resends=0)
    exchange.fault_delay = 0.8
    exchange.fail("order", LATE)
    try:
        (btc,) = await venue.load_instruments([SYMBOL])
        with pytest.raises(NotReady) as raised:
            await venue.place(make_order(btc, "late-2", "buy", OrderType.MARKET, "0.01"), btc)
        await until(lambda: ("order", -1021) in exchange.refusals)
    finally:
        await venue.close()
    assert raised.value.code == "exchange_timeout"
    assert exchange.orders == {} and exchange.refusals == [("query", -2013), ("query", -2013), ("order", -1021)]


async def test_an_unknown_outcome_the_venue_cannot_answer_is_order_state_unknown(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    venue = make_venue(server, timeout=0.4)
    exchange.fault_delay = 1.0
    exchange.fail("order", LOST_RESPONSE)
    exchange.fail("query", 503)
    try:
        (btc,) = await venue.load_instruments([SYMBOL])
        order = make_order(btc, "unknown-1", "buy", OrderType.MARKET, "0.01")
        with pytest.raises(NotReady) as raised:
            await venue.place(order, btc)
        assert raised.value.code == "order_state_unknown" and raised.value.data["client_oid"] == "unknown-1"
        assert (await venue.fetch(order)).reason is ReportReason.FILLED  # what the caller must do next
    finally:
        await venue.close()
    assert exchange.requests.count("POST /api/v3/order") == 1


# --- errors and credentials ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        (503, NotReady, "exchange_busy"),  # -1008 server busy
        (429, NotReady, "exchange_rate_limited"),
        (418, NotReady, "exchange_rate_limited"),
        (400, InvalidInput, "exchange_bad_symbol"),  # -1121
        (LOST_RESPONSE, NotReady, "exchange_timeout"),
    ],
)
async def test_venue_failures_are_translated(
    server: ServerRunner, exchange: TradingBinance, fault: int | str, error: type[Exception], code: str
) -> None:
    venue = make_venue(server, timeout=0.4)
    exchange.fault_delay = 1.0
    exchange.fail("account", fault)
    try:
        with pytest.raises(error) as raised:
            await venue.balances()
    finally:
        await venue.close()
    assert raised.value.code == code  # type: ignore[attr-defined]


@pytest.mark.parametrize(("key", "secret", "refusal"), [("good", "wrong secret", -1022), ("wrong key", "good", -2015)])
async def test_bad_credentials_are_refused_by_the_venue(
    server: ServerRunner, exchange: TradingBinance, key: str, secret: str, refusal: int
) -> None:
    venue = make_venue(
        server, api_key=exchange.api_key if key == "good" else "x" * 64, secret=exchange.secret if secret == "good" else "y" * 64
    )
    try:
        with pytest.raises(DomainError) as raised:
            await venue.balances()
    finally:
        await venue.close()
    assert raised.value.code == "exchange_auth_failed" and raised.value.data["group"] == "operational"
    assert exchange.refusals == [("account", refusal)]


# --- history ---------------------------------------------------------------------------------------------
async def test_fills_since_pages_through_every_fill(venue: CcxtVenue, exchange: TradingBinance, btc: Instrument) -> None:
    start = time.time_ns() // 1_000_000
    bid, _ = best(exchange, "SELL")
    await venue.place(make_order(btc, "hist-1", "buy", OrderType.MARKET, "0.01"), btc)
    await venue.place(make_order(btc, "hist-2", "buy", OrderType.LIMIT, "0.06", str(bid)), btc)
    advance_trades(exchange, 12)
    fills = await venue.fills_since(SYMBOL, start, page=3)
    assert [f.trade_id for f in fills] == [str(t["id"]) for t in exchange.trades]
    assert len(fills) > 6  # more than two pages
    assert {f.client_oid for f in fills} == {"hist-1", "hist-2"}
    assert sum(f.size for f in fills if f.client_oid == "hist-2") == btc.parse_size("0.06")
    assert await venue.fills_since("BTC/USDT", time.time_ns() // 1_000_000 + 1000) == []
