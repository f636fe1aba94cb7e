"""Conditional orders on the live venue, in a real gateway, on the local signed Binance: native where Binance has them, else emulated.

Each test checks the venue's state (the server's orders, what it holds locked) beside ours
(the order's status, the ledger's holds): a native stop-limit and a native OCO rest at the
venue and fire on its trades; an emulated trailing stop (an absolute distance: Binance trails
in basis points only) fires on the mirrored market's trades and sends its market child once,
even when the venue refuses the first attempts; stops resting across a restart, native and
emulated, are still there and still fire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from coinwire.core.conditional import Bracket, encode_bracket
from coinwire.core.errors import InvalidInput
from coinwire.core.orders import DoneReason, Order, OrderStatus, OrderType, TimeInForce, TriggerSource
from coinwire.messages import TradeTick
from tests.venues.conftest import until
from tests.venues.test_contract_live import LiveHarness, live_harness

BIDS = [("100.00", "1"), ("99.00", "2")]
ASKS = [("101.00", "1"), ("102.00", "2")]


@pytest.fixture
async def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LiveHarness]:
    async with live_harness(tmp_path, monkeypatch) as harness:
        yield harness


def conditional(h: LiveHarness, side: str, kind: OrderType, size: str, limit: str = "0", **prices: object) -> Order:
    """One of our conditional orders; prices given as decimal text are parsed on the instrument's grid."""
    order = h.order(side, kind.value, size, limit)
    inst = h.instrument
    fields = {k: inst.parse_price(v) if type(v) is str else v for k, v in prices.items()}  # enums pass as they are
    return msgspec.structs.replace(order, **fields)


def at_venue(h: LiveHarness, order: Order) -> dict[str, object]:
    return next(o for o in h.binance.orders.values() if o["clientOrderId"] == order.client_oid)


def held(h: LiveHarness, currency: str) -> int:
    return h.venue.balances(h.account)[currency].hold


async def mirror_trade(h: LiveHarness, price: str, size: str = "0.01") -> None:
    """A public trade on the mirrored market (the feed's view), as the gateway hands it to the venue."""
    h.t += 1_000_000
    inst = h.instrument
    await h.gw.apply_market(TradeTick(h.exchange, h.symbol, h.t, f"t{h.t}", inst.parse_price(price), inst.parse_size(size), "sell"))


async def start(h: LiveHarness) -> None:
    await h.fund("BTC", "1")
    await h.fund("USDT", "1000")
    await h.set_book(BIDS, ASKS)
    h.binance.trade(Decimal("100.50"), Decimal("0.001"))  # the venue's last price
    await mirror_trade(h, "100.50")


async def test_a_native_stop_limit_rests_at_binance_untriggered_then_fires_on_its_trades(h: LiveHarness) -> None:
    await start(h)
    order = conditional(h, "sell", OrderType.STOP_LIMIT, "0.1", "99.00", stop_price="99.50")
    await h.venue.place(order)
    sent = at_venue(h, order)
    assert (sent["type"], sent["isWorking"], sent["stopPrice"], sent["price"]) == (
        "STOP_LOSS_LIMIT", False, "99.50000000", "99.00000000")
    assert (order.status, order.emulated) == (OrderStatus.UNTRIGGERED, False)
    assert held(h, "BTC") == 10**17 and h.binance.locked["BTC"] == Decimal("0.1")  # held here and there
    await h.trade("99.50", "0.01", "sell")  # the trade at the stop fires it at Binance: it sells into the bids
    assert sent["status"] == "FILLED" and sent["isWorking"] is True
    assert (order.status, order.done_reason, order.filled_size) == (OrderStatus.DONE, DoneReason.FILLED, order.size)
    assert order.triggered_at is not None
    fills = await h.gw.order_fills(order.id)
    assert [(f.price, f.size) for f in fills] == [(h.instrument.parse_price("100.00"), order.size)]
    assert held(h, "BTC") == 0 and h.venue.balances(h.account)["BTC"].balance == 9 * 10**17


