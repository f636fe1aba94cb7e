"""core.execution: the one order path, and exact sizing by a quote budget (never a unit of quote too many)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InsufficientFunds
from coinwire.core.execution import max_limit_buy_size, max_size_within, place_order, size_for_funds
from coinwire.core.funds import max_buy_cost
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO
from coinwire.core.orders import Order, OrderType, Side
from tests.core.stored_ledger import StoredLedger

INST = Instrument(exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=6,
                  step=10, maker_fee=100_000, taker_fee=150_000)

levels = st.lists(st.tuples(st.integers(1, 10**7), st.integers(1, 10**6).map(lambda s: s * 10)), min_size=1, max_size=8,
                  unique_by=lambda lv: lv[0])


def _engine(asks: list[tuple[int, int]]) -> MatchingEngine:
    engine = MatchingEngine(INST, IdSequence())
    engine.on_snapshot([], asks, 0)
    return engine


@settings(max_examples=300, deadline=None)
@given(asks=levels, funds=st.integers(0, 10**24))
def test_a_market_buy_sized_by_funds_costs_at_most_the_funds_and_one_more_step_would_not_fit(asks, funds) -> None:
    engine = _engine(asks)
    size = size_for_funds(engine, Side.BUY, funds)
    assert size % INST.step == 0
    if size == 0:
        return
    ledger = StoredLedger({"paper": {"BTC", "USDT"}})
    ledger.add_virtual_tx("paper", "USDT", funds, 0)
    order = Order(id=1, client_oid="a", exchange="paper", symbol="BTC/USDT", side=Side.BUY, type=OrderType.MARKET, size=size)
    fills, _ = place_order(ledger, engine, order, 1, budget=funds)
    spent = sum(f.notional + f.fee for f in fills)
    assert sum(f.size for f in fills) == size
    assert spent <= funds
    assert ledger.wallet("paper", "USDT").balance == funds - spent >= 0
    ledger.check()


@given(price=st.integers(1, 10**8), funds=st.integers(0, 10**26))
def test_max_size_within_is_the_largest_affordable_step(price, funds) -> None:
    size = max_size_within(INST, price, funds)
    cost = lambda s: INST.notional_atto(price, s) + INST.fee_atto(INST.notional_atto(price, s), maker=False)  # noqa: E731
    assert size >= 0 and size % INST.step == 0
    if size:
        assert cost(size) <= funds
    assert cost(size + INST.step) > funds


@given(limit=st.integers(1, 10**8), funds=st.integers(0, 10**26))
def test_a_limit_buy_sized_by_funds_can_always_be_held(limit, funds) -> None:
    size = max_limit_buy_size(INST, limit, funds)
    assert size >= 0 and size % INST.step == 0
    assert max_buy_cost(INST, limit, size) <= funds


def test_a_refused_order_changes_nothing() -> None:
    engine = _engine([(10000, 1000)])
    ledger = StoredLedger({"paper": {"BTC", "USDT"}})
    ledger.add_virtual_tx("paper", "USDT", 5 * ATTO, 0)
    order = Order(id=1, client_oid="a", exchange="paper", symbol="BTC/USDT", side=Side.BUY, type=OrderType.LIMIT,
                  size=10**6, limit=10000)
    with pytest.raises(InsufficientFunds):
        place_order(ledger, engine, order, 1)
    assert ledger.wallet("paper", "USDT").hold == 0 and not engine.open_orders and len(ledger.lines()) == 1
