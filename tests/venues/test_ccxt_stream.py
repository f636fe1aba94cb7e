"""Execution reports of CcxtVenue: Binance's user data stream through ccxt.pro, and the REST polling fallback.

The local server (`tests/venues/binance_trading.py`) serves Binance's WebSocket API
(`userDataStream.subscribe.signature`, then `executionReport` events), so `watch_orders` and
`watch_my_trades` of a real ccxt.binance run unchanged; refusing the WebSocket upgrade makes
the venue poll instead.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from coinwire.core.errors import DomainError
from coinwire.core.orders import OrderStatus, OrderType, Side
from coinwire.venues.ccxt_stream import POLLING, WEBSOCKET, VenueState
from coinwire.venues.ccxt_venue import CcxtVenue
from coinwire.venues.reports import (
    FillReport,
    Liquidity,
    OrderReport,
    Report,
    ReportReason,
)
from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_trading import TradingBinance
from tests.venues.conftest import (
    SYMBOL,
    advance_trades,
    best,
    make_order,
    make_venue,
    until,
)


class Collector:
    """Consumes `venue.reports()` in a task, keeping every report and the error that ended it."""

    def __init__(self, venue: CcxtVenue) -> None:
        self.venue = venue
        self.reports: list[Report] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for report in self.venue.reports():
                self.reports.append(report)
        except Exception as exc:  # noqa: BLE001 - the test looks at whatever ended the stream
            self.error = exc

    def fills(self) -> list[FillReport]:
        return [r for r in self.reports if isinstance(r, FillReport)]

    def orders(self) -> list[OrderReport]:
        return [r for r in self.reports if isinstance(r, OrderReport)]

    def done(self) -> bool:
        return any(r.is_done for r in self.orders())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def assert_fills_match_the_venue(collector: Collector, exchange: TradingBinance, client_oid: str, size: int) -> None:
    """Every trade of the account reported exactly once, all of `client_oid`, adding up to `size`."""
    fills = collector.fills()
    assert sorted(f.trade_id for f in fills) == sorted(str(t["id"]) for t in exchange.trades)
    assert {f.client_oid for f in fills} == {client_oid}
    assert sum(f.size for f in fills) == size
    assert {(f.liquidity, f.side) for f in fills} == {(Liquidity.MAKER, Side.BUY)}
    last = collector.orders()[-1]
    assert (last.status, last.reason, last.filled_size, last.fills) == (OrderStatus.DONE, ReportReason.FILLED, size, ())


async def test_reports_arrive_over_the_user_data_stream(server: ServerRunner, exchange: TradingBinance) -> None:
    venue = make_venue(server, reconcile_interval=60.0)
    (btc,) = await venue.load_instruments([SYMBOL])
    collector = Collector(venue)
    try:
        await until(lambda: exchange.subscribed == 1)
        assert venue.report_mode == WEBSOCKET
        bid, _ = best(exchange, "SELL")
        order = make_order(btc, "ws-1", "buy", OrderType.LIMIT, "0.05", str(bid))
        await venue.place(order, btc)
        advance_trades(exchange, 1)
        await until(lambda: collector.fills())  # the partial fill, pushed by the venue
        advance_trades(exchange, 10)
        await until(collector.done)
        assert venue.report_mode == WEBSOCKET
    finally:
        await collector.stop()
        await venue.close()
    assert_fills_match_the_venue(collector, exchange, "ws-1", order.size)
    assert "GET /api/v3/order" not in exchange.requests  # nothing was polled: the stream carried it all
    assert exchange.ws_connections == 1


async def test_reports_fall_back_to_polling_and_return_to_the_websocket(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    exchange.ws_refuse = 503
    venue = make_venue(server, ws_retry=0.3)
    (btc,) = await venue.load_instruments([SYMBOL])
    collector = Collector(venue)
    try:
        await until(lambda: "WS /ws-api/v3" in exchange.requests and venue.report_mode == POLLING)
        bid, _ = best(exchange, "SELL")
        order = make_order(btc, "poll-1", "buy", OrderType.LIMIT, "0.05", str(bid))
        await venue.place(order, btc)
        advance_trades(exchange, 1)
        await until(lambda: collector.fills() and collector.orders())  # found by polling
        assert exchange.subscribed == 0 and "GET /api/v3/order" in exchange.requests
        partial = collector.orders()[-1]
        assert partial.status is OrderStatus.OPEN and partial.filled_size == sum(f.size for f in collector.fills())

        exchange.ws_refuse = 0  # the WebSocket is back: the venue tries it again and stays on it
        await until(lambda: exchange.subscribed == 1 and venue.report_mode == WEBSOCKET)
        await asyncio.sleep(0.2)  # the reconciliation poll at connection time
        polled = exchange.requests.count("GET /api/v3/order")
        advance_trades(exchange, 10)
        await until(collector.done)
        assert exchange.requests.count("GET /api/v3/order") == polled  # the rest came over the WebSocket
    finally:
        await collector.stop()
        await venue.close()
    assert_fills_match_the_venue(collector, exchange, "poll-1", order.size)


async def test_a_websocket_refused_for_its_credentials_is_not_tried_again(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    exchange.secret = "rotated-secret"  # the venue's key no longer signs right
    venue = make_venue(server, ws_retry=0.05)
    await venue.load_instruments([SYMBOL])
    collector = Collector(venue)
    try:
        await until(lambda: ("ws-api", -1022) in exchange.refusals and venue.report_mode == POLLING)
        await asyncio.sleep(0.3)  # several ws_retry periods
        assert exchange.ws_connections == 1 and venue.report_mode == POLLING
    finally:
        await collector.stop()
        await venue.close()


async def test_polling_retries_what_is_temporary_and_ends_on_what_is_not(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    venue = make_venue(server, websocket=False)
    (btc,) = await venue.load_instruments([SYMBOL])
    bid, _ = best(exchange, "SELL")
    await venue.place(make_order(btc, "poll-2", "buy", OrderType.LIMIT, "0.05", str(bid)), btc)
    exchange.fail("query", 503, 429)
    collector = Collector(venue)
    try:
        advance_trades(exchange, 1)
        await until(lambda: collector.fills())  # after the busy and rate-limited answers
        exchange.secret = "rotated-secret"
        await until(lambda: collector.task.done())
    finally:
        await collector.stop()
        await venue.close()
    assert exchange.refusals[-1] == ("query", -1022)
    assert isinstance(collector.error, DomainError) and collector.error.code == "exchange_auth_failed"


async def test_closing_the_venue_ends_the_reports(server: ServerRunner, exchange: TradingBinance) -> None:
    venue = make_venue(server)
    await venue.load_instruments([SYMBOL])
    collector = Collector(venue)
    await until(lambda: exchange.subscribed == 1)
    await venue.close()
    await asyncio.wait_for(collector.task, 5)  # the consumer's loop simply ends
    assert collector.error is None


async def test_reports_have_one_consumer_at_a_time(venue: CcxtVenue) -> None:
    collector = Collector(venue)
    try:
        await until(lambda: venue._stream._task is not None)
        with pytest.raises(RuntimeError):
            async for _ in venue.reports():
                pass
    finally:
        await collector.stop()


# --- what has been reported already ---------------------------------------------------------------
def _report(status: OrderStatus, filled: int, reason: ReportReason | None = None) -> OrderReport:
    return OrderReport(
        client_oid="c1", venue_order_id="7", symbol=SYMBOL, side=Side.BUY, status=status, reason=reason,
        size=100, limit=5, filled_size=filled, filled_notional=filled * 5, average_price=5 if filled else 0, ts=1,
    )


def _fill(trade_id: str) -> FillReport:
    return FillReport(
        trade_id=trade_id, venue_order_id="7", client_oid="c1", symbol=SYMBOL, side=Side.BUY, price=5, size=10,
        notional=50, fee=1, fee_currency="BTC", liquidity=Liquidity.MAKER, ts=1,
    )


def test_venue_state_lets_each_piece_of_news_out_once() -> None:
    state = VenueState()
    assert state.track(_report(OrderStatus.OPEN, 0))
    assert not state.track(_report(OrderStatus.OPEN, 0))  # the same again: a repeat
    assert state.track(_report(OrderStatus.OPEN, 10))
    assert state.track(_report(OrderStatus.DONE, 100, ReportReason.FILLED))
    assert not state.track(_report(OrderStatus.OPEN, 90))  # a late, stale echo of a finished order
    assert state.by_client == {"c1": "7"} and state.orders["7"].status is OrderStatus.DONE
    assert state.new_fill(_fill("1")) and not state.new_fill(_fill("1")) and state.new_fill(_fill("2"))
    returned = VenueState()
    returned.track(msgspec.structs.replace(_report(OrderStatus.DONE, 10, ReportReason.FILLED), fills=(_fill("3"),)))
    assert not returned.new_fill(_fill("3"))  # returned by place/fetch/cancel: not news on the stream
