"""core.conditional and the conditional paths of core.funds / core.execution: what fires when, refusals, holds, OCO, brackets."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.conditional import (
    PPM,
    Bracket,
    TriggerBook,
    bracket_children,
    check_bracket,
    check_conditional,
    check_oco,
    decode_bracket,
    encode_bracket,
    fill_price,
    fires,
    follow,
    level,
    trigger_price,
)
from coinwire.core.errors import InsufficientFunds, InvalidInput
from coinwire.core.execution import accept_conditional, fire, place_order, resolve_oco, settle_fills
from coinwire.core.funds import CONDITIONAL_MARKET_MARGIN_PPM, conditional_market_level, max_buy_cost, oco_holds, required_hold
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO
from coinwire.core.orders import DoneReason, InvalidTransition, Order, OrderStatus, OrderType, Side, TimeInForce, TriggerSource
from tests.core.stored_ledger import StoredLedger

INST = Instrument(exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=6,
                  tick=10, step=10, maker_fee=100_000, taker_fee=150_000)
SM, SL, TPM, TPL, TR = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_MARKET, OrderType.TAKE_PROFIT_LIMIT,
                        OrderType.TRAILING_STOP)
BUY, SELL = Side.BUY, Side.SELL
LAST, MARK, BID_ASK = TriggerSource.LAST, TriggerSource.MARK, TriggerSource.BID_ASK


def _order(oid: int = 1, *, side: Side = SELL, type: OrderType = SM, size: int = 1000, **fields: object) -> Order:
    return Order(id=oid, client_oid=f"c{oid}", exchange="paper", symbol="BTC/USDT", side=side, type=type, size=size,
                 **fields)  # type: ignore[arg-type]


def _untriggered(oid: int = 1, **fields: object) -> Order:
    order = _order(oid, **fields)  # type: ignore[arg-type]
    order.move(OrderStatus.UNTRIGGERED, 0)
    return order


def _ledger(base: int = 0, quote: int = 0) -> StoredLedger:
    ledger = StoredLedger({"paper": {"BTC", "USDT"}})
    if base:
        ledger.add_virtual_tx("paper", "BTC", base, 0)
    if quote:
        ledger.add_virtual_tx("paper", "USDT", quote, 0)
    return ledger


def _engine(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> MatchingEngine:
    engine = MatchingEngine(INST, IdSequence())
    engine.on_snapshot(bids, asks, 0)
    return engine


# --- what fires when ---------------------------------------------------------------------------

L = 10_000
# (type, side) -> fires (just below, at, just above) the level
FIRING = {
    (SM, SELL): (True, True, False), (SL, SELL): (True, True, False),
    (SM, BUY): (False, True, True), (SL, BUY): (False, True, True),
    (TPM, SELL): (False, True, True), (TPL, SELL): (False, True, True),
    (TPM, BUY): (True, True, False), (TPL, BUY): (True, True, False),
}


def _see(book: TriggerBook, source: TriggerSource, side: Side, price: int, ts: int) -> list[Order]:
    """Show the book one price of `source`, as the feed a venue follows would (BID_ASK: the side's own touch)."""
    if source is BID_ASK:
        return book.on_touch(price, None, ts) if side is SELL else book.on_touch(None, price, ts)
    return book.on_price(source, price, ts)


@pytest.mark.parametrize("source", [LAST, MARK, BID_ASK])
@pytest.mark.parametrize(("kind", "side"), list(FIRING))
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_fires_at_below_and_above_the_level_per_type_side_and_source(kind: OrderType, side: Side, source: TriggerSource,
                                                                       offset: int) -> None:
    expected = FIRING[(kind, side)][offset + 1]
    price = L + offset * INST.tick
    order = _order(type=kind, side=side, stop_price=L, limit=L if kind.child_is_limit else 0, trigger=source)
    assert fires(order, price) is expected
    book = TriggerBook(INST)
    book.add(_untriggered(type=kind, side=side, stop_price=L, limit=L if kind.child_is_limit else 0, trigger=source))
    others = [s for s in (LAST, MARK) if s is not source]
    for other in others:  # another source's price never fires it
        assert book.on_price(other, price, 1) == []
    if source is BID_ASK:  # the other side's touch never fires it
        assert (book.on_touch(None, price, 1) if side is SELL else book.on_touch(price, None, 1)) == []
    fired = _see(book, source, side, price, 2)
    assert [o.id for o in fired] == ([1] if expected else [])
    if expected:
        assert fired[0].status is OrderStatus.TRIGGERED and fired[0].triggered_at == 2 and len(book) == 0
        assert _see(book, source, side, price, 3) == []  # once, ever
        with pytest.raises(InvalidTransition):
            book.add(fired[0])
    else:
        assert 1 in book and len(book) == 1


def test_trigger_price_picks_the_source_and_the_touch_the_order_would_take() -> None:
    prices = {"last": 100, "bid": 90, "ask": 110, "mark": 105}
    assert trigger_price(_order(trigger=LAST), **prices) == 100
    assert trigger_price(_order(trigger=MARK), **prices) == 105
    assert trigger_price(_order(trigger=BID_ASK, side=SELL), **prices) == 90
    assert trigger_price(_order(trigger=BID_ASK, side=BUY), **prices) == 110
    assert trigger_price(_order(trigger=MARK), last=1, bid=1, ask=1, mark=None) is None


def test_many_orders_fire_in_id_order_and_only_those_reached() -> None:
    book = TriggerBook(INST)
    book.add(_untriggered(5, stop_price=9_900))
    book.add(_untriggered(3, stop_price=9_800))
    book.add(_untriggered(4, stop_price=9_700))
    book.add(_untriggered(2, side=BUY, stop_price=10_100))
    book.add(_untriggered(1, side=BUY, type=TPM, stop_price=9_800))
    assert book.on_price(LAST, 10_000, 1) == []
    assert [o.id for o in book.on_price(LAST, 9_800, 2)] == [1, 3, 5]
    assert [o.id for o in book.orders()] == [2, 4]
    assert book.remove(4) is not None and book.remove(4) is None
    assert [o.id for o in book.on_price(LAST, 20_000, 3)] == [2]
    assert len(book) == 0


def test_a_bid_ask_price_through_on_price_is_both_touches() -> None:
    book = TriggerBook(INST)
    book.add(_untriggered(1, stop_price=9_900, trigger=BID_ASK))
    book.add(_untriggered(2, side=BUY, stop_price=9_900, trigger=BID_ASK))
    assert [o.id for o in book.on_price(BID_ASK, 9_900, 1)] == [1, 2]


def test_untriggered_orders_expire_at_their_date() -> None:
    book = TriggerBook(INST)
    book.add(_untriggered(1, stop_price=9_000, expire_at=50))
    book.add(_untriggered(2, stop_price=9_000))
    assert book.expire(49) == []
    expired = book.expire(50)
    assert [o.id for o in expired] == [1] and expired[0].done_reason is DoneReason.EXPIRED and 1 not in book


def test_the_book_refuses_what_it_cannot_hold() -> None:
    book = TriggerBook(INST)
    with pytest.raises(InvalidTransition):
        book.add(_order(stop_price=9_000))  # still pending
    with pytest.raises(InvalidTransition):
        book.add(_untriggered(type=OrderType.LIMIT, limit=9_000))
    book.add(_untriggered(stop_price=9_000))
    with pytest.raises(InvalidTransition):
        book.add(_untriggered(stop_price=9_000))


# --- trailing stops ----------------------------------------------------------------------------

def test_an_absolute_trailing_sell_follows_the_highest_price_and_fires_at_its_level() -> None:
    book = TriggerBook(INST)
    order = _untriggered(type=TR, trail_delta=100)
    book.add(order)
    assert not fires(order, 0)  # not active yet
    assert book.on_price(LAST, 10_000, 1) == [] and order.stop_price == 9_900 and order.trail_best == 10_000
    assert book.on_price(LAST, 10_050, 2) == [] and order.stop_price == 9_950 and order.last_updated_at == 2
    assert book.on_price(LAST, 9_960, 3) == [] and order.stop_price == 9_950  # never moves back
    assert [o.id for o in book.on_price(LAST, 9_950, 4)] == [1] and order.triggered_at == 4


def test_a_percent_trailing_buy_activates_at_its_price_and_rounds_to_the_tick_half_up() -> None:
    order = _order(side=BUY, type=TR, trail_ppm=15_000, activation_price=9_000)
    assert not follow(order, 9_500, INST.tick) and order.trail_best == 0 and order.stop_price == 0
    assert follow(order, 9_000, INST.tick) and order.trail_best == 9_000
    assert order.stop_price == 9_140  # 9000 * 1.015 = 9135: a half, rounded up to the tick
    assert not follow(order, 9_100, INST.tick) and order.stop_price == 9_140  # a buy's level only falls
    assert follow(order, 8_800, INST.tick) and order.stop_price == 8_930  # 8932
    assert not fires(order, 8_920) and fires(order, 8_930)


def test_a_trailing_level_is_at_least_a_tick_away_and_a_sell_level_stays_positive() -> None:
    order = _order(type=TR, trail_delta=1)
    assert follow(order, 1_000, INST.tick) and order.stop_price == 990
    tiny = _order(type=TR, trail_ppm=500_000)
    assert follow(tiny, 20, INST.tick) and tiny.stop_price == INST.tick
    floor = _order(type=TR, trail_delta=10)
    assert not follow(floor, INST.tick, INST.tick) and floor.stop_price == 0 and not fires(floor, INST.tick)


def test_level_rounds_half_up() -> None:
    assert level(10_000, 30_000, False, 10) == 9_700  # stop_loss=3
    assert level(10_000, 60_000, True, 10) == 10_600  # take_profit=6
    assert level(1_005, 0, True, 10) == 1_010 and level(1_004, 0, True, 10) == 1_000
    assert level(1_234_567, 12_345, False, 100) == 1_219_300  # 1_219_326.3...


@settings(max_examples=300, deadline=None)
@given(side=st.sampled_from([BUY, SELL]), delta=st.integers(1, 500), ppm=st.integers(1, 999_999), use_ppm=st.booleans(),
       activation=st.integers(0, 2_000), path=st.lists(st.integers(1, 20_000), max_size=60))
def test_a_trailing_level_is_monotone_and_never_fires_on_the_price_that_set_it(side: Side, delta: int, ppm: int, use_ppm: bool,
                                                                               activation: int, path: list[int]) -> None:
    order = _order(side=side, type=TR, trail_ppm=ppm if use_ppm else 0, trail_delta=0 if use_ppm else delta,
                   activation_price=activation * 10)
    previous = 0
    for price in path:  # off the tick too: a mark price need not be on it
        changed = follow(order, price, INST.tick)
        if changed:
            assert not fires(order, price)
            assert order.stop_price % INST.tick == 0 and order.stop_price > 0
        if previous:
            assert (order.stop_price >= previous) if side is SELL else (order.stop_price <= previous)
            assert changed == (order.stop_price != previous)
        previous = order.stop_price


# --- refusals ----------------------------------------------------------------------------------

def _refused(order: Order, code: str, **kwargs: object) -> None:
    market = {"last": 10_000, "bid": 9_990, "ask": 10_010, "now": 100}
    market.update(kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as info:
        check_conditional(order, INST, **market)  # type: ignore[arg-type]
    assert info.value.code == code and info.value.rpc_code == -32602


@pytest.mark.parametrize(("fields", "code"), [
    ({"type": SM}, "stop_price_required"),
    ({"type": SM, "stop_price": 9_905}, "stop_price_off_tick"),
    ({"type": SL, "stop_price": 9_900}, "limit_required"),
    ({"type": TPL, "stop_price": 10_100, "limit": 10_105}, "limit_off_tick"),
    ({"type": TR}, "trailing_delta_required"),
    ({"type": TR, "trail_ppm": 1_000_000}, "trailing_delta_out_of_range"),
    ({"type": TR, "trail_ppm": -1}, "trailing_delta_out_of_range"),
    ({"type": TR, "trail_delta": -10}, "trailing_delta_out_of_range"),
    ({"type": TR, "trail_delta": 10, "trail_ppm": 10}, "trailing_delta_out_of_range"),
    ({"type": TR, "trail_delta": 10, "activation_price": 10_005}, "activation_price_off_tick"),
    ({"type": SM, "stop_price": 9_900, "expire_at": 100}, "expire_at_in_past"),
    ({"type": SM, "stop_price": 10_000}, "stop_would_trigger"),
    ({"type": TPM, "stop_price": 9_990}, "stop_would_trigger"),
    ({"type": SM, "stop_price": 9_900, "time_in_force": TimeInForce.IOC}, "time_in_force_invalid"),
    ({"type": TR, "trail_delta": 10, "time_in_force": TimeInForce.FOK}, "time_in_force_invalid"),
    ({"type": SL, "stop_price": 9_900, "limit": 9_800, "time_in_force": TimeInForce.GTD}, "time_in_force_invalid"),
])
def test_every_refusal_has_its_code(fields: dict[str, object], code: str) -> None:
    _refused(_order(**fields), code)  # type: ignore[arg-type]


def test_a_stop_that_would_trigger_is_accepted_when_allowed_and_checked_at_its_own_source() -> None:
    order = _order(type=SM, stop_price=10_000)
    check_conditional(order, INST, last=10_000, bid=None, ask=None, now=0, allow_immediate=True)
    bid_ask = _order(type=SM, stop_price=9_990, trigger=BID_ASK)
    _refused(bid_ask, "stop_would_trigger", last=20_000)  # the bid, not the last trade
    check_conditional(_order(type=SM, stop_price=9_990, trigger=MARK), INST, last=9_000, bid=None, ask=None, now=0)
    _refused(_order(type=SM, stop_price=9_990, trigger=MARK), "stop_would_trigger", mark=9_990)


def test_sound_requests_pass() -> None:
    for order in (_order(type=SL, stop_price=9_900, limit=9_800, time_in_force=TimeInForce.GTD, expire_at=200),
                  _order(side=BUY, type=TPM, stop_price=9_900), _order(type=TR, trail_ppm=15_000, activation_price=10_100),
                  _order(type=OrderType.LIMIT, limit=1)):
        check_conditional(order, INST, last=10_000, bid=9_990, ask=10_010, now=100)


def test_oco_refusals() -> None:
    limit = _order(1, type=OrderType.LIMIT, limit=10_500, list_id=1)
    stop = _order(2, type=SM, stop_price=9_500, list_id=1)
    check_oco(limit, stop, last=10_000, bid=None, ask=None)
    for bad_stop, code in ((_order(2, type=SM, size=2000, stop_price=9_500), "oco_legs_disagree"),
                           (_order(2, side=BUY, type=SM, stop_price=9_500), "oco_legs_disagree"),
                           (_order(2, type=SM, stop_price=10_000), "oco_prices_wrong_side")):
        with pytest.raises(InvalidInput) as info:
            check_oco(limit, bad_stop, last=10_000, bid=None, ask=None)
        assert info.value.code == code
    with pytest.raises(InvalidInput, match="limit below"):
        check_oco(_order(1, side=BUY, type=OrderType.LIMIT, limit=10_000), _order(2, side=BUY, type=SM, stop_price=10_500),
                  last=None, bid=None, ask=10_000)
    check_oco(_order(1, side=BUY, type=OrderType.LIMIT, limit=9_000), _order(2, side=BUY, type=SM, stop_price=10_500),
              last=None, bid=None, ask=None)


# --- holds -------------------------------------------------------------------------------------

def test_conditional_holds() -> None:
    sell = _order(type=SM, stop_price=9_000, size=1_000)
    assert required_hold(INST, sell) == ("BTC", INST.base_atto(1_000))
    stop_limit_buy = _order(side=BUY, type=SL, stop_price=11_000, limit=11_100)
    assert required_hold(INST, stop_limit_buy) == ("USDT", max_buy_cost(INST, 11_100, 1_000))
    stop_buy = _order(side=BUY, type=SM, stop_price=11_000)
    assert conditional_market_level(INST, stop_buy) == 11_550 == 11_000 * (10**6 + CONDITIONAL_MARKET_MARGIN_PPM) // 10**6
    assert required_hold(INST, stop_buy) == ("USDT", max_buy_cost(INST, 11_550, 1_000))
    assert required_hold(INST, stop_buy, market_cost=5) == ("USDT", 5)
    trailing_buy = _order(side=BUY, type=TR, trail_delta=100, activation_price=9_000)
    before = required_hold(INST, trailing_buy)[1]
    for price in (9_000, 8_990, 9_500, 8_000):
        follow(trailing_buy, price, INST.tick)
        after = required_hold(INST, trailing_buy)[1]
        assert after <= before
        before = after
    with pytest.raises(ValueError):
        required_hold(INST, _order(side=BUY, type=TR, trail_delta=100))  # no level before it has seen a price


def test_oco_legs_hold_once_and_the_hold_moves_to_the_leg_that_lives_on() -> None:
    limit = _order(1, side=BUY, type=OrderType.LIMIT, limit=9_000, list_id=1)
    stop = _order(2, side=BUY, type=SM, stop_price=11_000, list_id=1)
    need = required_hold(INST, stop)[1]
    assert need > required_hold(INST, limit)[1]
    assert oco_holds(INST, limit, stop) == (need, 0) and oco_holds(INST, stop, limit) == (0, need)
    ledger = _ledger(quote=need)  # exactly one hold's worth: two would not fit
    engine = _engine([(8_000, 10**6)], [(12_000, 10**6)])
    book = TriggerBook(INST)
    place_order(ledger, engine, limit, 1, hold=need)
    accept_conditional(ledger, INST, stop, 1, hold=0)
    book.add(stop)
    ledger.check()
    assert ledger.wallet("paper", "USDT").available == 0
    fired = book.on_price(LAST, 11_000, 2)
    engine.cancel(limit.id, 2)
    resolve_oco(ledger, INST, fired[0], limit, 2)
    assert ledger.hold_of(1) == 0 and ledger.hold_of(2) == need
    fills, _ = fire(ledger, engine, stop, 2)
    assert stop.is_done and stop.type is SM and fills and fills[0].order_type is SM
    assert ledger.hold_of(2) == 0
    ledger.check()


def test_a_user_cancelling_one_leg_cancels_the_list() -> None:
    limit = _order(1, type=OrderType.LIMIT, limit=11_000, list_id=1)
    stop = _order(2, type=SM, stop_price=9_000, list_id=1)
    ledger = _ledger(base=INST.base_atto(1_000))
    engine = _engine([(10_000, 10**6)], [(10_100, 10**6)])
    place_order(ledger, engine, limit, 1, hold=oco_holds(INST, limit, stop)[0])
    accept_conditional(ledger, INST, stop, 1, hold=0)
    engine.cancel(1, 2)
    resolve_oco(ledger, INST, limit, stop, 2)
    assert stop.is_done and stop.done_reason is DoneReason.CANCELLED and not ledger.holds()
    ledger.check()


def test_accept_conditional_refuses_without_funds_and_changes_nothing() -> None:
    ledger = _ledger(base=INST.base_atto(999))
    order = _order(type=SM, stop_price=9_000)
    with pytest.raises(InsufficientFunds):
        accept_conditional(ledger, INST, order, 1)
    assert order.status is OrderStatus.PENDING and not ledger.holds() and len(ledger.lines()) == 1


# --- firing ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("tif", "status", "reason", "rests"), [
    (TimeInForce.GTC, OrderStatus.OPEN, None, True),
    (TimeInForce.GTD, OrderStatus.OPEN, None, True),
    (TimeInForce.IOC, OrderStatus.DONE, DoneReason.CANCELLED, False),
    (TimeInForce.FOK, OrderStatus.DONE, DoneReason.KILLED, False),
])
def test_a_fired_stop_limit_becomes_its_limit_child(tif: TimeInForce, status: OrderStatus, reason: DoneReason | None,
                                                     rests: bool) -> None:
    engine = _engine([(9_900, 400), (9_800, 10**6)], [(10_100, 10**6)])
    ledger = _ledger(base=INST.base_atto(1_000))
    order = _order(type=SL, stop_price=9_900, limit=9_900, time_in_force=tif, expire_at=10**12 if tif is TimeInForce.GTD else 0)
    accept_conditional(ledger, INST, order, 1)
    book = TriggerBook(INST)
    book.add(order)
    book.on_price(LAST, 9_900, 2)
    fills, _ = fire(ledger, engine, order, 2)
    assert order.type is SL and order.status is status and order.done_reason is reason
    assert sum(f.size for f in fills) == (0 if tif is TimeInForce.FOK else 400)
    assert (order.id in engine.open_orders) is rests
    assert ledger.hold_of(order.id) == required_hold(INST, order)[1]
    ledger.check()
    if rests:  # a restart: the triggered stop-limit resting on the book is restored as it was
        engine.clear_orders()
        engine.restore(order)
        assert order.id in engine.open_orders


