"""Properties of conditional orders on the paper venue over any path of trades, through a real gateway.

Each example is a fresh gateway (tests/venues/paper_harness.py) holding a stop, a stop-limit, a
trailing stop, an OCO and a bracket parent, then shown a random path of trade prices. After
every trade: the ledger balances (`Ledger.check`: available >= 0, holds are the orders'), an
order fires at most once (its `triggered_at`, once set, never changes), an OCO's legs never
both fill, a bracket's children exist only once the parent filled and never exceed what it
filled. At the end, cancelling what is left frees every hold.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coinwire.core.conditional import Bracket, encode_bracket
from coinwire.core.orders import Order, OrderType
from tests.venues.paper_harness import PaperHarness

BIDS = [("100.00", "50"), ("99.00", "50"), ("97.00", "50")]
ASKS = [("101.00", "50"), ("102.00", "50"), ("104.00", "50")]


def _conditional(h: PaperHarness, side: str, type: OrderType, size: str, stop: str, limit: str = "0") -> Order:
    order = h.order(side, type.value, size, limit)
    order.stop_price = h.instrument.parse_price(stop)
    return order


async def _walk(prices: list[int], directory: Path) -> None:
    h = PaperHarness(directory)
    await h.open()
    try:
        await h.fund("USDT", "10000")
        await h.fund("BTC", "5")
        await h.set_book(BIDS, ASKS)
        await h.trade("100.00", "0.1", "buy")
        inst = h.instrument
        stop = _conditional(h, "sell", OrderType.STOP_MARKET, "0.5", "99.00")
        stop_limit = _conditional(h, "buy", OrderType.STOP_LIMIT, "0.5", "101.00", "101.50")
        trailing = h.order("sell", OrderType.TRAILING_STOP.value, "0.3")
        trailing.trail_delta = inst.parse_price("0.50")
        for order in (stop, stop_limit, trailing):
            await h.venue.place(order)
        limit_leg = h.order("sell", OrderType.LIMIT.value, "0.5", "102.00")
        stop_leg = _conditional(h, "sell", OrderType.STOP_MARKET, "0.5", "98.50")
        limit_leg.list_id = stop_leg.list_id = limit_leg.id
        await h.venue.place_oco(limit_leg, stop_leg)
        parent = h.order("buy", OrderType.LIMIT.value, "0.4", "99.80")
        parent.bracket = encode_bracket(Bracket(take_profit_type=OrderType.LIMIT, take_profit_price=inst.parse_price("101.80"),
                                                stop_loss_type=OrderType.STOP_MARKET, stop_loss_price=inst.parse_price("98.80")))
        await h.venue.place(parent)
        conditional = [stop, stop_limit, trailing, stop_leg]
        fired_at: dict[int, int] = {}
        last = 10_000
        for price in prices:
            aggressor = "buy" if price >= last else "sell"
            last = price
            await h.trade(inst.price_str(price), "0.7", aggressor)
            h.ledger.check()
            children = {o.id: o for e in h.recorded for o in e.orders if o.parent_id == parent.id}
            for order in conditional + list(children.values()):
                if order.triggered_at is not None:
                    assert fired_at.setdefault(order.id, order.triggered_at) == order.triggered_at, "fired twice"
            assert not (limit_leg.filled_size and stop_leg.filled_size), "both OCO legs filled"
            if children:
                assert parent.filled_size > 0 and len(children) == 2
                assert all(c.size == parent.filled_size for c in children.values())
                take, loss = sorted(children.values(), key=lambda o: o.id)
                assert not (take.filled_size and loss.filled_size), "both bracket children filled"
            else:
                assert not (parent.is_done and parent.filled_size), "a filled parent without children"
        while left := [o for o in h.venue.open_orders() if not o.is_done]:
            await h.venue.cancel(left[0])
        assert h.ledger.holds() == {}
        h.ledger.check()
    finally:
        await h.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=9_700, max_value=10_300), min_size=1, max_size=25))
def test_conditional_orders_fire_once_and_keep_the_ledger_whole_over_any_trade_path(prices: list[int]) -> None:
    with tempfile.TemporaryDirectory(prefix="cond-prop-") as directory:
        asyncio.run(_walk(prices, Path(directory)))
