"""Conditional orders through the gateway: make_order and make_oco end to end on a paper venue, what is stored and notified.

The paper venue's harness (tests/venues/paper_harness.py) is a real gateway over SQLite with a
book and trades the test gives its mirror; the bus is the gateway's own, read back as a client's
notifications would be.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coinwire.core.conditional import Bracket, encode_bracket
from coinwire.core.errors import CoinwireError
from coinwire.core.orders import DoneReason, OrderRequest, OrderType, Side, TimeInForce, TriggerSource
from coinwire.messages import BracketLegView, BracketView, Message, OrderUpdate, OrderView
from tests.venues.paper_harness import EXCHANGE, INSTRUMENT, PaperHarness

BIDS = [("100.00", "1"), ("99.00", "2")]
ASKS = [("101.00", "1"), ("102.00", "2")]


class Followed(PaperHarness):
    """The harness, with every order notification the gateway publishes."""

    updates: list[OrderView]

    async def open(self) -> None:
        await super().open()
        self.updates = []

        def keep(subject: str, message: Message) -> None:
            assert isinstance(message, OrderUpdate)
            self.updates.append(message.order)

        await self.bus.subscribe("order.>", keep, types=frozenset({OrderUpdate}), inline=True)

    def of(self, order_id: int) -> list[OrderView]:
        return [v for v in self.updates if v.id == order_id]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Followed]:
    harness = Followed(tmp_path)
    await harness.open()
    await harness.fund("USDT", "1000")
    await harness.fund("BTC", "1")
    await harness.set_book(BIDS, ASKS)
    await harness.trade("100.00", "0.1", "buy")
    try:
        yield harness
    finally:
        await harness.close()


def request(side: str, type: OrderType, size: str, *, limit: str = "0", client_oid: str, **conditional: object) -> OrderRequest:
    return OrderRequest(exchange=EXCHANGE, instrument=INSTRUMENT, side=Side(side), type=type, size=INSTRUMENT.parse_size(size),
                        limit=INSTRUMENT.parse_price(limit) if limit != "0" else 0, cancel_after=0, client_oid=client_oid,
                        wallet_set_id=None, run_id=None, **conditional)  # type: ignore[arg-type]


def p(text: str) -> int:
    return INSTRUMENT.parse_price(text)


async def test_a_stop_market_is_answered_untriggered_then_fires_once_as_one_notification(h: Followed) -> None:
    view = await h.gw.make_order(request("sell", OrderType.STOP_MARKET, "0.5", stop_price=p("99.50"), client_oid="stop-1"))
    assert (view.status, view.type, view.stop_price, view.trigger, view.triggered_at) == (
        "untriggered", "stop-market", "99.5", "last", None)
    assert h.venue.balances(h.account)["BTC"].hold == 5 * 10**17
    stored = await h.gw.store.get_order(view.id)
    assert stored is not None and stored.status.value == "untriggered" and stored.stop_price == p("99.50")

    await h.trade("99.50", "0.1", "sell")
    await h.trade("99.00", "0.1", "sell")

    after = h.of(view.id)
    assert [v.status for v in after] == ["untriggered", "done"]  # the fire, the fill and the settlement: one update
    assert after[-1].triggered_at is not None and after[-1].filled_size == "0.5" and after[-1].type == "stop-market"
    assert h.venue.balances(h.account)["BTC"].hold == 0
    h.ledger.check()


async def test_a_stop_the_market_has_passed_is_refused_and_nothing_is_written_unless_allowed(h: Followed) -> None:
    before = (h.venue.balances(h.account), h.ledger.holds(), len(h.updates))
    with pytest.raises(CoinwireError) as refusal:
        await h.gw.make_order(request("sell", OrderType.STOP_MARKET, "0.5", stop_price=p("100.50"), client_oid="passed"))
    assert refusal.value.code == "stop_would_trigger"
    assert (h.venue.balances(h.account), h.ledger.holds(), len(h.updates)) == before
    assert await h.gw.store.get_order_by_client_oid("passed", None) is None

    view = await h.gw.make_order(request("sell", OrderType.STOP_MARKET, "0.5", stop_price=p("100.50"), client_oid="passed",
                                         allow_immediate=True))
    assert (view.status, view.filled_size) == ("done", "0.5") and view.triggered_at is not None
    h.ledger.check()


async def test_bid_ask_triggers_follow_the_book_and_gtd_expires_an_untriggered_order(h: Followed) -> None:
    touch = await h.gw.make_order(request("sell", OrderType.STOP_LIMIT, "0.2", limit="99.00", stop_price=p("99.50"),
                                          trigger=TriggerSource.BID_ASK, client_oid="touch"))
    dated = await h.gw.make_order(request("buy", OrderType.STOP_LIMIT, "0.2", limit="103.00", stop_price=p("103.00"),
                                          time_in_force=TimeInForce.GTD, expire_at=h.t + 5_000_000_000, client_oid="gtd"))
    await h.trade("99.40", "0.1", "sell")  # a trade does not fire a bid_ask order
    assert h.of(touch.id)[-1].status == "untriggered"
    await h.set_book([("99.50", "1"), ("99.00", "2")], ASKS)  # the bid falls to its level
    assert h.of(touch.id)[-1].status == "done" and h.of(touch.id)[-1].filled_size == "0.2"

    await h.advance(6)
    assert (h.of(dated.id)[-1].status, h.of(dated.id)[-1].done_reason) == ("done", "expired")
    assert h.venue.balances(h.account)["USDT"].hold == 0 and h.ledger.holds() == {}
    h.ledger.check()


async def test_a_trailing_stop_records_its_level_only_when_it_moves_and_keeps_it_across_a_restart(h: Followed) -> None:
    view = await h.gw.make_order(request("sell", OrderType.TRAILING_STOP, "0.5", trail_delta=p("1.00"), client_oid="trail"))
    assert view.stop_price == "99" and view.trailing_delta == "1"
    recorded = len(h.recorded)
    await h.trade("100.50", "0.1", "buy")
    await h.trade("100.20", "0.1", "sell")  # moves nothing: nothing written
    await h.trade("100.40", "0.1", "buy")
    await h.trade("100.80", "0.1", "buy")
    assert [v.stop_price for v in h.of(view.id)] == ["99", "99.5", "99.8"]
    assert len([e for e in h.recorded[recorded:] if any(o.id == view.id for o in e.orders)]) == 2

    await h.restart()

    stored = await h.gw.store.get_order(view.id)
    assert stored is not None and (stored.stop_price, stored.trail_best) == (p("99.80"), p("100.80"))
    await h.trade("101.00", "0.1", "buy")
    restored = h.gw.orders[view.id]
    assert restored.stop_price == p("100.00")  # it goes on following from its best, never back
    await h.trade("100.00", "0.1", "sell")
    assert restored.is_done and restored.filled_size == INSTRUMENT.parse_size("0.5")
    h.ledger.check()


async def test_a_trailing_buys_hold_shrinks_as_its_level_falls_and_it_buys_within_it(h: Followed) -> None:
    view = await h.gw.make_order(request("buy", OrderType.TRAILING_STOP, "0.5", trail_delta=p("2.00"), client_oid="trail-buy"))
    assert view.stop_price == "102"
    first = h.ledger.hold_of(view.id)
    await h.trade("99.00", "0.1", "sell")
    assert h.of(view.id)[-1].stop_price == "101" and 0 < h.ledger.hold_of(view.id) < first
    await h.trade("101.00", "0.1", "buy")
    assert h.of(view.id)[-1].status == "done" and h.of(view.id)[-1].filled_size == "0.5"
    assert h.ledger.holds() == {}
    h.ledger.check()


async def test_make_oco_places_both_legs_at_once_and_cancel_of_either_cancels_the_list(h: Followed) -> None:
    legs = await h.gw.make_oco(
        request("sell", OrderType.LIMIT, "0.5", limit="102.50", client_oid="oco:limit"),
        request("sell", OrderType.STOP_LIMIT, "0.5", limit="98.50", stop_price=p("99.00"), client_oid="oco:stop"))
    limit_view, stop_view = legs
    assert (limit_view.type, limit_view.status, stop_view.type, stop_view.status) == ("limit", "open", "stop-limit", "untriggered")
    assert limit_view.oco_id == stop_view.oco_id == limit_view.id
    assert h.venue.balances(h.account)["BTC"].hold == 5 * 10**17  # one hold for the pair
    again = await h.gw.make_oco(
        request("sell", OrderType.LIMIT, "0.5", limit="102.50", client_oid="oco:limit"),
        request("sell", OrderType.STOP_LIMIT, "0.5", limit="98.50", stop_price=p("99.00"), client_oid="oco:stop"))
    assert [v.id for v in again] == [limit_view.id, stop_view.id]  # a repeat answers the list it made

    cancelled = await h.gw.cancel_order(order_id=stop_view.id, client_oid=None, exchange=None)
    assert (cancelled.status, cancelled.done_reason) == ("done", "cancelled")
    assert (h.of(limit_view.id)[-1].status, h.of(limit_view.id)[-1].done_reason) == ("done", "cancelled")
    assert h.ledger.holds() == {} and not list(h.venue.open_orders())
    h.ledger.check()


async def test_make_oco_refuses_legs_that_disagree_or_sit_on_the_wrong_side(h: Followed) -> None:
    before = (h.venue.balances(h.account), h.ledger.holds())
    for limit_leg, stop_leg, code in (
        (request("sell", OrderType.LIMIT, "0.5", limit="102.50", client_oid="a1"),
         request("sell", OrderType.STOP_MARKET, "0.4", stop_price=p("99.00"), client_oid="a2"), "oco_legs_disagree"),
        (request("sell", OrderType.LIMIT, "0.5", limit="99.50", client_oid="b1"),
         request("sell", OrderType.STOP_MARKET, "0.5", stop_price=p("99.00"), client_oid="b2"), "oco_prices_wrong_side"),
        (request("sell", OrderType.LIMIT, "0.5", limit="102.50", client_oid="c1"),
         request("sell", OrderType.TAKE_PROFIT_MARKET, "0.5", stop_price=p("101.00"), client_oid="c2"), "oco_legs_disagree"),
    ):
        with pytest.raises(CoinwireError) as refusal:
            await h.gw.make_oco(limit_leg, stop_leg)
        assert refusal.value.code == code
    assert (h.venue.balances(h.account), h.ledger.holds()) == before and not list(h.venue.open_orders())


async def test_a_bracket_market_parent_opens_its_children_in_its_own_step_and_they_are_the_gateways_orders(h: Followed) -> None:
    bracket = encode_bracket(Bracket(take_profit_type=OrderType.TAKE_PROFIT_MARKET, take_profit_price=p("104.00"),
                                     stop_loss_type=OrderType.STOP_MARKET, stop_loss_price=p("97.00")))
    parent = await h.gw.make_order(request("buy", OrderType.MARKET, "0.4", client_oid="entry", bracket=bracket))
    assert (parent.status, parent.filled_size) == ("done", "0.4")
    assert parent.bracket == BracketView(BracketLegView("take-profit-market", "104", None), BracketLegView("stop-market", "97"))
    children = sorted((v for v in h.updates if v.parent_id == parent.id), key=lambda v: v.id)
    assert [(v.client_order_id, v.side, v.size, v.status, v.stop_price) for v in children] == [
        ("entry:tp", "sell", "0.4", "untriggered", "104"), ("entry:sl", "sell", "0.4", "untriggered", "97")]
    parent_seq = h.of(parent.id)[-1].seq
    assert [v.seq for v in children] == [parent_seq + 1, parent_seq + 2]  # notified with the parent's step
    take, stop = (h.gw.orders[v.id] for v in children)  # remembered: cancel_order finds them
    assert h.venue.balances(h.account)["BTC"].hold == INSTRUMENT.base_atto(INSTRUMENT.parse_size("0.4"))  # held once

    await h.gw.cancel_order(order_id=take.id, client_oid=None, exchange=None)
    assert take.is_done and stop.is_done and h.ledger.holds() == {}
    h.ledger.check()


async def test_a_bracket_with_a_trailing_exit_follows_from_the_fill_fires_once_and_cancels_its_take_profit(h: Followed) -> None:
    bracket = encode_bracket(Bracket(take_profit_type=OrderType.TAKE_PROFIT_MARKET, take_profit_price=p("104.00"),
                                     stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_ppm=20_000))
    parent = await h.gw.make_order(request("buy", OrderType.MARKET, "0.4", client_oid="trail", bracket=bracket))
    assert (parent.status, parent.filled_size) == ("done", "0.4")  # at 101.00
    assert parent.bracket == BracketView(BracketLegView("take-profit-market", "104", None),
                                         BracketLegView("trailing-stop", trailing_delta="2%"))
    take_view, stop_view = sorted((v for v in h.updates if v.parent_id == parent.id), key=lambda v: v.id)
    assert (stop_view.client_order_id, stop_view.type, stop_view.status, stop_view.stop_price) == (
        "trail:sl", "trailing-stop", "untriggered", "98.98")  # 2% below the fill, at once
    assert stop_view.oco_id == take_view.oco_id is not None
    take, stop = h.gw.orders[take_view.id], h.gw.orders[stop_view.id]
    assert h.venue.balances(h.account)["BTC"].hold == INSTRUMENT.base_atto(INSTRUMENT.parse_size("0.4"))  # held once

    await h.trade("103.00", "0.1", "buy")  # the price rises: the level follows, the take-profit (104) waits
    assert stop.stop_price == p("100.94") and not stop.is_done and not take.is_done
    await h.trade("102.00", "0.1", "sell")  # falls, not to the level: it stays
    assert stop.stop_price == p("100.94") and not stop.is_done
    await h.trade("100.90", "0.1", "sell")  # down through the level: it fires, sells into the bid
    await h.trade("99.00", "0.1", "sell")
    assert (stop.filled_size, stop.done_reason, take.done_reason) == (
        INSTRUMENT.parse_size("0.4"), DoneReason.FILLED, DoneReason.CANCELLED)
    assert [v.status for v in h.of(stop.id)].count("done") == 1 and h.of(stop.id)[-1].triggered_at is not None
    assert h.of(take.id)[-1].status == "done" and h.of(take.id)[-1].done_reason == "cancelled"
    assert h.ledger.holds() == {}
    h.ledger.check()


async def test_a_lone_percent_take_profit_is_one_limit_order_at_its_level_from_the_average_fill(h: Followed) -> None:
    bracket = encode_bracket(Bracket(take_profit_type=OrderType.LIMIT, take_profit_ppm=20_000))
    parent = await h.gw.make_order(request("buy", OrderType.MARKET, "1.5", client_oid="lone", bracket=bracket))
    assert (parent.status, parent.filled_size) == ("done", "1.5")  # 1 at 101.00, 0.5 at 102.00: 101.333.. on average
    assert parent.bracket == BracketView(BracketLegView("limit", None, None, "2"), None)
    (child,) = (v for v in h.updates if v.parent_id == parent.id)
    assert (child.client_order_id, child.type, child.side, child.size, child.limit, child.oco_id) == (
        "lone:tp", "limit", "sell", "1.5", "103.36", None)  # 101.33 * 1.02 = 103.3566, on the tick half-up
    assert h.venue.balances(h.account)["BTC"].hold == INSTRUMENT.base_atto(INSTRUMENT.parse_size("1.5"))
    await h.trade("103.36", "2", "buy")  # a trade through its price fills it
    assert h.of(child.id)[-1].status == "done" and h.ledger.holds() == {}
    h.ledger.check()


async def test_a_bracket_whose_stop_is_above_a_longs_entry_is_refused(h: Followed) -> None:
    bracket = encode_bracket(Bracket(take_profit_type=OrderType.LIMIT, take_profit_price=p("104.00"),
                                     stop_loss_type=OrderType.STOP_MARKET, stop_loss_price=p("100.60")))
    with pytest.raises(CoinwireError) as refusal:
        await h.gw.make_order(request("buy", OrderType.LIMIT, "0.4", limit="100.50", client_oid="bad", bracket=bracket))
    assert refusal.value.code == "bracket_stop_wrong_side"
    assert h.ledger.holds() == {}


async def test_deactivating_a_wallet_set_ends_its_oco_once(h: Followed) -> None:
    wallet_set = await h.gw.create_wallet_set(run_id=None, description="oco", allocations=[(EXCHANGE, "BTC", 5 * 10**17)])
    limit_leg = request("sell", OrderType.LIMIT, "0.5", limit="102.50", client_oid="set:limit")
    stop_leg = request("sell", OrderType.STOP_MARKET, "0.5", stop_price=p("99.00"), client_oid="set:stop")
    limit_leg.wallet_set_id = stop_leg.wallet_set_id = wallet_set.id
    legs = await h.gw.make_oco(limit_leg, stop_leg)
    done = await h.gw.deactivate_wallet_set(wallet_set.id)
    assert not done.active and [h.of(v.id)[-1].status for v in legs] == ["done", "done"]
    assert h.ledger.holds() == {}
    h.ledger.check()


async def test_an_oco_whose_limit_leg_filled_partly_before_a_restart_is_a_list_no_more(h: Followed) -> None:
    limit_view, stop_view = await h.gw.make_oco(
        request("sell", OrderType.LIMIT, "0.5", limit="102.50", client_oid="part:limit"),
        request("sell", OrderType.STOP_MARKET, "0.5", stop_price=p("99.00"), client_oid="part:stop"))
    await h.trade("102.50", "0.2", "buy")
    assert h.of(stop_view.id)[-1].status == "done" and h.venue.balances(h.account)["BTC"].hold == 3 * 10**17

    await h.restart()

    assert [o.id for o in h.venue.open_orders()] == [limit_view.id]
    await h.trade("102.50", "0.1", "buy")  # fills it further: nothing to resolve
    assert h.venue.balances(h.account)["BTC"].hold == 2 * 10**17
    cancelled = await h.gw.cancel_order(order_id=limit_view.id, client_oid=None, exchange=None)
    assert (cancelled.status, cancelled.filled_size) == ("done", "0.3")
    assert h.ledger.holds() == {}
    h.ledger.check()


async def test_bracket_children_the_account_cannot_hold_are_logged_and_the_parents_fill_stands(h: Followed) -> None:
    await h.fund("USDT", "-1000")  # a short's buy-back needs quote it does not have
    bracket = encode_bracket(Bracket(take_profit_type=OrderType.LIMIT, take_profit_price=p("96.00"),
                                     stop_loss_type=OrderType.STOP_MARKET, stop_loss_price=p("104.00")))
    parent = await h.gw.make_order(request("sell", OrderType.MARKET, "0.5", client_oid="short", bracket=bracket))
    assert (parent.status, parent.filled_size) == ("done", "0.5")
    assert [v for v in h.updates if v.parent_id == parent.id] == [] and not list(h.venue.open_orders())
    logged = [m for m in h.gw.recent_logs.messages if m.level == "warning" and "short" in m.message]
    assert len(logged) == 1 and "insufficient_funds" in logged[0].message
    assert h.ledger.holds() == {}
    h.ledger.check()


async def test_a_fired_stop_limit_resting_on_the_book_is_restored_to_it(h: Followed) -> None:
    view = await h.gw.make_order(request("sell", OrderType.STOP_LIMIT, "0.4", limit="100.50", stop_price=p("99.50"),
                                         client_oid="rests"))
    await h.trade("99.50", "0.1", "sell")
    assert (h.of(view.id)[-1].status, h.of(view.id)[-1].filled_size) == ("open", "0")
    held = h.venue.balances(h.account)["BTC"]

    await h.restart()

    restored = h.gw.orders[view.id]
    assert restored.status.value == "open" and restored.triggered_at is not None
    assert h.venue.balances(h.account)["BTC"] == held
    await h.trade("100.50", "1", "buy")  # on the book again: it fills as a maker at its limit
    assert restored.is_done and restored.filled_size == INSTRUMENT.parse_size("0.4")
    assert h.ledger.holds() == {}
    h.ledger.check()