def test_a_fired_market_buy_spends_at_most_its_hold() -> None:
    engine = _engine([], [(10_000, 300), (20_000, 10**6)])  # gapped far past the stop after 300
    order = _order(side=BUY, type=SM, stop_price=10_000)
    hold = required_hold(INST, order)[1]
    ledger = _ledger(quote=hold)
    accept_conditional(ledger, INST, order, 1)
    order.move(OrderStatus.TRIGGERED, 2)
    fills, _ = fire(ledger, engine, order, 2)
    spent = sum(f.notional + f.fee for f in fills)
    assert 0 < spent <= hold and order.filled_size < order.size
    assert order.done_reason is DoneReason.CANCELLED and not ledger.holds()
    ledger.check()


def test_a_fired_market_buy_with_nothing_to_buy_is_cancelled_and_releases_its_hold() -> None:
    engine = _engine([], [])
    order = _order(side=BUY, type=TPM, stop_price=10_000)
    ledger = _ledger(quote=required_hold(INST, order)[1])
    accept_conditional(ledger, INST, order, 1)
    order.move(OrderStatus.TRIGGERED, 2)
    assert fire(ledger, engine, order, 2)[0] == [] and order.done_reason is DoneReason.CANCELLED and not ledger.holds()
    with pytest.raises(InvalidTransition):
        fire(ledger, engine, order, 3)


