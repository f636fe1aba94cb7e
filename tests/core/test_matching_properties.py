"""Hypothesis properties of the matching engine: random books, orders, deltas and trades against a model.

The model keeps, per public level, the budget our orders may still take there: the displayed
size when the feed last touched the level, minus what our fills took since. No fill may
overdraw a budget (no fill beyond available size, consumed liquidity never reused).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import DomainError
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.matching import MatchingEngine
from coinwire.core.orders import Fill, Order, OrderStatus, OrderType, Side

BUY, SELL = Side.BUY, Side.SELL
S = 1_000_000_000
LOW, HIGH = 95, 105  # the price grid, in ticks
INST = Instrument(
    exchange="paper", symbol="ETH/USDT", base="ETH", quote="USDT", price_decimals=2, size_decimals=3,
    maker_fee=100_000, taker_fee=150_000,
)

prices = st.integers(LOW, HIGH)
mids = st.integers(LOW + 2, HIGH - 2)
level_updates = st.lists(st.tuples(prices, st.integers(0, 8)), max_size=8)
sides = st.sampled_from([BUY, SELL])
submits = st.tuples(
    st.just("submit"), sides, st.sampled_from(list(OrderType)), st.integers(1, 10), prices,
    st.sampled_from([0, 0, 2, 5]),  # cancel_after seconds
)
deltas = st.tuples(st.just("levels"), mids, level_updates)
trades = st.tuples(st.just("trade"), prices, st.integers(1, 15), sides)
events = st.one_of(  # repeated branches weight the mix toward orders, deltas and trades
    submits, submits, submits, deltas, deltas, trades, trades,
    st.tuples(st.just("cancel"), st.integers(0, 1000)),
    st.tuples(st.just("snapshot"), mids, level_updates),
    st.tuples(st.just("expire")),
)
scripts = st.lists(events, min_size=10, max_size=50)


@dataclass
class Model:
    """The public book the test feeds, and each level's remaining budget for our fills."""

    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    budget: dict[tuple[Side, int], int] = field(default_factory=dict)  # (book side, price) -> size left

    def delta(self, mid: int, updates: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Absolute level changes that move the book to `updates` around `mid`, never crossed."""
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        for price, size in updates:
            (bids if price < mid else asks)[price] = size
        for price in self.bids:
            if price >= mid:
                bids[price] = 0
        for price in self.asks:
            if price < mid:
                asks[price] = 0
        for price in bids:
            if price in self.asks and price not in asks:
                asks[price] = 0
        for price in asks:
            if price in self.bids and price not in bids:
                bids[price] = 0
        for book, changes, side in ((self.bids, bids, BUY), (self.asks, asks, SELL)):
            for price, size in changes.items():
                if size:
                    book[price] = size
                else:
                    book.pop(price, None)
                self.budget[(side, price)] = size
        return sorted(bids.items()), sorted(asks.items())

    def snapshot(self, mid: int, updates: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        self.bids = {p: s for p, s in updates if p < mid and s}
        self.asks = {p: s for p, s in updates if p >= mid and s}
        self.budget = {(BUY, p): s for p, s in self.bids.items()} | {(SELL, p): s for p, s in self.asks.items()}
        return sorted(self.bids.items()), sorted(self.asks.items())

    def take(self, side: Side, price: int, size: int) -> None:
        """A taker fill of `size` at public level (side, price): it must fit the budget there."""
        left = self.budget.get((side, price), 0) - size
        assert left >= 0, f"took {size} at {side.value} {price}, beyond what the level showed since it changed"
        self.budget[(side, price)] = left

    def take_crossing(self, fill: Fill) -> None:
        """A maker fill from the book reaching our price: it draws on crossing levels, best first."""
        book_side = fill.side.opposite
        book = self.asks if book_side is SELL else self.bids
        reach = sorted(p for p in book if (p <= fill.price if book_side is SELL else p >= fill.price))
        if book_side is BUY:
            reach.reverse()
        need = fill.size
        for price in reach:
            got = min(need, self.budget.get((book_side, price), 0))
            self.take(book_side, price, got)
            need -= got
        assert need == 0, f"maker fill {fill} is larger than the crossing liquidity available"


def check_fill(fill: Fill, order: Order) -> None:
    assert fill.notional == INST.notional_atto(fill.price, fill.size) == fill.price * fill.size * 10**13
    assert fill.fee == INST.fee_atto(fill.notional, fill.maker)
    assert fill.size > 0 and fill.order_id == order.id and fill.side is order.side
    if fill.maker:
        assert fill.price == order.limit
    elif order.type is not OrderType.MARKET:
        assert fill.price <= order.limit if order.side is BUY else fill.price >= order.limit


def check_orders(engine: MatchingEngine, orders: dict[int, Order], fills: dict[int, list[Fill]]) -> None:
    for oid, order in orders.items():
        mine = fills.get(oid, [])
        assert 0 <= order.filled_size <= order.size
        assert sum(f.size for f in mine) == order.filled_size
        assert sum(f.notional for f in mine) == order.filled_notional
        assert sum(f.fee for f in mine) == order.fee
        if order.status is OrderStatus.DONE:
            assert oid not in engine.open_orders and order.done_reason is not None
        else:
            assert order.status is OrderStatus.OPEN and engine.open_orders[oid] is order
            assert order.remaining > 0 and engine.queue_ahead(oid) >= 0
    assert set(engine.open_orders) <= set(orders)


@settings(max_examples=200, deadline=None)
@given(mid=mids, start=level_updates, script=scripts)
def test_random_sessions_keep_every_invariant(mid: int, start: list[tuple[int, int]], script: list[tuple]) -> None:
    model = Model()
    engine = MatchingEngine(INST, IdSequence())
    bids, asks = model.snapshot(mid, start)
    assert engine.on_snapshot(bids, asks, 0) == []
    orders: dict[int, Order] = {}
    fills: dict[int, list[Fill]] = {}
    fill_ids: set[int] = set()
    ts = 0
    for event in script:
        ts += S
        kind = event[0]
        got: list[Fill] = []
        if kind == "submit":
            _, side, otype, size, limit, cancel_after = event
            order = Order(
                id=len(orders) + 1, client_oid=f"c{len(orders) + 1}", exchange="paper", symbol="ETH/USDT", side=side,
                type=otype, size=size, limit=0 if otype is OrderType.MARKET else limit, cancel_after=cancel_after,
                created_at=ts,
            )
            would_take = engine.preview(side, size, None if otype is OrderType.MARKET else limit)[0]
            try:
                got = engine.submit(order, ts)
            except DomainError as refused:
                assert refused.code == "post_only_would_take" and otype is OrderType.POST_ONLY and would_take > 0
                assert order.status is OrderStatus.PENDING
                continue
            orders[order.id] = order
            assert all(not f.maker for f in got)
            expected = min(would_take, size)
            if otype is OrderType.FOK and expected < size:
                expected = 0  # killed: all or nothing
            assert sum(f.size for f in got) == expected
            for f in got:
                model.take(side.opposite, f.price, f.size)
        elif kind == "cancel":
            if engine.open_orders:
                oid = sorted(engine.open_orders)[event[1] % len(engine.open_orders)]
                assert engine.cancel(oid, ts).status is OrderStatus.DONE
        elif kind in ("levels", "snapshot"):
            if kind == "levels":
                bids, asks = model.delta(event[1], event[2])
                got = engine.on_levels(bids, asks, ts)
            else:
                bids, asks = model.snapshot(event[1], event[2])
                got = engine.on_snapshot(bids, asks, ts)
            for f in got:
                assert f.maker
                model.take_crossing(f)
            if got:
                note("book crossed our orders")
        elif kind == "trade":
            _, price, size, aggressor = event
            got = engine.on_trade(price, size, aggressor, ts)
            assert sum(f.size for f in got) <= size  # one trade's volume is never used twice
            if len({f.order_id for f in got}) > 1:
                note("one trade filled several orders")
            for f in got:
                assert f.maker and f.side is aggressor.opposite
                assert f.price >= price if f.side is BUY else f.price <= price
        else:
            for order in engine.expire(ts):
                assert order.expires_at is not None and order.expires_at <= ts
            upcoming = engine.next_expiry()
            assert upcoming is None or upcoming > ts
        for f in got:
            assert f.id not in fill_ids
            fill_ids.add(f.id)
            check_fill(f, orders[f.order_id])
            fills.setdefault(f.order_id, []).append(f)
        assert not engine.book.is_crossed()
        assert engine.book.bids == model.bids and engine.book.asks == model.asks
        check_orders(engine, orders, fills)


@settings(max_examples=200, deadline=None)
@given(
    mid=mids,
    start=level_updates,
    takers=st.lists(st.tuples(sides, st.integers(1, 15), st.one_of(st.none(), prices)), min_size=1, max_size=12),
    touched=prices,
)
def test_consumed_liquidity_is_never_reused(
    mid: int, start: list[tuple[int, int]], takers: list[tuple[Side, int, int | None]], touched: int
) -> None:
    model = Model()
    engine = MatchingEngine(INST, IdSequence())
    engine.on_snapshot(*model.snapshot(mid, start), 0)
    shown = {BUY: sum(model.bids.values()), SELL: sum(model.asks.values())}
    taken = {BUY: 0, SELL: 0}
    for n, (side, size, limit) in enumerate(takers, 1):
        otype = OrderType.MARKET if limit is None else OrderType.IOC
        order = Order(
            id=n, client_oid=f"c{n}", exchange="paper", symbol="ETH/USDT", side=side, type=otype, size=size,
            limit=limit or 0,
        )
        for f in engine.submit(order, n):
            model.take(side.opposite, f.price, f.size)
            taken[side.opposite] += f.size
    assert taken[BUY] <= shown[BUY] and taken[SELL] <= shown[SELL]
    book_side = BUY if touched < mid else SELL
    before = engine.available(book_side, touched)
    assert before == model.budget.get((book_side, touched), 0)
    engine.on_levels(*(([(touched, 3)], []) if book_side is BUY else ([], [(touched, 3)])), len(takers) + 1)
    assert engine.available(book_side, touched) == 3  # a level the feed changed is whole again


@settings(max_examples=200, deadline=None)
@given(
    mid=mids,
    start=level_updates,
    side=sides,
    resting=st.lists(st.tuples(prices, st.integers(1, 6)), min_size=1, max_size=10),
    prints=st.lists(st.tuples(prices, st.integers(1, 15)), min_size=1, max_size=10),
)
def test_one_trade_never_fills_more_than_its_size(
    mid: int, start: list[tuple[int, int]], side: Side, resting: list[tuple[int, int]], prints: list[tuple[int, int]]
) -> None:
    model = Model()
    engine = MatchingEngine(INST, IdSequence())
    engine.on_snapshot(*model.snapshot(mid, start), 0)
    for n, (limit, size) in enumerate(resting, 1):
        order = Order(
            id=n, client_oid=f"c{n}", exchange="paper", symbol="ETH/USDT", side=side, type=OrderType.LIMIT, size=size,
            limit=limit,
        )
        engine.submit(order, 1)
    for ts, (price, size) in enumerate(prints, 2):
        at_price = [o for o in engine.open_orders.values() if o.limit == price]
        ahead = min((engine.queue_ahead(o.id) for o in at_price), default=0)
        got = engine.on_trade(price, size, side.opposite, ts)
        assert sum(f.size for f in got) <= size
        assert sum(f.size for f in got if f.price == price) <= max(size - ahead, 0)  # the queue trades first
        for f in got:  # only orders the trade reached: at its price, or better for the aggressor's counterparty
            assert f.maker and (f.price >= price if side is BUY else f.price <= price)
        if len({f.order_id for f in got}) > 1:
            note("one trade filled several orders")
