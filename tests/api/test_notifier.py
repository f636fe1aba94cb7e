"""The Notifier delivers an order's notifications to the connection that placed it, in the order they were published;
market data and echo never wait for a receiver, and receivers follow subscription changes; a connection's order and
trade notifications can be held back and released in order (a replay's seam)."""

from __future__ import annotations

import asyncio
import json

from coinwire.api.context import CallContext
from coinwire.api.notifier import Notifier, PushLimits, notification, plain_event
from coinwire.bus import MemoryBus
from coinwire.bus.subjects import SubjectFilter
from coinwire.messages import FillEvent, OrderUpdate, subject
from tests.events import fill_view, order_view

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
        await bus.publish(ORDER, OrderUpdate(order_view(client_order_id="limit-1", status="open")))
        await bus.publish(FILL, FillEvent(fill_view(client_order_id="market-1", id=1)))
        await bus.publish(FILL, FillEvent(fill_view(client_order_id="market-1", id=2)))
        await bus.publish(ORDER, OrderUpdate(order_view(client_order_id="market-1", status="done")))
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


# --- holding a connection's order and trade notifications back ---------------------------------------
class Follower:
    """A connection following account 7 (as `subscribe(account=7)` makes it), recording (method, seq) as pushed."""

    def __init__(self, notifier: Notifier) -> None:
        self.pushed: list[tuple[str, int]] = []
        self.ctx = CallContext("rpc", self.send, push=self.push)
        self.ctx.followed.add(7)
        notifier.add(self.ctx)

    async def send(self, data: bytes) -> None:
        self.push(data)

    def push(self, data: bytes) -> None:
        message = json.loads(data)
        self.pushed.append((message["method"], message["params"]["seq"]))


def _update(seq: int, account: int = 7) -> OrderUpdate:
    return OrderUpdate(order_view(client_order_id=f"o{seq}", status="open", seq=seq, account=account), None, account, seq)


def _fill(seq: int, account: int = 7) -> FillEvent:
    return FillEvent(fill_view(client_order_id=f"o{seq}", seq=seq, account=account), None, account, seq)


async def test_a_hold_keeps_an_accounts_notifications_back_in_order_and_release_skips_what_it_is_told() -> None:
    bus = MemoryBus()
    notifier = Notifier(bus)
    await notifier.start()
    held, free = Follower(notifier), Follower(notifier)
    try:
        notifier.hold(held.ctx, 7)
        for seq in (1, 2, 3):
            await bus.publish("order.7.demo.usdt.btc", _update(seq))
        await bus.publish("fill.7.demo.usdt.btc", _fill(4))
        assert held.pushed == [] and free.pushed == [("order", 1), ("order", 2), ("order", 3), ("trade", 4)]
        released = notifier.release(held.ctx, skip=lambda channel, seq: channel == "order" and seq <= 2)
        assert released is not None and [i[1] for i in released.items] == [1, 2, 3, 4]
        assert held.pushed == [("order", 3), ("trade", 4)]
        await bus.publish("order.7.demo.usdt.btc", _update(5))  # no longer held
        assert held.pushed[-1] == ("order", 5) and notifier.release(held.ctx) is None
    finally:
        await notifier.close()
        await bus.close()


async def test_whether_an_accounts_notifications_may_have_reached_a_connection_since_it_was_added() -> None:
    bus = MemoryBus()
    notifier = Notifier(bus)
    await notifier.start()
    try:
        await bus.publish("order.7.demo.usdt.btc", _update(1))
        conn = Follower(notifier)  # added after account 7's first notification, before account 8's
        assert not notifier.reached_since_added(conn.ctx, 7) and not notifier.reached_since_added(conn.ctx, 8)
        await bus.publish("fill.8.demo.usdt.btc", _fill(1, 8))
        assert notifier.reached_since_added(conn.ctx, 8) and not notifier.reached_since_added(conn.ctx, 7)
        await bus.publish("order.7.demo.usdt.btc", _update(2))
        assert notifier.reached_since_added(conn.ctx, 7)
    finally:
        await notifier.close()
        await bus.close()


async def test_a_hold_past_the_unread_limit_drops_its_connection_and_keeps_nothing() -> None:
    bus = MemoryBus()
    notifier = Notifier(bus, PushLimits(max_unread_bytes=2_000))
    await notifier.start()
    replaying, other = Follower(notifier), Follower(notifier)
    dropped: list[int] = []
    replaying.ctx.drop = lambda: dropped.append(replaying.ctx.connection_id)
    try:
        hold = notifier.hold(replaying.ctx, 7)
        for seq in range(1, 40):
            await bus.publish("order.7.demo.usdt.btc", _update(seq))
        assert hold.overflowed and hold.items == [] and dropped == [replaying.ctx.connection_id]
        notifier.release(replaying.ctx)
        assert replaying.pushed == []  # what it kept is gone with it
        assert other.pushed == [("order", seq) for seq in range(1, 40)]  # nobody else waited for it
    finally:
        await notifier.close()
        await bus.close()


def test_plain_event_is_the_notifications_object_with_its_channel_in_front() -> None:
    view = {"id": 5, "type": "limit", "account": 7, "seq": 42, "size": "0.001", "nested": {"a": [1, 2]}}
    plain = json.loads(plain_event(notification("order", view)))
    assert plain == {"channel": "order", **view} and next(iter(plain)) == "channel"
    assert json.loads(plain_event(notification("trade", {}))) == {"channel": "trade"}