# --- brackets ----------------------------------------------------------------------------------

BRACKET = Bracket(take_profit_type=OrderType.LIMIT, take_profit_price=11_000, stop_loss_type=SM, stop_loss_price=9_000)


def test_a_bracket_round_trips_and_malformed_text_is_refused() -> None:
    full = Bracket(take_profit_type=TPL, take_profit_price=11_000, take_profit_limit=10_990, stop_loss_type=SL,
                   stop_loss_price=9_000, stop_loss_limit=8_990, trigger=MARK)
    assert decode_bracket(encode_bracket(full)) == full and decode_bracket(encode_bracket(BRACKET)) == BRACKET
    for text in ("{", '{"take_profit_type": "stop"}', encode_bracket(BRACKET)[:-1] + ', "x": 1}'):
        with pytest.raises(InvalidInput) as info:
            decode_bracket(text)
        assert info.value.code == "bracket_invalid"
    # a leg without a level is well-formed JSON but no bracket: refused when checked
    with pytest.raises(InvalidInput) as info:
        check_bracket(_order(side=BUY, type=OrderType.LIMIT, limit=10_000), decode_bracket('{"take_profit_type": "limit"}'), 10_000)
    assert info.value.code == "bracket_invalid"


def test_brackets_stored_before_percentages_and_lone_legs_decode_unchanged() -> None:
    stored = ('{"take_profit_type":"take-profit-market","take_profit_price":10400,"stop_loss_type":"stop-market",'
              '"stop_loss_price":9800,"take_profit_limit":0,"stop_loss_limit":0,"trigger":"last"}')
    bracket = decode_bracket(stored)
    assert bracket == Bracket(take_profit_type=TPM, take_profit_price=10_400, stop_loss_type=SM, stop_loss_price=9_800)
    assert bracket.legs == 2 and bracket.take_profit_ppm == bracket.stop_loss_ppm == 0
    lone = Bracket(stop_loss_type=SM, stop_loss_ppm=30_000)
    assert decode_bracket(encode_bracket(lone)) == lone and lone.legs == 1


