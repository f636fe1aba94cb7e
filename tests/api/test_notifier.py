"""The Notifier delivers an order's notifications to the connection that placed it, in the order they were published."""

from __future__ import annotations

import asyncio
import json

from coinwire.api.context import CallContext
from coinwire.api.notifier import Notifier
from coinwire.bus import MemoryBus
from coinwire.messages import FillEvent, OrderUpdate, subject

ORDER = subject("order", "demo", "BTC/USDT")
FILL = subject("fill", "demo", "BTC/USDT")


class Connection:
    """What one WebSocket connection receives, decoded."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str | None]] = []
        self.ctx = CallContext("rpc", self.send)

    async def send(self, data: bytes) -> None:
        message = json.loads(data)
        params = message["params"]
        self.received.append((message["method"], params["client_order_id"], params.get("status")))


async def _settled(bus: MemoryBus) -> None:
    for _ in range(200):
        await asyncio.sleep(0.002)
        if all(s.inbox.pending == 0 for s in bus._subscriptions):
            return


async def test_a_done_orders_trades_reach_its_connection_before_its_done_even_behind_other_orders() -> None:
    """Another order's update published first must not let `done` overtake the trades (it forgets the connection).

    With one subscription per subject kind, the `order` inbox, woken first by the resting
    order's update, delivered the market order's `done` before the `fill` inbox delivered its
    trades, which then had no connection to go to: about half the trades of concurrent market
    orders were never pushed.
    """
    bus = MemoryBus()
    await bus.start()
    notifier = Notifier(bus)
    await notifier.start()
    resting, market = Connection(), Connection()
    try:
        for conn, oid in ((resting, "limit-1"), (market, "market-1")):
            notifier.add(conn.ctx)
            notifier.note_origin(oid, conn.ctx)
        # one event-loop turn, as the gateway publishes after a group commit answers two orders
        await bus.publish(ORDER, OrderUpdate({"client_order_id": "limit-1", "status": "open"}))
        await bus.publish(FILL, FillEvent({"client_order_id": "market-1", "id": 1}))
        await bus.publish(FILL, FillEvent({"client_order_id": "market-1", "id": 2}))
        await bus.publish(ORDER, OrderUpdate({"client_order_id": "market-1", "status": "done"}))
        await _settled(bus)
        assert market.received == [("trade", "market-1", None), ("trade", "market-1", None), ("order", "market-1", "done")]
        assert resting.received == [("order", "limit-1", "open")]
        assert "market-1" not in notifier.origins[None] and "limit-1" in notifier.origins[None]  # done forgets, open remembers
    finally:
        await notifier.close()
        await bus.close()
