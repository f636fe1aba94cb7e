"""Case table for the paper matching engine: order types, queue position, consumption, fees, snapshots."""

from __future__ import annotations

import gzip
import json
from itertools import count

import pytest

from coinwire.core.errors import DomainError, NotFound
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import to_units
from coinwire.core.orders import DoneReason, Fill, Order, OrderStatus, OrderType, Side
from tests.conftest import shared_data

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET, IOC, FOK, POST = OrderType.LIMIT, OrderType.MARKET, OrderType.IOC, OrderType.FOK, OrderType.POST_ONLY
OPEN, DONE = OrderStatus.OPEN, OrderStatus.DONE
S = 1_000_000_000  # one second in ns

# prices in cents, sizes in thousandths; maker 0.1%, taker 0.15%
INSTRUMENT = Instrument(
    exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=3,
    maker_fee=100_000, taker_fee=150_000,
)
BIDS = [(9900, 5), (9800, 5), (9700, 10)]
ASKS = [(10000, 3), (10100, 4), (10200, 10)]

_ids = count(1)


def engine(bids: list[tuple[int, int]] = BIDS, asks: list[tuple[int, int]] = ASKS) -> MatchingEngine:
    eng = MatchingEngine(INSTRUMENT, IdSequence())
    eng.on_snapshot(bids, asks, 0)
    return eng


def order(side: Side, kind: OrderType, size: int, limit: int = 0, cancel_after: int = 0, created_at: int = 0) -> Order:
    oid = next(_ids)
    return Order(
        id=oid, client_oid=f"c{oid}", exchange="paper", symbol="BTC/USDT", side=side, type=kind, size=size,
        limit=limit, cancel_after=cancel_after, created_at=created_at,
    )


def shape(fills: list[Fill]) -> list[tuple[int, int, bool]]:
    return [(f.price, f.size, f.maker) for f in fills]


# --- order types ------------------------------------------------------------------------------
CASES = [
    # name, side, type, size, limit, expected fills (price, size, maker), status, reason, resting
    ("limit rests inside spread", BUY, LIMIT, 2, 9950, [], OPEN, None, True),
    ("limit cross partial then rests", BUY, LIMIT, 10, 10100, [(10000, 3, False), (10100, 4, False)], OPEN, None, True),
    ("limit sell fills exactly", SELL, LIMIT, 10, 9800, [(9900, 5, False), (9800, 5, False)], DONE, DoneReason.FILLED,
     False),
    ("market walks levels", BUY, MARKET, 5, 0, [(10000, 3, False), (10100, 2, False)], DONE, DoneReason.FILLED, False),
    ("market sell walks three", SELL, MARKET, 12, 0, [(9900, 5, False), (9800, 5, False), (9700, 2, False)], DONE,
     DoneReason.FILLED, False),
    ("market with insufficient book", BUY, MARKET, 20, 0, [(10000, 3, False), (10100, 4, False), (10200, 10, False)],
     DONE, DoneReason.CANCELLED, False),
    ("ioc partial", BUY, IOC, 10, 10100, [(10000, 3, False), (10100, 4, False)], DONE, DoneReason.CANCELLED, False),
    ("ioc nothing in reach", SELL, IOC, 3, 9950, [], DONE, DoneReason.CANCELLED, False),
    ("fok killed", BUY, FOK, 8, 10100, [], DONE, DoneReason.KILLED, False),
    ("fok filled", BUY, FOK, 7, 10100, [(10000, 3, False), (10100, 4, False)], DONE, DoneReason.FILLED, False),
    ("post-only rests", SELL, POST, 4, 10000, [], OPEN, None, True),
]