async def test_a_native_oco_holds_once_and_a_limit_fill_ends_the_stop_at_binance_and_here(h: LiveHarness) -> None:
    await start(h)
    limit_leg = h.order("sell", "limit", "0.1", "105.00")
    stop_leg = conditional(h, "sell", OrderType.STOP_MARKET, "0.1", stop_price="98.00")
    limit_leg.list_id = stop_leg.list_id = limit_leg.id
    await h.live.place_oco(limit_leg, stop_leg)
    legs = at_venue(h, limit_leg), at_venue(h, stop_leg)
    assert [leg["type"] for leg in legs] == ["LIMIT_MAKER", "STOP_LOSS"]
    assert legs[0]["orderListId"] == legs[1]["orderListId"] != -1
    assert (limit_leg.status, stop_leg.status) == (OrderStatus.OPEN, OrderStatus.UNTRIGGERED)
    assert held(h, "BTC") == 10**17 and h.binance.locked["BTC"] == Decimal("0.1")  # once, not twice
    await h.trade("105.00", "0.04", "buy")  # the limit leg fills in part: Binance ends the stop leg, so do we
    assert legs[1]["status"] == "EXPIRED"
    assert (stop_leg.status, stop_leg.done_reason) == (OrderStatus.DONE, DoneReason.CANCELLED)
    assert (limit_leg.status, limit_leg.filled_size) == (OrderStatus.OPEN, h.instrument.parse_size("0.04"))
    assert held(h, "BTC") == 6 * 10**16 and h.binance.locked["BTC"] == Decimal("0.06")
    await h.venue.cancel(limit_leg)
    assert held(h, "BTC") == 0 and h.binance.locked["BTC"] == 0


async def test_an_emulated_trailing_stop_follows_the_mirror_and_sends_one_market_order(h: LiveHarness) -> None:
    await start(h)
    order = conditional(h, "sell", OrderType.TRAILING_STOP, "0.1", trail_delta=h.instrument.parse_price("2.00"))
    await h.venue.place(order)
    assert (order.status, order.emulated, order.stop_price) == (OrderStatus.UNTRIGGERED, True, h.instrument.parse_price("98.50"))
    assert not any(o["clientOrderId"] == order.client_oid for o in h.binance.orders.values())  # nothing at Binance yet
    assert held(h, "BTC") == 10**17
    await mirror_trade(h, "103.00")  # the best price: its stop follows to 101.00
    await mirror_trade(h, "101.50")
    assert (order.status, order.stop_price) == (OrderStatus.UNTRIGGERED, h.instrument.parse_price("101.00"))
    h.binance.fail("order", 429, 429)  # the venue cannot take the child at first: retried, reported, not dropped
    await mirror_trade(h, "101.00")
    assert order.status is not OrderStatus.UNTRIGGERED and order.triggered_at is not None
    await until(lambda: order.is_done)
    sent = [o for o in h.binance.orders.values() if o["clientOrderId"] == order.client_oid]
    assert [(o["type"], o["status"], o["executedQty"]) for o in sent] == [("MARKET", "FILLED", "0.10000000")]
    assert h.binance.requests.count("POST /api/v3/order") == 3  # two refused (rate limited), then sent once
    assert (order.done_reason, order.filled_size, order.type) == (DoneReason.FILLED, order.size, OrderType.TRAILING_STOP)
    await mirror_trade(h, "90.00")  # it never fires again
    assert len([o for o in h.binance.orders.values() if o["clientOrderId"] == order.client_oid]) == 1
    assert held(h, "BTC") == 0


