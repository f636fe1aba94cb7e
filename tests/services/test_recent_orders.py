"""The idempotency window keeps the newest done orders, at most `size`, none older than its age."""

from __future__ import annotations

from coinwire.core.orders import Order, OrderType, Side
from coinwire.services.recent_orders import RecentOrders

SECOND = 1_000_000_000


def order(i: int, owner: int | None = 7) -> Order:
    return Order(id=i, client_oid=f"c{i}", exchange="demo", symbol="BTC/USDT", side=Side.BUY, type=OrderType.MARKET,
                 size=1, limit=0, owner_id=owner)


def test_the_window_is_bounded_by_count_and_age_and_keyed_per_owner() -> None:
    window = RecentOrders(size=3, seconds=10)
    for i in range(5):
        window.add(order(i), now=i * SECOND)
    assert len(window) == 3 and window.get(7, "c1") is None and window.get(7, "c4") is not None
    assert window.get(8, "c4") is None  # another owner's key space
    window.add(order(5, owner=None), now=13 * SECOND + 1)  # c2 (t=2) and c3 (t=3) are older than 10 s now
    assert [window.get(7, f"c{i}") is not None for i in (2, 3, 4)] == [False, False, True]
    assert window.get(None, "c5") is not None and len(window) == 2
    window.expire(100 * SECOND)
    assert len(window) == 0
    off = RecentOrders(size=0, seconds=10)
    off.add(order(1), now=0)
    assert len(off) == 0