@pytest.mark.parametrize(("side", "limit", "bracket", "code"), [
    (BUY, 10_000, BRACKET, None),
    (BUY, 0, BRACKET, None),  # a market parent: the reference price is its entry
    (BUY, 10_000, Bracket(take_profit_type=OrderType.LIMIT, take_profit_price=11_000, stop_loss_type=SM, stop_loss_price=10_000),
     "bracket_stop_wrong_side"),
    (BUY, 10_000, Bracket(take_profit_type=TPM, take_profit_price=10_000, stop_loss_type=SM, stop_loss_price=9_000),
     "bracket_take_profit_wrong_side"),
    (SELL, 10_000, BRACKET, "bracket_stop_wrong_side"),
    (SELL, 10_000, Bracket(take_profit_type=OrderType.LIMIT, take_profit_price=11_000, stop_loss_type=SM, stop_loss_price=12_000),
     "bracket_take_profit_wrong_side"),
    (BUY, 10_000, Bracket(take_profit_type=SM, take_profit_price=11_000, stop_loss_type=SM, stop_loss_price=9_000),
     "bracket_type_invalid"),
    (BUY, 10_000, Bracket(take_profit_type=TPL, take_profit_price=11_000, stop_loss_type=SM, stop_loss_price=9_000),
     "limit_required"),
    # percentages of the fill: always on the right side, for a long and a short alike
    (BUY, 10_000, Bracket(take_profit_type=TPM, take_profit_ppm=60_000, stop_loss_type=SM, stop_loss_ppm=30_000), None),
    (SELL, 10_000, Bracket(take_profit_type=TPM, take_profit_ppm=60_000, stop_loss_type=SM, stop_loss_ppm=30_000), None),
    (BUY, 0, Bracket(take_profit_type=OrderType.LIMIT, take_profit_ppm=60_000), None),
    # a lone leg: only a stop, or only a target; its side is still checked when it is a price
    (BUY, 10_000, Bracket(stop_loss_type=SM, stop_loss_price=9_000), None),
    (BUY, 10_000, Bracket(take_profit_type=TPM, take_profit_price=11_000), None),
    (BUY, 10_000, Bracket(stop_loss_type=SM, stop_loss_price=10_500), "bracket_stop_wrong_side"),
    (SELL, 10_000, Bracket(take_profit_type=TPM, take_profit_price=10_500), "bracket_take_profit_wrong_side"),
    (BUY, 10_000, Bracket(take_profit_type=TPM, take_profit_ppm=50_000, stop_loss_type=SM, stop_loss_price=10_000),
     "bracket_stop_wrong_side"),
    (BUY, 10_000, Bracket(), "bracket_incomplete"),
    (BUY, 10_000, Bracket(stop_loss_type=SM, stop_loss_price=9_000, stop_loss_ppm=30_000), "bracket_invalid"),
    (BUY, 10_000, Bracket(stop_loss_type=SM, stop_loss_ppm=1_000_000), "bracket_invalid"),
    (BUY, 10_000, Bracket(stop_loss_type=SM, stop_loss_ppm=-5), "bracket_invalid"),
    (BUY, 10_000, Bracket(stop_loss_type=SL, stop_loss_ppm=30_000, stop_loss_limit=9_000), "bracket_type_invalid"),
])
def test_bracket_checks(side: Side, limit: int, bracket: Bracket, code: str | None) -> None:
    parent = _order(side=side, type=OrderType.LIMIT if limit else OrderType.MARKET, limit=limit)
    if code is None:
        check_bracket(parent, bracket, 10_000, instrument=INST)
        return
    with pytest.raises(InvalidInput) as info:
        check_bracket(parent, bracket, 10_000)
    assert info.value.code == code