async def test_stops_resting_across_a_restart_are_followed_again_and_fire(h: LiveHarness) -> None:
    await start(h)
    native = conditional(h, "sell", OrderType.STOP_LIMIT, "0.1", "99.00", stop_price="99.50")
    emulated = conditional(h, "sell", OrderType.TRAILING_STOP, "0.2", trail_delta=h.instrument.parse_price("1.00"))
    await h.venue.place(native)
    await h.venue.place(emulated)
    assert held(h, "BTC") == 3 * 10**17
    await h.restart()
    await mirror_trade(h, "100.50")
    restored = {o.id: o for o in h.venue.open_orders()}
    assert {k: (o.status, o.emulated) for k, o in restored.items()} == {
        native.id: (OrderStatus.UNTRIGGERED, False), emulated.id: (OrderStatus.UNTRIGGERED, True)}
    assert held(h, "BTC") == 3 * 10**17 and at_venue(h, native)["isWorking"] is False
    await h.trade("99.50", "0.01", "sell")  # Binance fires the native stop
    assert restored[native.id].status is OrderStatus.DONE and restored[native.id].filled_size == native.size
    await mirror_trade(h, "99.50")  # and the mirror fires the emulated one (99.50 <= 100.50 - 1.00)
    await until(lambda: restored[emulated.id].is_done)
    assert at_venue(h, restored[emulated.id])["type"] == "MARKET"
    assert held(h, "BTC") == 0


async def test_an_oco_binance_cannot_list_rests_its_limit_there_and_fires_its_stop_here(h: LiveHarness) -> None:
    """A stop leg on the touch (Binance fires on trades only): the limit leg at Binance, the stop leg emulated, held once."""
    await start(h)
    limit_leg = h.order("sell", "limit", "0.1", "105.00")
    stop_leg = conditional(h, "sell", OrderType.STOP_MARKET, "0.1", stop_price="99.50", trigger=TriggerSource.BID_ASK)
    limit_leg.list_id = stop_leg.list_id = limit_leg.id
    await h.live.place_oco(limit_leg, stop_leg)
    assert (limit_leg.status, stop_leg.status, stop_leg.emulated) == (OrderStatus.OPEN, OrderStatus.UNTRIGGERED, True)
    assert at_venue(h, limit_leg)["type"] == "LIMIT" and held(h, "BTC") == 10**17
    assert not any(o["clientOrderId"] == stop_leg.client_oid for o in h.binance.orders.values())
    await h.set_book([("99.50", "1"), ("99.00", "2")], ASKS)  # the bid falls to the stop: it fires on the mirror
    await until(lambda: stop_leg.is_done)
    assert at_venue(h, limit_leg)["status"] == "CANCELED"  # the limit leg went first, at Binance
    assert (limit_leg.status, limit_leg.done_reason) == (OrderStatus.DONE, DoneReason.CANCELLED)
    sent = at_venue(h, stop_leg)
    assert (sent["type"], sent["status"], stop_leg.filled_size) == ("MARKET", "FILLED", stop_leg.size)
    assert held(h, "BTC") == 0 and h.binance.locked["BTC"] == 0


async def test_a_stop_past_its_level_is_refused_unless_allowed_then_it_fires_at_once(h: LiveHarness) -> None:
    await start(h)
    late = conditional(h, "sell", OrderType.STOP_MARKET, "0.1", stop_price="100.60")  # the last trade is 100.50: past it
    with pytest.raises(InvalidInput) as refused:
        await h.venue.place(late)
    assert refused.value.code == "stop_would_trigger"
    assert late.status is OrderStatus.PENDING and held(h, "BTC") == 0 and not h.binance.orders  # nothing held or sent
    allowed = conditional(h, "sell", OrderType.STOP_MARKET, "0.1", stop_price="100.60")
    await h.venue.place(allowed, allow_immediate=True)
    await until(lambda: allowed.is_done)
    assert (allowed.emulated, allowed.done_reason, allowed.filled_size) == (True, DoneReason.FILLED, allowed.size)
    assert [o["type"] for o in h.binance.orders.values() if o["clientOrderId"] == allowed.client_oid] == ["MARKET"]


