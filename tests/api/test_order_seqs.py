"""Each account's order and trade notifications carry consecutive `seq`s, one notification each, reaching the bus in order.

On the in-process bus and on NATS JetStream (tests/api/conftest.py `bus_server`), with a
connection of the user following while another places orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

IN_FLIGHT = 16  # orders the placing connection keeps outstanding


async def drain(client: RpcClient, quiet: float) -> list[tuple[str, Any]]:
    """Every order and trade notification that arrives until none has for `quiet` seconds."""
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            method, params = await asyncio.wait_for(client.notifications.get(), quiet)
            if method in ("order", "trade"):
                got.append((method, params))
    return got


async def test_concurrent_market_orders_notify_each_account_in_seq_order(bus_server: ServerProcess) -> None:
    """A command's fills and order update go out together: over NATS each publish waited for its ack, and another
    command's came between them (and on the in-process bus at its every 1024th publish, where it lets others run)."""
    url = f"{bus_server.ws_anonymous}?access_token={bus_server.traders('tom')['tom']}"
    async with RpcClient(url) as placer, RpcClient(url) as follower:
        await follower.call("get_status")
        sem = asyncio.Semaphore(IN_FLIGHT)

        async def one() -> dict[str, Any]:
            async with sem:
                return dict(await placer.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market",
                                              size="0.001"))

        views = await asyncio.gather(*(one() for _ in range(1_000)))
        got = await drain(follower, 0.5)
    seqs = [p["seq"] for _, p in got]
    assert sum(1 for m, _ in got if m == "order") == 1_000 and sum(1 for m, _ in got if m == "trade") >= 1_000
    assert seqs == list(range(1, len(seqs) + 1)) and max(v["seq"] for v in views) == len(seqs)


async def test_orders_the_feed_fills_while_they_commit_keep_one_notification_per_seq_in_order(
    bus_server: ServerProcess,
) -> None:
    """Limits at the touch rest, then the demo feed trades against them, often before their placement is committed.

    The placement's notification took a seq, the fill and the order's update the next two; the
    placement's went out with the order's latest seq instead (one seq twice, one never), and
    behind the later ones.
    """
    url = f"{bus_server.ws_anonymous}?access_token={bus_server.traders('tess')['tess']}"
    async with RpcClient(url) as placer, RpcClient(url) as follower:
        await follower.call("get_status")
        await placer.call("get_status")
        sem = asyncio.Semaphore(IN_FLIGHT)

        async def one(n: int) -> int | None:
            async with sem:
                touch = (await placer.call("get_pricing", exchange="demo"))["BTC_USDT"]
                side, price = ("buy", touch["bid"]) if n % 2 else ("sell", touch["ask"])
                try:
                    view = await placer.call("make_order", exchange="demo", pair="BTC_USDT", side=side, type="limit", size="0.001",
                                             limit=price)
                except RpcError:  # a touch that moved away: post as it may, funds are plenty
                    return None
                return int(view["seq"])

        placed = [seq for seq in await asyncio.gather(*(one(n) for n in range(600))) if seq is not None]
        await asyncio.sleep(1.0)  # the feed fills some more
        got = await drain(follower, 0.5)
    seqs = [p["seq"] for _, p in got]
    assert len(placed) > 500 and sum(1 for m, _ in got if m == "trade") > 20  # the feed did trade against them
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), [b for a, b in itertools.pairwise(seqs) if b != a + 1][:10]