def test_bracket_prices_must_be_on_the_tick_when_the_instrument_is_given() -> None:
    bracket = Bracket(take_profit_type=OrderType.LIMIT, take_profit_price=11_005, stop_loss_type=SM, stop_loss_price=9_000)
    with pytest.raises(InvalidInput) as info:
        check_bracket(_order(side=BUY, type=OrderType.LIMIT, limit=10_000), bracket, 10_000, instrument=INST)
    assert info.value.code == "take_profit_off_tick"


def test_bracket_children_close_what_the_parent_filled() -> None:
    parent = _order(7, side=BUY, type=OrderType.LIMIT, limit=10_000, size=1_000, wallet_set_id=None, run_id="r", owner_id=3,
                    account_id=2, bracket=encode_bracket(BRACKET))
    with pytest.raises(ValueError):
        bracket_children(parent, BRACKET, 20, 5)
    parent.record_fill(10_000, 400, INST.notional_atto(10_000, 400), 0, 4)
    tp, sl = bracket_children(parent, decode_bracket(parent.bracket or ""), 20, 5)
    assert (tp.id, sl.id, tp.list_id, sl.list_id, tp.parent_id, sl.parent_id) == (20, 21, 20, 20, 7, 7)
    assert tp.type is OrderType.LIMIT and tp.limit == 11_000 and tp.stop_price == 0
    assert sl.type is SM and sl.stop_price == 9_000 and sl.limit == 0
    for child in (tp, sl):
        assert child.side is SELL and child.size == 400 and child.status is OrderStatus.PENDING
        assert (child.run_id, child.owner_id, child.account_id, child.created_at) == ("r", 3, 2, 5)
    assert (tp.client_oid, sl.client_oid) == ("c7:tp", "c7:sl")


def _filled(side: Side, fills: list[tuple[int, int]]) -> Order:
    parent = _order(7, side=side, type=OrderType.MARKET, size=sum(size for _, size in fills))
    for ts, (price, size) in enumerate(fills, start=1):
        parent.record_fill(price, size, INST.notional_atto(price, size), 0, ts)
    return parent


# (entry side, fills (price, size), take-profit ppm, stop-loss ppm) -> (take-profit level, stop-loss level); tick 10
@pytest.mark.parametrize(("side", "fills", "tp_ppm", "sl_ppm", "levels"), [
    (BUY, [(10_000, 100)], 60_000, 30_000, (10_600, 9_700)),  # 100.00: +6% 106.00, -3% 97.00
    (SELL, [(10_000, 100)], 60_000, 30_000, (9_400, 10_300)),  # a short: the mirror
    (BUY, [(10_000, 100), (10_100, 100)], 60_000, 30_000, (10_650, 9_750)),  # average 100.50: 106.53 -> 106.50, 97.485 -> 97.50
    (BUY, [(10_010, 300), (10_020, 100)], 10_000, 10_000, (10_110, 9_910)),  # average 100.125 -> 100.10 on the tick; +-1%
    (BUY, [(12_340, 10)], 25_000, 0, (12_650, 0)),  # 123.40 * 1.025 = 126.485 -> 126.50 (half-up)
    (BUY, [(12_340, 10)], 0, 25_000, (0, 12_030)),  # 123.40 * 0.975 = 120.315 -> 120.30
])
def test_percentage_levels_come_from_the_average_fill_rounded_to_the_tick_half_up(
        side: Side, fills: list[tuple[int, int]], tp_ppm: int, sl_ppm: int, levels: tuple[int, int]) -> None:
    parent = _filled(side, fills)
    entry = fill_price(parent, INST)
    bracket = Bracket(take_profit_type=TPM if tp_ppm else None, take_profit_ppm=tp_ppm,
                      stop_loss_type=SM if sl_ppm else None, stop_loss_ppm=sl_ppm)
    children = bracket_children(parent, bracket, 20, 9, instrument=INST)
    by_kind = {c.type: c for c in children}
    got = (by_kind[TPM].stop_price if TPM in by_kind else 0, by_kind[SM].stop_price if SM in by_kind else 0)
    assert got == levels
    assert got == (level(entry, tp_ppm, side is BUY, INST.tick) if tp_ppm else 0,
                   level(entry, sl_ppm, side is not BUY, INST.tick) if sl_ppm else 0)
    if len(children) == 2:
        assert [c.id for c in children] == [20, 21] and all(c.list_id == 20 for c in children)
    else:
        assert children[0].id == 20 and children[0].list_id == 0  # one alone is no OCO
    with pytest.raises(ValueError):
        bracket_children(parent, bracket, 20, 9)  # percentages need the instrument to resolve them