async def test_a_bracket_s_children_go_to_binance_as_an_order_list_sized_to_what_the_fill_left(h: LiveHarness) -> None:
    await start(h)
    parent = h.order("buy", "limit", "0.1", "101.00")
    parent.bracket = encode_bracket(Bracket(
        take_profit_type=OrderType.LIMIT, take_profit_price=h.instrument.parse_price("105.00"),
        stop_loss_type=OrderType.STOP_MARKET, stop_loss_price=h.instrument.parse_price("98.00")))
    await h.venue.place(parent)  # it takes the ask at 101.00 at once
    await h.settled()
    assert (parent.status, parent.filled_size, parent.fee_currency) == (OrderStatus.DONE, parent.size, "BTC")
    take, stop = sorted((o for o in h.venue.open_orders() if o.parent_id == parent.id), key=lambda o: o.id)
    left = h.instrument.parse_size("0.0999")  # 0.1 less Binance's 0.1% fee, kept in BTC
    assert (take.size, stop.size, take.list_id, stop.list_id) == (left, left, take.id, take.id)
    legs = at_venue(h, take), at_venue(h, stop)
    assert [(o["type"], o["origQty"]) for o in legs] == [("LIMIT_MAKER", "0.09990000"), ("STOP_LOSS", "0.09990000")]
    assert legs[0]["orderListId"] == legs[1]["orderListId"] != -1
    assert (take.status, stop.status, stop.emulated) == (OrderStatus.OPEN, OrderStatus.UNTRIGGERED, False)
    await h.trade("98.00", "0.01", "sell")  # Binance fires the stop-loss and ends the take-profit
    assert (stop.status, stop.filled_size, take.status) == (OrderStatus.DONE, left, OrderStatus.DONE)
    assert held(h, "BTC") == 0 and h.binance.locked["BTC"] == 0


async def test_a_bracket_with_a_take_profit_trigger_arms_both_children_here(h: LiveHarness) -> None:
    await start(h)
    parent = h.order("buy", "limit", "0.1", "101.00")
    parent.bracket = encode_bracket(Bracket(
        take_profit_type=OrderType.TAKE_PROFIT_MARKET, take_profit_price=h.instrument.parse_price("104.00"),
        stop_loss_type=OrderType.STOP_MARKET, stop_loss_price=h.instrument.parse_price("98.00")))
    await h.venue.place(parent)
    await h.settled()
    take, stop = sorted((o for o in h.venue.open_orders() if o.parent_id == parent.id), key=lambda o: o.id)
    assert {(o.status, o.emulated) for o in (take, stop)} == {(OrderStatus.UNTRIGGERED, True)}
    assert not any(o["clientOrderId"] in (take.client_oid, stop.client_oid) for o in h.binance.orders.values())
    await h.set_book([("104.00", "1")], [("105.00", "1")])
    await h.trade("104.00", "0.01", "buy")  # the take-profit fires on the mirror: a market sell; the stop-loss goes
    assert (take.status, take.filled_size, stop.status, stop.done_reason) == (
        OrderStatus.DONE, take.size, OrderStatus.DONE, DoneReason.CANCELLED)
    assert at_venue(h, take)["type"] == "MARKET" and held(h, "BTC") == 0


