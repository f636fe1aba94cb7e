"""A trader's recent orders are their own newest N: others' orders neither crowd them out nor can be counted through the limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from coinwire.api.client import RpcClient
from tests.server import ServerProcess


async def _place_and_cancel(rpc: RpcClient, params: dict[str, Any]) -> int:
    order = await rpc.call("make_order", **params)
    await rpc.call("cancel_order", order_id=order["id"])
    return int(order["id"])


async def test_recent_orders_are_the_callers_newest_before_the_limit(tmp_path: Path, store_env: dict[str, str]) -> None:
    server = ServerProcess(tmp_path, env=store_env)
    server.start()
    try:
        tokens = server.traders("alice", "bob")
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['alice']}") as alice, \
                RpcClient(f"{server.ws_anonymous}?access_token={tokens['bob']}") as bob:
            bid = float((await alice.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
            params = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.001", "limit": f"{bid * 0.5:.2f}"}
            first = await _place_and_cancel(alice, params)
            bobs = [await _place_and_cancel(bob, params) for _ in range(3)]
            resting = await bob.call("make_order", **params)  # one of bob's still open: include_open must not count it either
            for limit in (1, 2, 3, 4):
                assert [o["id"] for o in await alice.call("list_recent_orders", limit=limit)] == [first], limit
                assert [o["id"] for o in await alice.call("list_recent_orders", limit=limit, include_open=True)] == [first], limit
            second = await _place_and_cancel(alice, params)
            assert [o["id"] for o in await alice.call("list_recent_orders", limit=1)] == [second]
            assert [o["id"] for o in await alice.call("list_recent_orders", limit=2)] == [second, first]
            assert [o["id"] for o in await bob.call("list_recent_orders", limit=2)] == [bobs[2], bobs[1]]
            assert [o["id"] for o in await bob.call("list_recent_orders", limit=1, include_open=True)] == [resting["id"]]
            assert [o["id"] for o in await alice.call("list_open_orders")] == []
            assert [o["id"] for o in await bob.call("list_open_orders")] == [resting["id"]]
        r = httpx.get(server.http + "/xwrap/v1/orders/recent", params={"limit": 1},
                      headers={"Authorization": f"Bearer {tokens['alice']}"})
        assert r.status_code == 200 and [o["id"] for o in r.json()] == [second], r.text
        async with RpcClient(server.ws) as admin:  # admins still see everyone's
            assert [o["id"] for o in await admin.call("list_recent_orders", limit=3)] == [second, bobs[2], bobs[1]]
            assert [o["id"] for o in await admin.call("list_recent_orders", limit=1, include_open=True)] == [second]
    finally:
        server.stop()