def test_a_lone_child_is_a_plain_order_sized_to_the_fill() -> None:
    parent = _filled(BUY, [(10_000, 400)])
    (stop,) = bracket_children(parent, Bracket(stop_loss_type=SM, stop_loss_price=9_000), 30, 5)
    assert (stop.id, stop.list_id, stop.parent_id, stop.side, stop.size, stop.stop_price) == (30, 0, 7, SELL, 400, 9_000)
    assert stop.client_oid == "c7:sl"
    (take,) = bracket_children(parent, Bracket(take_profit_type=OrderType.LIMIT, take_profit_ppm=50_000), 31, 5, instrument=INST)
    assert (take.id, take.list_id, take.type, take.limit, take.stop_price) == (31, 0, OrderType.LIMIT, 10_500, 0)


@settings(max_examples=300, deadline=None)
@given(fills=st.lists(st.tuples(st.integers(1, 100_000).map(lambda p: p * 10), st.integers(1, 1000).map(lambda s: s * 10)),
                      min_size=1, max_size=5),
       long=st.booleans(), tp_ppm=st.integers(1, PPM - 1), sl_ppm=st.integers(1, PPM - 1))
def test_percentage_children_sit_on_the_tick_half_up_from_the_fill_on_their_sides(
        fills: list[tuple[int, int]], long: bool, tp_ppm: int, sl_ppm: int) -> None:
    parent = _filled(BUY if long else SELL, fills)
    tick = INST.tick
    # the average fill price, independently: exact rational, then the nearest tick, halves up
    total = sum(size for _, size in fills)
    exact_avg = Fraction(sum(price * size for price, size in fills), total)
    entry = math.floor(exact_avg / tick + Fraction(1, 2)) * tick
    assert fill_price(parent, INST) == entry
    tp, sl = bracket_children(parent, Bracket(take_profit_type=TPM, take_profit_ppm=tp_ppm, stop_loss_type=SM,
                                              stop_loss_ppm=sl_ppm), 1, 2, instrument=INST)
    up = Fraction(PPM + tp_ppm, PPM) if long else Fraction(PPM - tp_ppm, PPM)
    down = Fraction(PPM - sl_ppm, PPM) if long else Fraction(PPM + sl_ppm, PPM)
    for child, factor in ((tp, up), (sl, down)):
        expected = max(math.floor(entry * factor / tick + Fraction(1, 2)) * tick, tick)
        assert child.stop_price == expected and child.stop_price % tick == 0 and child.size == parent.filled_size
    # a long's target at or above its entry and its stop at or below (rounding may meet the entry, never cross it)
    assert (tp.stop_price >= entry >= sl.stop_price) if long else (tp.stop_price <= entry <= sl.stop_price)


# --- properties over price paths ---------------------------------------------------------------

FIXED = [SM, SL, TPM, TPL]
specs = st.lists(st.tuples(st.sampled_from(FIXED + [TR]), st.sampled_from([BUY, SELL]), st.sampled_from([LAST, MARK, BID_ASK]),
                           st.integers(90, 110)), max_size=25)
events = st.lists(st.tuples(st.sampled_from(["last", "mark", "touch"]), st.integers(85, 115), st.integers(85, 115)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(specs=specs, path=events)
def test_a_conditional_order_fires_at_most_once_and_exactly_where_the_reference_says(
        specs: list[tuple[OrderType, Side, TriggerSource, int]], path: list[tuple[str, int, int]]) -> None:
    book = TriggerBook(INST)
    orders = []
    for oid, (kind, side, source, lvl) in enumerate(specs, start=1):
        fields = {"trail_delta": 20} if kind is TR else {"stop_price": lvl * 100, "limit": lvl * 100 if kind.child_is_limit else 0}
        order = _untriggered(oid, type=kind, side=side, trigger=source, **fields)  # type: ignore[arg-type]
        book.add(order)
        orders.append(order)
    reference = {o.id: _order(o.id, type=o.type, side=o.side, trigger=o.trigger, stop_price=o.stop_price, limit=o.limit,
                              trail_delta=o.trail_delta) for o in orders}
    fired_at: dict[int, int] = {}
    expected: dict[int, int] = {}
    for ts, (kind_of_event, a, b) in enumerate(path, start=1):
        pa, pb = a * 100, b * 100
        fired = book.on_touch(pa, pb, ts) if kind_of_event == "touch" else book.on_price(LAST if kind_of_event == "last" else MARK, pa, ts)
        assert [o.id for o in fired] == sorted(o.id for o in fired)
        for order in fired:
            assert order.id not in fired_at and order.status is OrderStatus.TRIGGERED and order.triggered_at == ts
            fired_at[order.id] = ts
        for oid, ref in reference.items():  # an independent reading of the rules, one order at a time
            if oid in expected:
                continue
            source = {"last": LAST, "mark": MARK, "touch": BID_ASK}[kind_of_event]
            if ref.trigger is not source:
                continue
            price = (pa if ref.side is SELL else pb) if source is BID_ASK else pa
            if ref.type is TR:
                if follow(ref, price, INST.tick):
                    continue
            if fires(ref, price):
                expected[oid] = ts
    assert fired_at == expected
    assert len(book) == len(orders) - len(fired_at)


@settings(max_examples=150, deadline=None)
@given(side=st.sampled_from([BUY, SELL]), stop_limit=st.booleans(), size=st.integers(1, 200).map(lambda s: s * 10),
       path=st.lists(st.tuples(st.integers(80, 120), st.integers(1, 100).map(lambda s: s * 10), st.booleans()), max_size=30))
def test_oco_legs_never_both_fill_and_hold_once_with_the_ledger_balanced_at_every_step(
        side: Side, stop_limit: bool, size: int, path: list[tuple[int, int, bool]]) -> None:
    sell = side is SELL
    limit = _order(1, side=side, type=OrderType.LIMIT, size=size, limit=11_000 if sell else 9_000, list_id=1)
    stop_level = 9_000 if sell else 11_000
    stop = _order(2, side=side, type=SL if stop_limit else SM, size=size, stop_price=stop_level,
                  limit=(stop_level - 100 if sell else stop_level + 100) if stop_limit else 0, list_id=1)
    check_oco(limit, stop, last=10_000, bid=None, ask=None)
    hold_limit, hold_stop = oco_holds(INST, limit, stop)
    ledger = _ledger(base=INST.base_atto(size)) if sell else _ledger(quote=max(hold_limit, hold_stop))  # one hold's worth
    engine = _engine([(p * 100, 500) for p in range(80, 100)], [(p * 100, 500) for p in range(101, 121)])
    book = TriggerBook(INST)
    place_order(ledger, engine, limit, 1, hold=hold_limit)
    accept_conditional(ledger, INST, stop, 1, hold=hold_stop)
    book.add(stop)
    ledger.check()
    for ts, (raw, trade_size, buyer) in enumerate(path, start=2):
        price = raw * 100
        fills = engine.on_trade(price, trade_size, Side.BUY if buyer else Side.SELL, ts)
        if fills:
            if stop.id in book:
                book.remove(stop.id)
                resolve_oco(ledger, INST, limit, stop, ts)
            settle_fills(ledger, INST, limit, fills, ts)
        ledger.check()
        for fired in book.on_price(LAST, price, ts):
            if limit.id in engine.open_orders:
                engine.cancel(limit.id, ts)
            resolve_oco(ledger, INST, fired, limit, ts)
            ledger.check()
            fire(ledger, engine, fired, ts)
        ledger.check()
        assert not (limit.filled_size and stop.filled_size)
        assert ledger.hold_of(1) == 0 or ledger.hold_of(2) == 0


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 100).map(lambda s: s * 10), trades=st.lists(st.integers(1, 60).map(lambda s: s * 10), max_size=10),
       tp_market=st.booleans())