async def test_a_bracket_s_trailing_exit_is_emulated_from_the_fill_and_ends_its_take_profit_at_binance(h: LiveHarness) -> None:
    """A limit take-profit rests at Binance, the trailing stop-loss follows the mirror from the parent's fill (no venue
    order list takes a trailing leg); it fires once, a market sell, and the take-profit is cancelled there."""
    await start(h)
    parent = h.order("buy", "limit", "0.1", "101.00")
    parent.bracket = encode_bracket(Bracket(take_profit_type=OrderType.LIMIT, take_profit_price=h.instrument.parse_price("105.00"),
                                            stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_ppm=20_000))
    await h.venue.place(parent)  # it takes the ask at 101.00 at once
    await h.settled()
    take, stop = sorted((o for o in h.venue.open_orders() if o.parent_id == parent.id), key=lambda o: o.id)
    assert (stop.type, stop.emulated, stop.status, stop.list_id) == (OrderType.TRAILING_STOP, True, OrderStatus.UNTRIGGERED, take.id)
    assert (stop.trail_best, stop.stop_price) == (h.instrument.parse_price("101.00"), h.instrument.parse_price("98.98"))
    assert (take.status, take.emulated, at_venue(h, take)["orderListId"]) == (OrderStatus.OPEN, False, -1)
    assert not any(o["clientOrderId"] == stop.client_oid for o in h.binance.orders.values())
    assert held(h, "BTC") == h.instrument.base_atto(take.size)  # once for both
    await mirror_trade(h, "103.00")  # the best price: the level follows to 100.94
    await mirror_trade(h, "102.00")
    assert (stop.status, stop.stop_price) == (OrderStatus.UNTRIGGERED, h.instrument.parse_price("100.94"))
    await mirror_trade(h, "100.90")  # through the level: it fires, a market sell at Binance
    await until(lambda: stop.is_done and take.is_done)
    assert (stop.done_reason, stop.filled_size, take.done_reason) == (DoneReason.FILLED, stop.size, DoneReason.CANCELLED)
    assert [o["type"] for o in h.binance.orders.values() if o["clientOrderId"] == stop.client_oid] == ["MARKET"]
    assert at_venue(h, take)["status"] == "CANCELED"
    await mirror_trade(h, "90.00")  # it never fires again
    assert len([o for o in h.binance.orders.values() if o["clientOrderId"] == stop.client_oid]) == 1
    assert held(h, "BTC") == 0 and h.binance.locked["BTC"] == 0


async def test_a_lone_trailing_exit_is_emulated_though_binance_trails_in_basis_points(h: LiveHarness) -> None:
    """2% is 200 basis points, which Binance could trail itself, but from where it is placed: the child follows from the
    parent's fill here, so it is emulated."""
    await start(h)
    parent = h.order("buy", "limit", "0.1", "102.00")
    parent.bracket = encode_bracket(Bracket(stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_ppm=20_000))
    await h.venue.place(parent)  # it takes the ask at 101.00 at once
    await h.settled()
    (stop,) = (o for o in h.venue.open_orders() if o.parent_id == parent.id)
    assert (stop.list_id, stop.emulated, stop.status, stop.stop_price) == (
        0, True, OrderStatus.UNTRIGGERED, h.instrument.parse_price("98.98"))
    assert not any(o["clientOrderId"] == stop.client_oid for o in h.binance.orders.values())
    await mirror_trade(h, "98.90")
    await until(lambda: stop.is_done)
    assert (stop.done_reason, stop.filled_size) == (DoneReason.FILLED, stop.size) and held(h, "BTC") == 0


async def test_a_lone_percent_stop_loss_goes_to_binance_at_its_level_from_the_fill(h: LiveHarness) -> None:
    """A bracket of only a stop-loss, 2% under the parent's fill: one native stop, no order list, its level from the fill."""
    await start(h)
    parent = h.order("buy", "limit", "0.1", "102.00")
    parent.bracket = encode_bracket(Bracket(stop_loss_type=OrderType.STOP_MARKET, stop_loss_ppm=20_000))
    await h.venue.place(parent)  # it takes the ask at 101.00 at once: its fill, not its limit, sets the level
    await h.settled()
    assert (parent.status, parent.filled_size) == (OrderStatus.DONE, parent.size)
    (stop,) = (o for o in h.venue.open_orders() if o.parent_id == parent.id)
    assert stop.stop_price == h.instrument.parse_price("98.98")  # 101.00 * 0.98
    assert (stop.list_id, stop.emulated, stop.status) == (0, False, OrderStatus.UNTRIGGERED)
    sent = at_venue(h, stop)
    assert (sent["type"], sent["stopPrice"], sent["origQty"], sent["orderListId"]) == (
        "STOP_LOSS", "98.98000000", "0.09990000", -1)
    await h.trade("98.90", "0.01", "sell")  # Binance fires it
    assert (stop.status, stop.filled_size) == (OrderStatus.DONE, stop.size) and held(h, "BTC") == 0


