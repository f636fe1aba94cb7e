"""The Notifier delivers an order's notifications to the connection that placed it, in the order they were published;
market data and echo never wait for a receiver, and receivers follow subscription changes."""

from __future__ import annotations

import asyncio
import json

from coinwire.api.context import CallContext
from coinwire.api.notifier import Notifier
from coinwire.bus import MemoryBus
from coinwire.bus.subjects import SubjectFilter
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


class _View:
    """A latest price as the ticker service hands it to listeners (`services.tickers.TickerView`)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def to_public(self, now_ns: int) -> dict[str, int]:
        return {"n": self.n}


async def test_a_receiver_that_never_takes_its_notifications_delays_no_one_else() -> None:
    """Before: tickers, public trades and echo were awaited for every receiver (gathered), so one stuck send stopped all.

    Now they are offered or pushed to each connection and never waited for; while the stuck
    connection's sender is busy its market data waits as each subject's latest only.
    """
    bus = MemoryBus()
    notifier = Notifier(bus)
    stuck_sends: list[bytes] = []
    never = asyncio.Event()

    async def stuck(data: bytes) -> None:
        stuck_sends.append(data)
        await never.wait()

    fast: list[dict[str, object]] = []

    async def quick(data: bytes) -> None:
        fast.append(json.loads(data))

    slow_ctx, fast_ctx = CallContext("rpc", stuck), CallContext("rpc", quick)
    for ctx in (slow_ctx, fast_ctx):
        notifier.add(ctx)
        await notifier.listen(ctx, ["ticker", "public_trades"])
    subjects = ("ticker.demo.usdt.btc", "ticker.demo.usdt.eth")
    for n in range(1_000):
        async with asyncio.timeout(5):
            await notifier.on_ticker(subjects[n % 2], _View(n))
            await notifier.on_public_trade("trade.demo.usdt.btc", {"id": n})
            if n % 100 == 0:
                assert await notifier.broadcast("echo_ret", {"n": n}) == 2
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert sum(1 for m in fast if m["method"] == "ticker") == 1_000
    assert sum(1 for m in fast if m["method"] == "public_trades") == 1_000
    assert len(stuck_sends) == 1  # its first message is still being sent; nothing else was waited for
    never.set()
    await asyncio.sleep(0.01)
    delivered = [json.loads(m) for m in stuck_sends]
    latest = [m["params"]["n"] for m in delivered if m["method"] == "ticker"]
    assert latest[-2:] in ([998, 999], [999, 998]) and len(delivered) < 100  # each subject's latest, and every echo


async def test_who_receives_a_ticker_follows_subscription_changes() -> None:
    """Receivers are worked out once per subject: a new pattern, channel or connection must be seen at once."""
    notifier = Notifier(MemoryBus())
    got: list[int] = []

    async def send(data: bytes) -> None:
        got.append(json.loads(data)["params"]["n"])

    ctx = CallContext("rpc", send)
    notifier.add(ctx)
    await notifier.listen(ctx, ["ticker"])
    ctx.ticker_patterns = SubjectFilter(["ticker.demo.usdt.eth"])
    await notifier.listen(ctx, [])
    await notifier.on_ticker("ticker.demo.usdt.btc", _View(1))
    ctx.ticker_patterns = SubjectFilter(["ticker.demo.*.btc"])
    await notifier.listen(ctx, [])  # how `subscribe` applies new patterns
    await notifier.on_ticker("ticker.demo.usdt.btc", _View(2))
    notifier.unlisten(ctx, ["ticker"])
    await notifier.on_ticker("ticker.demo.usdt.btc", _View(3))
    await notifier.listen(ctx, ["ticker"])
    await notifier.on_ticker("ticker.demo.usdt.btc", _View(4))
    notifier.remove(ctx)
    await notifier.on_ticker("ticker.demo.usdt.btc", _View(5))
    await asyncio.sleep(0.01)
    assert got == [2, 4]
