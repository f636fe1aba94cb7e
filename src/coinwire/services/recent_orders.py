"""The idempotency window: orders done lately, by (owner, client_oid), answered without a store read.

A client retrying a request it got no answer to does so within seconds; a window of the newest
done orders (at most `size`, none older than `seconds`) answers those repeats from memory. The
gateway finds orders not done in its own index, and any other key through its client_oid
filter and the store (the unique (owner_id, client_oid) index): a repeat older than the window
answers the same order, one read later. Memory is bounded by `size`, whatever the history.
"""

from __future__ import annotations

from collections import OrderedDict

from coinwire.core.orders import Order

__all__ = ["RecentOrders"]

_Key = tuple[int | None, str]


class RecentOrders:
    """Done orders by (owner_id, client_oid), oldest first; `add` evicts past `size` entries or `seconds` of age."""

    __slots__ = ("size", "max_age", "_orders")

    def __init__(self, size: int, seconds: float) -> None:
        if size < 0 or seconds < 0:
            raise ValueError("an idempotency window needs a size and an age of at least 0")
        self.size = size
        self.max_age = int(seconds * 1e9)
        self._orders: OrderedDict[_Key, tuple[int, Order]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, order: Order, now: int) -> None:
        """Keep a done order (its latest state) from `now` (ns), dropping what falls out of the window."""
        if self.size == 0:
            return
        key = (order.owner_id, order.client_oid)
        orders = self._orders
        orders[key] = (now, order)
        orders.move_to_end(key)
        while len(orders) > self.size:
            orders.popitem(last=False)
        self.expire(now)

    def expire(self, now: int) -> None:
        """Drop the entries older than the window's age."""
        orders, oldest = self._orders, now - self.max_age
        while orders:
            ts, _ = next(iter(orders.values()))
            if ts >= oldest:
                return
            orders.popitem(last=False)

    def get(self, owner_id: int | None, client_oid: str) -> Order | None:
        found = self._orders.get((owner_id, client_oid))
        return found[1] if found is not None else None

    def clear(self) -> None:
        self._orders.clear()