async def test_a_lone_take_profit_on_the_touch_is_armed_here_and_fires_on_the_mirror(h: LiveHarness) -> None:
    """Binance triggers on trades only: a take-profit on the bid is emulated, alone, 3% over the parent's fill."""
    await start(h)
    parent = h.order("buy", "limit", "0.1", "101.00")
    parent.bracket = encode_bracket(Bracket(take_profit_type=OrderType.TAKE_PROFIT_MARKET, take_profit_ppm=30_000,
                                            trigger=TriggerSource.BID_ASK))
    await h.venue.place(parent)
    await h.settled()
    (take,) = (o for o in h.venue.open_orders() if o.parent_id == parent.id)
    assert take.stop_price == h.instrument.parse_price("104.03")  # 101.00 * 1.03
    assert (take.list_id, take.status, take.emulated) == (0, OrderStatus.UNTRIGGERED, True)
    assert held(h, "BTC") == h.instrument.base_atto(take.size)
    assert not any(o["clientOrderId"] == take.client_oid for o in h.binance.orders.values())
    await h.set_book([("104.03", "1")], [("105.00", "1")])  # the bid reaches it: a market sell at Binance
    await until(lambda: take.is_done)
    assert (take.status, take.filled_size) == (OrderStatus.DONE, take.size) and held(h, "BTC") == 0
    assert at_venue(h, take)["type"] == "MARKET"


async def test_a_fired_order_the_venue_never_got_is_sent_once_after_a_restart(h: LiveHarness) -> None:
    """Written triggered before its child is sent: a restart finds no order under its client id at Binance, and sends it."""
    await start(h)
    order = conditional(h, "sell", OrderType.STOP_MARKET, "0.1", stop_price="99.50", trigger=TriggerSource.BID_ASK)
    await h.venue.place(order)
    assert order.emulated
    h.binance.fail("order", *[429] * 100)  # Binance takes no order for now
    await h.set_book([("99.50", "1")], ASKS)  # the bid reaches the stop: it fires on the mirror
    assert order.status is OrderStatus.TRIGGERED
    await until(lambda: h.binance.requests.count("POST /api/v3/order") >= 2)  # tried, refused, retried
    await h.restart()
    h.binance.faults.clear()
    restored = next(o for o in h.venue.open_orders() if o.id == order.id)
    assert (restored.status, restored.triggered_at) == (OrderStatus.TRIGGERED, order.triggered_at)  # fired once, kept
    await h.live.reconcile()  # no order under its client id at Binance: its child is sent now
    await h.settled()
    assert restored.status is OrderStatus.DONE and restored.filled_size == order.size
    assert [o["type"] for o in h.binance.orders.values() if o["clientOrderId"] == order.client_oid] == ["MARKET"]
    await h.trade("99.00", "0.01", "sell")
    assert len([o for o in h.binance.orders.values() if o["clientOrderId"] == order.client_oid]) == 1


async def test_a_native_gtd_stop_is_cancelled_at_binance_when_its_date_passes(h: LiveHarness) -> None:
    """Binance spot has no GTD: the stop rests GTC there and coinwire cancels it at expire_at."""
    await start(h)
    order = conditional(h, "sell", OrderType.STOP_LIMIT, "0.1", "99.00", stop_price="99.50",
                        time_in_force=TimeInForce.GTD, expire_at=h.t + 60 * 10**9)
    await h.venue.place(order)
    sent = at_venue(h, order)
    assert (sent["type"], sent["timeInForce"], order.status) == ("STOP_LOSS_LIMIT", "GTC", OrderStatus.UNTRIGGERED)
    await h.advance(30)
    assert order.status is OrderStatus.UNTRIGGERED
    await h.advance(31)
    assert (order.status, order.done_reason, sent["status"]) == (OrderStatus.DONE, DoneReason.EXPIRED, "CANCELED")
    assert held(h, "BTC") == 0 and h.binance.locked["BTC"] == 0