def test_bracket_children_exist_only_from_a_parent_fill_and_never_exceed_it(size: int, trades: list[int], tp_market: bool) -> None:
    bracket = Bracket(take_profit_type=TPM if tp_market else OrderType.LIMIT, take_profit_price=11_000, stop_loss_type=SM,
                      stop_loss_price=9_000)
    parent = _order(1, side=BUY, type=OrderType.LIMIT, size=size, limit=10_000, bracket=encode_bracket(bracket))
    check_bracket(parent, bracket, 10_000, instrument=INST)
    ledger = _ledger(quote=max_buy_cost(INST, 10_000, size))
    engine = _engine([(9_000, 10**6)], [(11_000, 10**6)])
    place_order(ledger, engine, parent, 1)
    children: tuple[Order, ...] | None = None
    for ts, trade in enumerate(trades, start=2):
        fills = engine.on_trade(10_000, trade, Side.SELL, ts)
        settle_fills(ledger, INST, parent, fills, ts)
        if children is None and parent.filled_size:
            children = bracket_children(parent, decode_bracket(parent.bracket or ""), 10, ts)
            tp, sl = children
            holds = oco_holds(INST, tp, sl)
            assert holds[1] == 0 and holds[0] == INST.base_atto(parent.filled_size)
            if tp.type is OrderType.LIMIT:
                place_order(ledger, engine, tp, ts, hold=holds[0])  # the parent's base, held once for both
            else:
                accept_conditional(ledger, INST, tp, ts, hold=holds[0])
            accept_conditional(ledger, INST, sl, ts, hold=holds[1])
        ledger.check()
        if children is None:
            assert parent.filled_size == 0
        else:
            assert all(0 < c.size <= parent.filled_size <= parent.size for c in children)


@settings(max_examples=150, deadline=None)
@given(specs=st.lists(st.tuples(st.sampled_from(FIXED + [TR]), st.sampled_from([BUY, SELL]), st.integers(95, 105),
                                st.integers(1, 50).map(lambda s: s * 10)), max_size=12),
       base=st.integers(0, 300), quote=st.integers(0, 40), path=st.lists(st.integers(85, 115), max_size=25))
def test_holds_never_count_the_same_funds_twice_and_the_ledger_balances_after_every_step(
        specs: list[tuple[OrderType, Side, int, int]], base: int, quote: int, path: list[int]) -> None:
    ledger = _ledger(base=INST.base_atto(base * 10), quote=quote * ATTO)
    engine = _engine([(p * 100, 200) for p in range(85, 100)], [(p * 100, 200) for p in range(101, 116)])
    book = TriggerBook(INST)
    live: list[Order] = []
    for oid, (kind, side, lvl, size) in enumerate(specs, start=1):
        price = lvl * 100
        fields = {"trail_delta": 100, "activation_price": price} if kind is TR else {"stop_price": price}
        if kind.child_is_limit:
            fields["limit"] = price
        order = _order(oid, type=kind, side=side, size=size, **fields)  # type: ignore[arg-type]
        before = ledger.holds()
        try:
            accept_conditional(ledger, INST, order, 1)
        except InsufficientFunds:
            assert ledger.holds() == before and order.status is OrderStatus.PENDING
            continue
        assert ledger.hold_of(oid) == required_hold(INST, order)[1]
        book.add(order)
        live.append(order)
        ledger.check()
    for ts, raw in enumerate(path, start=2):
        for fired in book.on_price(LAST, raw * 100, ts):
            fire(ledger, engine, fired, ts)
            ledger.check()
        for wallet in ledger.wallets():
            assert 0 <= wallet.hold <= wallet.balance
        for order in live:
            if order.status is OrderStatus.UNTRIGGERED:
                assert ledger.hold_of(order.id) >= required_hold(INST, order)[1]  # a trailing buy's need only shrinks
            else:
                assert order.status is not OrderStatus.TRIGGERED  # fired straight away


def test_the_book_lists_the_trailing_stops_a_price_moved() -> None:
    book = TriggerBook(INST)
    trailing = _untriggered(1, type=TR, trail_delta=100)
    book.add(trailing)
    book.add(_untriggered(2, stop_price=9_000))
    book.on_price(LAST, 10_000, 1)
    assert book.moved == [trailing]
    book.on_price(LAST, 9_990, 2)
    assert book.moved == []
    book.on_price(MARK, 20_000, 3)
    assert book.moved == [] and trailing.stop_price == 9_900