@pytest.mark.parametrize(
    ("side", "kind", "size", "limit", "expected", "status", "reason", "resting"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_order_types(
    side: Side, kind: OrderType, size: int, limit: int, expected: list[tuple[int, int, bool]],
    status: OrderStatus, reason: DoneReason | None, resting: bool,
) -> None:
    eng = engine()
    o = order(side, kind, size, limit)
    fills = eng.submit(o, 7)
    assert shape(fills) == expected
    assert (o.status, o.done_reason) == (status, reason)
    assert o.filled_size == sum(f.size for f in fills)
    assert o.exchange_at == 7
    assert (o.id in eng.open_orders) is resting
    assert all(f.order_id == o.id and f.side is side and f.ts == 7 for f in fills)
    assert [f.id for f in fills] == list(range(1, len(fills) + 1))


def test_market_on_empty_side_cancels_without_fills() -> None:
    eng = engine(asks=[])
    o = order(BUY, MARKET, 1)
    assert eng.submit(o, 1) == []
    assert o.done_reason is DoneReason.CANCELLED


def test_post_only_that_would_take_is_refused_before_any_change() -> None:
    eng = engine()
    o = order(BUY, POST, 2, 10000)
    with pytest.raises(DomainError) as caught:
        eng.submit(o, 1)
    assert caught.value.code == "post_only_would_take"
    assert o.status is OrderStatus.PENDING and o.exchange_at is None
    assert eng.open_orders == {} and eng.available(SELL, 10000) == 3


def test_preview_changes_nothing() -> None:
    eng = engine()
    assert eng.preview(BUY, 5, None) == (5, INSTRUMENT.notional_atto(10000, 3) + INSTRUMENT.notional_atto(10100, 2))
    assert eng.preview(BUY, 50, 10100) == (7, INSTRUMENT.notional_atto(10000, 3) + INSTRUMENT.notional_atto(10100, 4))
    assert eng.preview(SELL, 1, 9950) == (0, 0)
    assert eng.available(SELL, 10000) == 3


# --- cancel and expiry --------------------------------------------------------------------------
def test_cancel_resting_order() -> None:
    eng = engine()
    o = order(BUY, LIMIT, 2, 9900)
    eng.submit(o, 1)
    assert eng.cancel(o.id, 5) is o
    assert (o.status, o.done_reason, o.done_at) == (DONE, DoneReason.CANCELLED, 5)
    assert o.id not in eng.open_orders
    with pytest.raises(NotFound) as again:
        eng.cancel(o.id, 6)
    assert again.value.code == "order_not_found"


def test_cancel_unknown_order() -> None:
    with pytest.raises(NotFound) as caught:
        engine().cancel(424242, 1)
    assert caught.value.code == "order_not_found"


def test_expire_with_cancel_after() -> None:
    eng = engine()
    late = order(BUY, LIMIT, 1, 9800, cancel_after=10, created_at=100 * S)
    soon = order(BUY, LIMIT, 1, 9800, cancel_after=5, created_at=100 * S)
    gone = order(SELL, LIMIT, 1, 10200, cancel_after=1, created_at=100 * S)
    forever = order(SELL, LIMIT, 1, 10200)
    for o in (late, soon, gone, forever):
        eng.submit(o, 100 * S)
    eng.cancel(gone.id, 100 * S)
    assert eng.next_expiry() == 105 * S  # the cancelled order's earlier expiry is skipped
    assert eng.expire(105 * S - 1) == []
    assert eng.expire(105 * S) == [soon]
    assert (soon.done_reason, soon.done_at) == (DoneReason.EXPIRED, 105 * S)
    assert eng.next_expiry() == 110 * S
    assert eng.expire(200 * S) == [late]
    assert eng.next_expiry() is None
    assert list(eng.open_orders) == [forever.id]


# --- queue position -----------------------------------------------------------------------------
def test_rest_joins_behind_displayed_size() -> None:
    eng = engine()
    o = order(BUY, LIMIT, 2, 9900)
    eng.submit(o, 1)
    assert eng.queue_ahead(o.id) == 5


def test_trade_at_our_price_reduces_queue_then_fills_beyond_it() -> None:
    eng = engine()
    o = order(BUY, LIMIT, 4, 9900)
    eng.submit(o, 1)
    assert eng.on_trade(9900, 3, SELL, 2) == []
    assert eng.queue_ahead(o.id) == 2
    assert eng.on_trade(9900, 3, BUY, 3) == []  # a buyer lifting asks never reaches our bid
    fills = eng.on_trade(9900, 5, SELL, 4)  # 2 left ahead of us, 3 reach us
    assert shape(fills) == [(9900, 3, True)]
    assert eng.queue_ahead(o.id) == 0 and o.remaining == 1 and o.status is OPEN


def test_one_trade_volume_is_shared_in_time_priority() -> None:
    eng = engine()
    first, second = order(SELL, LIMIT, 2, 10000), order(SELL, LIMIT, 5, 10000)
    eng.submit(first, 1)
    eng.submit(second, 2)
    eng.on_levels([], [(10000, 1)], 3)  # cancels ahead of us: both queues shrink to 1
    fills = eng.on_trade(10000, 5, BUY, 4)  # 1 queue, then 2 to first, then 2 to second
    assert [(f.order_id, f.size, f.price, f.maker) for f in fills] == [
        (first.id, 2, 10000, True), (second.id, 2, 10000, True)
    ]
    assert first.done_reason is DoneReason.FILLED and first.id not in eng.open_orders
    assert second.remaining == 3


def test_trade_through_fills_at_our_limit_as_maker() -> None:
    eng = engine()
    high, low = order(BUY, LIMIT, 2, 9900), order(BUY, LIMIT, 3, 9800)
    eng.submit(high, 1)
    eng.submit(low, 1)
    assert [(f.order_id, f.price, f.size) for f in eng.on_trade(9850, 1, SELL, 2)] == [(high.id, 9900, 1)]
    assert eng.queue_ahead(high.id) == 0 and eng.queue_ahead(low.id) == 5  # the lower bid was not reached
    fills = eng.on_trade(9700, 3, SELL, 3)  # traded through both bids: best price first, trade size caps
    assert [(f.order_id, f.price, f.size, f.maker) for f in fills] == [
        (high.id, 9900, 1, True), (low.id, 9800, 2, True)
    ]
    assert fills[0].fee == INSTRUMENT.fee_atto(INSTRUMENT.notional_atto(9900, 1), maker=True)
    assert eng.queue_ahead(low.id) == 0 and high.done_reason is DoneReason.FILLED


def test_level_shrink_reduces_queue_but_growth_does_not() -> None:
    eng = engine()
    o = order(SELL, LIMIT, 1, 10100)
    eng.submit(o, 1)
    assert eng.queue_ahead(o.id) == 4
    eng.on_levels([], [(10100, 9)], 2)
    assert eng.queue_ahead(o.id) == 4
    eng.on_levels([], [(10100, 2)], 3)
    assert eng.queue_ahead(o.id) == 2
    eng.on_levels([], [(10100, 0)], 4)
    assert eng.queue_ahead(o.id) == 0


def test_book_crossing_our_price_fills_as_maker_and_consumes() -> None:
    eng = engine()
    o = order(BUY, LIMIT, 6, 9950)
    eng.submit(o, 1)
    fills = eng.on_levels([], [(9940, 2), (9945, 1), (9990, 9)], 2)
    assert shape(fills) == [(9950, 2, True), (9950, 1, True)]  # at our price, not theirs
    assert eng.available(SELL, 9940) == 0 and eng.available(SELL, 9990) == 9
    assert eng.on_levels([(9800, 7)], [], 3) == []  # an unrelated change does not reuse the crossed asks
    more = eng.on_levels([], [(9945, 2)], 4)  # the feed changed that level: its size is new liquidity
    assert shape(more) == [(9950, 2, True)]
    assert o.filled_size == 5 and eng.available(SELL, 9940) == 0


# --- liquidity consumption ------------------------------------------------------------------------
def test_same_liquidity_never_fills_twice() -> None:
    eng = engine()
    first = eng.submit(order(BUY, MARKET, 2), 1)
    second = eng.submit(order(BUY, MARKET, 3), 2)
    assert shape(first) == [(10000, 2, False)]
    assert shape(second) == [(10000, 1, False), (10100, 2, False)]  # only 1 left at the best ask
    third = eng.submit(order(BUY, IOC, 9, 10100), 3)
    assert shape(third) == [(10100, 2, False)]
    assert eng.preview(BUY, 1, 10100) == (0, 0)


def test_consumed_level_is_available_again_after_the_feed_changes_it() -> None:
    eng = engine()
    eng.submit(order(SELL, MARKET, 5), 1)
    assert eng.available(BUY, 9900) == 0
    eng.on_levels([(9800, 6)], [], 2)  # another level: still blocked
    assert eng.available(BUY, 9900) == 0
    eng.on_levels([(9900, 4)], [], 3)
    assert eng.available(BUY, 9900) == 4
    assert shape(eng.submit(order(SELL, MARKET, 1), 4)) == [(9900, 1, False)]


def test_limit_rest_after_taking_fills_once_the_consumed_level_changes() -> None:
    eng = engine()
    o = order(BUY, LIMIT, 5, 10000)
    assert shape(eng.submit(o, 1)) == [(10000, 3, False)]
    assert eng.on_trade(10000, 1, BUY, 2) == []  # trades do not refresh consumed liquidity
    assert shape(eng.on_levels([], [(10000, 1)], 3)) == [(10000, 1, True)]


# --- fees --------------------------------------------------------------------------------------------
def test_fees_exact_maker_and_taker_round_up_in_atto() -> None:
    # price and size decimals add up to 18, so one price unit x one size unit is one ATTO
    inst = Instrument(
        exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=10, size_decimals=8,
        maker_fee=Instrument.fee_rate("0.0002"), taker_fee=Instrument.fee_rate("0.001"),
    )
    eng = MatchingEngine(inst, IdSequence(41))
    eng.on_snapshot([(12000, 50)], [(12345, 3)], 0)
    (taker,) = eng.submit(order(BUY, MARKET, 3), 1)
    assert (taker.id, taker.notional, taker.fee, taker.maker) == (42, 37035, 38, False)  # 37.035 rounds up
    resting = order(SELL, LIMIT, 3, 12345)
    eng.submit(resting, 2)
    (maker,) = eng.on_trade(12346, 3, BUY, 3)  # traded through our ask
    assert (maker.notional, maker.fee, maker.maker) == (37035, 8, True)  # 7.407 rounds up
    assert resting.fee == 8 and resting.filled_notional == 37035


def test_fee_on_the_usual_instrument_is_a_tenth_of_a_percent() -> None:
    inst = Instrument(exchange="paper", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5)
    eng = MatchingEngine(inst, IdSequence())
    eng.on_snapshot([], [(6_000_000, 100_000)], 0)  # 1 BTC at 60,000.00
    (fill,) = eng.submit(order(BUY, MARKET, 50_000), 1)
    assert fill.notional == 30_000 * 10**18 and fill.fee == 30 * 10**18


# --- snapshots and the fast path --------------------------------------------------------------------
def test_snapshot_resets_consumption() -> None:
    eng = engine()
    eng.submit(order(BUY, MARKET, 3), 1)
    assert eng.available(SELL, 10000) == 0
    assert eng.on_snapshot(BIDS, ASKS, 2) == []
    assert eng.available(SELL, 10000) == 3
    assert shape(eng.submit(order(BUY, MARKET, 1), 3)) == [(10000, 1, False)]


def test_snapshot_shortens_queues_and_fills_orders_it_crosses() -> None:
    eng = engine()
    near, far = order(SELL, LIMIT, 2, 10100), order(SELL, LIMIT, 2, 10200)
    eng.submit(near, 1)
    eng.submit(far, 1)
    assert (eng.queue_ahead(near.id), eng.queue_ahead(far.id)) == (4, 10)
    fills = eng.on_snapshot([(10120, 1), (9900, 5)], [(10150, 1), (10200, 3)], 2)
    assert shape(fills) == [(10100, 1, True)]  # the new best bid reaches our ask: filled at our price
    assert not eng.book.is_crossed()
    assert (eng.queue_ahead(near.id), eng.queue_ahead(far.id)) == (0, 3)
    assert eng.available(BUY, 10120) == 0 and near.remaining == 1


def test_fast_path_only_moves_the_book() -> None:
    eng = engine()
    assert eng.on_levels([(9950, 2)], [(10000, 0)], 1) == []
    assert eng.book.best_bid() == 9950 and eng.book.best_ask() == 10100


def test_restore_and_clear_orders() -> None:
    eng = engine()
    o = order(BUY, LIMIT, 2, 9900)
    eng.submit(o, 1)
    eng.clear_orders()
    assert eng.open_orders == {} and eng.on_trade(9800, 9, SELL, 2) == []
    eng.restore(o)
    assert eng.queue_ahead(o.id) == 5
    assert shape(eng.on_trade(9800, 9, SELL, 3)) == [(9900, 2, True)]


# --- recorded Binance BTCUSDT data -------------------------------------------------------------------
def _decimal_levels(rows: list[list[str]]) -> list[tuple[int, int]]:
    return [(to_units(p, 2), to_units(q, 8)) for p, q in rows]


def test_replay_of_recorded_binance_book_keeps_every_invariant() -> None:
    path = shared_data("binance-spot-l2", "btcusdt_20240808.gz")
    inst = Instrument(
        exchange="binance", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=8
    )
    eng = MatchingEngine(inst, IdSequence())
    orders: list[Order] = []
    fills: list[Fill] = []
    last_id = None
    with gzip.open(path, "rt") as lines:
        for n, line in enumerate(lines):
            if n > 4000:
                break
            ts_text, payload = line.split(" ", 1)
            ts = int(ts_text)
            msg = json.loads(payload)
            if "lastUpdateId" in msg:
                last_id = msg["lastUpdateId"]
                fills += eng.on_snapshot(_decimal_levels(msg["bids"]), _decimal_levels(msg["asks"]), ts)
                continue
            data = msg["data"]
            if last_id is None:
                continue
            if data.get("e") == "depthUpdate" and data["u"] > last_id:
                fills += eng.on_levels(_decimal_levels(data["b"]), _decimal_levels(data["a"]), ts)
                assert not eng.book.is_crossed()
            elif data.get("e") == "trade":
                size = to_units(data["q"], 8)
                got = eng.on_trade(to_units(data["p"], 2), size, SELL if data["m"] else BUY, ts)
                assert sum(f.size for f in got) <= size
                fills += got
            if n % 50 == 0:  # a few resting orders at the touch, alternating sides, plus a small market order
                side = BUY if n % 100 else SELL
                best = eng.book.best_bid() if side is BUY else eng.book.best_ask()
                if best is not None:
                    o = order(side, LIMIT, 200_000, best)
                    orders.append(o)
                    fills += eng.submit(o, ts)
                    m = order(side.opposite, MARKET, 50_000)
                    orders.append(m)
                    fills += eng.submit(m, ts)
    assert last_id is not None
    makers = [f for f in fills if f.maker]
    assert makers and len(fills) > len(makers)  # the recorded flow reached our queues
    by_order: dict[int, int] = {}
    for f in fills:
        by_order[f.order_id] = by_order.get(f.order_id, 0) + f.size
        assert f.fee == inst.fee_atto(inst.notional_atto(f.price, f.size), f.maker)
    for o in orders:
        assert by_order.get(o.id, 0) == o.filled_size <= o.size
        assert (o.id in eng.open_orders) is (o.status is OPEN)
