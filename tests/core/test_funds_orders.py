"""Market buys by funds (an amount of the quote, fee included): checks, hold, and the walk of the book, as properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import CoinwireError
from coinwire.core.execution import check_funds, place_order
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import FEE_SCALE, Instrument
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO
from coinwire.core.orders import Order, OrderType, Side
from tests.core.stored_ledger import StoredLedger

INST = Instrument(exchange="paper", symbol="BTC/GBP", base="BTC", quote="GBP", price_decimals=2, size_decimals=8,
                  step=10, min_notional=ATTO, maker_fee=100_000, taker_fee=500_000)

# sizes on and off the step grid: a level the walk cannot take whole is its last
levels = st.lists(st.tuples(st.integers(1, 10**7), st.integers(1, 10**7)), min_size=0, max_size=8, unique_by=lambda lv: lv[0])


def _engine(asks: list[tuple[int, int]], inst: Instrument = INST) -> MatchingEngine:
    engine = MatchingEngine(inst, IdSequence())
    engine.on_snapshot([], asks, 0)
    return engine


def _order(funds: int, *, side: Side = Side.BUY, type_: OrderType = OrderType.MARKET, inst: Instrument = INST) -> Order:
    return Order(id=1, client_oid="k", exchange=inst.exchange, symbol=inst.symbol, side=side, type=type_, size=0, funds=funds)


def _funded(amount: int) -> StoredLedger:
    ledger = StoredLedger({"paper": {"BTC", "GBP"}})
    ledger.add_virtual_tx("paper", "GBP", amount, 0)
    return ledger


@settings(max_examples=400, deadline=None)
@given(asks=levels, funds=st.integers(1, 10**24))
def test_a_buy_by_funds_spends_at_most_the_funds_on_the_step_within_the_liquidity(asks, funds) -> None:
    engine = _engine(asks)
    ledger = _funded(funds)
    order = _order(funds)
    try:
        fills, _ = place_order(ledger, engine, order, 1)
    except CoinwireError as exc:
        assert exc.code in ("funds_below_min_notional", "funds_below_min_size", "no_liquidity", "notional_below_minimum")
        assert ledger.wallet("paper", "GBP").hold == 0 and len(ledger.lines()) == 1  # refused: nothing written
        return
    spent = sum(f.notional + f.fee for f in fills)
    assert spent <= funds  # fee included
    assert order.filled_size == sum(f.size for f in fills) == order.size and order.size % INST.step == 0
    assert order.is_done and ledger.wallet("paper", "GBP").hold == 0
    shown = dict(asks)
    for fill in fills:  # never more than a level shows, one fill per level, each at its level's price
        assert fill.size <= shown[fill.price]
        assert fill.fee == INST.fee_atto(fill.notional, maker=False)
    assert len({f.price for f in fills}) == len(fills)
    assert ledger.wallet("paper", "GBP").balance == funds - spent
    assert ledger.wallet("paper", "BTC").balance == INST.base_atto(order.size)
    ledger.check()


@settings(max_examples=300, deadline=None)
@given(asks=st.lists(st.tuples(st.integers(1, 10**7), st.integers(1, 10**5).map(lambda s: s * 10)), min_size=1, max_size=8,
                     unique_by=lambda lv: lv[0]),
       funds=st.integers(10**18, 10**24))
def test_on_a_book_on_the_step_grid_one_more_step_would_cost_more_than_the_funds(asks, funds) -> None:
    engine = _engine(asks)
    order = _order(funds)
    try:
        fills, _ = place_order(_funded(funds), engine, order, 1)
    except CoinwireError:
        return
    spent = sum(f.notional + f.fee for f in fills)
    rest = sorted((p, s) for p, s in asks)
    taken = order.size
    for price, size in rest:  # the next step the book offers, at its price
        if taken < size:
            notional = INST.notional_atto(price, INST.step)
            assert spent + notional + INST.fee_atto(notional, maker=False) > funds or taken + INST.step > size
            break
        taken -= size


def test_ten_pounds_walks_two_levels_exactly() -> None:
    # 0.5% taker fee: £10 leaves at most £9.95024875... of notional
    engine = _engine([(800_000, 50_000), (800_100, 10**6)])  # £8000.00 x 0.0005, £8001.00 x 0.01
    ledger = _funded(100 * ATTO)
    order = _order(10 * ATTO)
    fills, _ = place_order(ledger, engine, order, 1)
    first = INST.notional_atto(800_000, 50_000)  # £4.00
    assert fills[0].notional == first and fills[0].fee == first * 500_000 // FEE_SCALE
    left = 10 * ATTO - first - fills[0].fee
    size = (left * FEE_SCALE // (INST.notional_atto(800_100, 1) * (FEE_SCALE + 500_000))) // 10 * 10
    assert fills[1].size == size and fills[1].price == 800_100
    spent = sum(f.notional + f.fee for f in fills)
    assert spent <= 10 * ATTO and ledger.wallet("paper", "GBP").balance == 90 * ATTO + (10 * ATTO - spent)
    assert order.size == 50_000 + size and order.funds == 10 * ATTO


@pytest.mark.parametrize(("side", "type_", "funds", "code"), [
    (Side.SELL, OrderType.MARKET, 10 * ATTO, "funds_market_buy_only"),
    (Side.BUY, OrderType.LIMIT, 10 * ATTO, "funds_market_buy_only"),
    (Side.BUY, OrderType.MARKET, -1, "funds_not_positive"),
    (Side.BUY, OrderType.MARKET, ATTO, "funds_below_min_notional"),  # £1 less the 0.5% fee is below £1
    (Side.BUY, OrderType.MARKET, ATTO * 1005 // 1000, None),  # exactly £1 of notional after the fee
])
def test_check_funds_refuses_with_a_code(side, type_, funds, code) -> None:
    if code is None:
        check_funds(INST, side, type_, funds)
        return
    with pytest.raises(CoinwireError) as caught:
        check_funds(INST, side, type_, funds)
    assert caught.value.code == code


def test_refusals_on_the_book_write_nothing() -> None:
    empty = _engine([])
    ledger = _funded(100 * ATTO)
    with pytest.raises(CoinwireError) as caught:
        place_order(ledger, empty, _order(10 * ATTO), 1)
    assert caught.value.code == "no_liquidity"
    dear = _engine([(10**11, 10**6)])  # £1,000,000,000 a bitcoin: one step of 0.0000001 costs £100
    with pytest.raises(CoinwireError) as caught:
        place_order(ledger, dear, _order(10 * ATTO), 1)
    assert caught.value.code == "funds_below_min_size"
    assert ledger.wallet("paper", "GBP").hold == 0 and len(ledger.lines()) == 1 and not empty.open_orders


def test_the_hold_is_the_funds_and_more_than_the_available_is_refused() -> None:
    engine = _engine([(800_000, 10**6)])
    ledger = _funded(5 * ATTO)
    with pytest.raises(CoinwireError) as caught:
        place_order(ledger, engine, _order(10 * ATTO), 1)
    assert caught.value.code == "insufficient_funds"
    assert ledger.wallet("paper", "GBP").hold == 0 and len(ledger.lines()) == 1