def test_a_trailing_buy_accepted_at_the_current_price_follows_it_and_holds_at_its_level() -> None:
    order = _order(side=BUY, type=TR, trail_delta=100)
    need = max_buy_cost(INST, conditional_market_level(INST, _order(side=BUY, type=SM, stop_price=10_100)), 1_000)
    ledger = _ledger(quote=need)
    accept_conditional(ledger, INST, order, 1, price=10_000)
    assert (order.trail_best, order.stop_price, ledger.hold_of(1)) == (10_000, 10_100, need)
    poor = _order(2, side=BUY, type=TR, trail_delta=100)
    with pytest.raises(InsufficientFunds):
        accept_conditional(ledger, INST, poor, 1, price=10_000)
    assert (poor.trail_best, poor.stop_price, poor.status) == (0, 0, OrderStatus.PENDING)  # as it came
    settle_fills(ledger, INST, order, [], 2)  # no change: the hold stays
    book = TriggerBook(INST)
    book.add(order)
    book.on_price(LAST, 9_000, 3)
    settle_fills(ledger, INST, order, [], 3)  # its level fell: its hold shrinks to the new need
    assert ledger.hold_of(1) == required_hold(INST, order)[1] < need
    ledger.check()


@settings(max_examples=200, deadline=None)
@given(levels=st.lists(st.tuples(st.sampled_from(FIXED), st.sampled_from([BUY, SELL]), st.integers(98, 102)), max_size=30),
       removed=st.sets(st.integers(1, 30)))
def test_removed_orders_never_fire_and_every_other_one_fires_once_over_a_full_sweep(
        levels: list[tuple[OrderType, Side, int]], removed: set[int]) -> None:
    book = TriggerBook(INST)
    for oid, (kind, side, lvl) in enumerate(levels, start=1):  # many orders share a level: removal finds the right one
        book.add(_untriggered(oid, type=kind, side=side, stop_price=lvl * 100, limit=lvl * 100 if kind.child_is_limit else 0))
    for oid in removed:
        order = book.remove(oid)
        assert (order is not None) == (oid <= len(levels)) and oid not in book
    fired = [o.id for o in book.on_price(LAST, 10_000, 1)]
    fired += [o.id for o in book.on_price(LAST, 1, 2)] + [o.id for o in book.on_price(LAST, 10**6, 3)]
    fired += [o.id for o in book.on_price(LAST, 1, 4)]
    assert sorted(fired) == [oid for oid in range(1, len(levels) + 1) if oid not in removed] and len(book) == 0


# --- a trailing stop-loss in a bracket ---------------------------------------------------------

TRAIL_BRACKET = Bracket(take_profit_type=TPM, take_profit_ppm=60_000, stop_loss_type=OrderType.TRAILING_STOP,
                        stop_loss_trail_ppm=20_000)


@pytest.mark.parametrize(("bracket", "code"), [
    (TRAIL_BRACKET, None),
    (Bracket(stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_delta=50), None),  # a lone trailing stop, a price distance
    (Bracket(stop_loss_type=OrderType.TRAILING_STOP), "trailing_delta_out_of_range"),
    (Bracket(stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_ppm=PPM), "trailing_delta_out_of_range"),
    (Bracket(stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_delta=-10), "trailing_delta_out_of_range"),
    (Bracket(stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_ppm=10_000, stop_loss_trail_delta=50),
     "trailing_delta_out_of_range"),
    (Bracket(stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_ppm=10_000, stop_loss_price=9_000), "bracket_invalid"),
])
def test_a_trailing_stop_loss_needs_one_distance(bracket: Bracket, code: str | None) -> None:
    parent = _order(side=BUY, type=OrderType.LIMIT, limit=10_000)
    assert decode_bracket(encode_bracket(bracket)) == bracket
    if code is None:
        check_bracket(parent, bracket, 10_000, instrument=INST)
        return
    with pytest.raises(InvalidInput) as info:
        check_bracket(parent, bracket, 10_000, instrument=INST)
    assert info.value.code == code


def test_a_trailing_child_follows_from_the_fill_at_once() -> None:
    parent = _filled(BUY, [(10_000, 100), (10_100, 100)])  # average 100.50
    tp, sl = bracket_children(parent, TRAIL_BRACKET, 20, 9, instrument=INST)
    assert (tp.type, tp.stop_price, tp.list_id, sl.list_id) == (TPM, 10_650, 20, 20)
    assert (sl.type, sl.side, sl.size, sl.trail_ppm, sl.trail_delta) == (OrderType.TRAILING_STOP, SELL, 200, 20_000, 0)
    assert sl.trail_best == 10_050 and sl.stop_price == level(10_050, 20_000, False, INST.tick) == 9_850
    short = _filled(SELL, [(10_000, 100)])
    (buy_back,) = bracket_children(short, Bracket(stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_delta=300), 30, 9,
                                   instrument=INST)
    assert (buy_back.side, buy_back.trail_best, buy_back.stop_price, buy_back.list_id) == (BUY, 10_000, 10_300, 0)
    with pytest.raises(ValueError):
        bracket_children(parent, TRAIL_BRACKET, 20, 9)  # the fill price needs the instrument


@settings(max_examples=300, deadline=None)
@given(fills=st.lists(st.tuples(st.integers(50, 200).map(lambda p: p * 100), st.integers(1, 100).map(lambda s: s * 10)),
                      min_size=1, max_size=4),
       long=st.booleans(), ppm=st.integers(1_000, 200_000), path=st.lists(st.integers(40, 250).map(lambda p: p * 100), max_size=30))
def test_a_trailing_child_starts_from_the_fill_and_its_level_never_moves_back(
        fills: list[tuple[int, int]], long: bool, ppm: int, path: list[int]) -> None:
    parent = _filled(BUY if long else SELL, fills)
    entry = fill_price(parent, INST)
    (stop,) = bracket_children(parent, Bracket(stop_loss_type=OrderType.TRAILING_STOP, stop_loss_trail_ppm=ppm), 10, 9,
                               instrument=INST)
    assert stop.trail_best == entry and stop.stop_price % INST.tick == 0
    assert (stop.stop_price < entry) if long else (stop.stop_price > entry)  # a level at once, beyond the fill
    best, previous = entry, stop.stop_price
    for price in path:
        if fires(stop, price):
            assert (price <= stop.stop_price) if long else (price >= stop.stop_price)
            break
        follow(stop, price, INST.tick)
        best = max(best, price) if long else min(best, price)
        assert stop.trail_best == best
        assert (stop.stop_price >= previous) if long else (stop.stop_price <= previous)  # never back
        previous = stop.stop_price
