"""The path inside a candle (venues/intrabar.py): properties over any bar and any exits of a long."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from coinwire.core.orders import Order, OrderStatus, OrderType, Side
from coinwire.venues.intrabar import first_hit, path


def exit_order(oid: int, kind: OrderType, level: int = 0, trail_delta: int = 0) -> Order:
    return Order(id=oid, client_oid=f"c{oid}", exchange="x", symbol="BTC/USDT", side=Side.SELL, type=kind, size=1, stop_price=level,
                 trail_delta=trail_delta, status=OrderStatus.UNTRIGGERED)


@st.composite
def bar_and_levels(draw: st.DrawFn) -> tuple[tuple[int, int, int, int], int, int]:
    o, c = draw(st.integers(50, 150)), draw(st.integers(50, 150))
    h = draw(st.integers(max(o, c), 200))
    low = draw(st.integers(1, min(o, c)))
    stop = draw(st.integers(1, 199))
    take = draw(st.integers(stop + 1, 200))
    return (o, h, low, c), stop, take


def outcome(mode: str, bar: tuple[int, int, int, int], stop: int, take: int) -> tuple[OrderType, int] | None:
    legs = [exit_order(1, OrderType.TAKE_PROFIT_MARKET, take), exit_order(2, OrderType.STOP_MARKET, stop)]
    hit = first_hit(legs, path(mode, Side.SELL, *bar), 1)
    return None if hit is None else (hit.order.type, hit.price)


@given(bar_and_levels())
def test_pessimistic_never_exits_a_long_better_than_a_fixed_path(case: tuple[tuple[int, int, int, int], int, int]) -> None:
    bar, stop, take = case
    worst = outcome("pessimistic", bar, stop, take)
    fixed = [outcome(mode, bar, stop, take) for mode in ("ohlc", "olhc")]
    assert (worst is None) == all(f is None for f in fixed)  # whether anything fires does not depend on the path
    if worst is not None:
        assert all(f is not None and worst[1] <= f[1] for f in fixed)
        o, h, low, _ = bar
        assert low <= worst[1] <= max(h, o)  # a fill is a price the bar traded (a gap fills at the open)
        if low <= stop <= h and low <= take <= h and o > stop and o < take:
            assert worst == (OrderType.STOP_MARKET, stop)  # both inside: stopped out


@given(st.integers(50, 150), st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=30),
       st.integers(1, 20))
def test_a_trailing_stop_never_moves_back_and_fires_once(start: int, moves: list[tuple[int, int, int]], delta: int) -> None:
    order = exit_order(1, OrderType.TRAILING_STOP, trail_delta=delta)
    levels = []
    price, fired = start, 0
    for up, down, back in moves:  # bars from the last close: up, down, then back up a little
        o = price
        h, low = o + up, max(1, o - down)
        c = min(h, low + back)
        if order.status is OrderStatus.UNTRIGGERED:
            hit = first_hit([order], path("pessimistic", Side.SELL, o, h, low, c), 1)
            if hit is not None:
                order.status = OrderStatus.TRIGGERED
                fired += 1
                assert low <= hit.price <= h  # a price the bar traded
            levels.append(order.stop_price)
        price = c
    assert fired <= 1 and levels == sorted(levels)
