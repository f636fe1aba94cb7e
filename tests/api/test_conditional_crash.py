"""SIGKILL a real server holding conditional orders: after the restart each is there once, armed, holding what it held.

A trader places, on the demo exchange, a stop-market sell and a stop-limit buy far from the
market, an OCO, a bracket whose limit parent rests (its children's spec waits on it), a
bracket whose market parent filled (its two children placed), and two trailing stops that
activate 5 basis points away from the market with a one-tick distance. Then the server is
killed with SIGKILL (no shutdown). After the restart: the same orders are open, once each, in
the same states and levels, OCO and bracket links intact, and the account's balances and holds
are exactly what they were. The demo market walks about 2 bp a second, so one of the two
trailing stops activates and fires within seconds: they are armed. Cancelling every other
order then frees every hold. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from coinwire.api.client import RpcClient
from tests.server import ServerProcess

SIZE = "0.01"


def _price(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _open(orders: list[dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    fields = ("type", "side", "status", "size", "limit", "stop_price", "trailing_delta", "activation_price", "oco_id", "parent_id")
    return {o["id"]: tuple(o[f] for f in fields) for o in orders}


async def _wallets(rpc: RpcClient) -> dict[str, Any]:
    """The account's USDT and BTC: balances and holds (not their value at the moving market price)."""
    wallets = {c: await rpc.call("get_wallet", exchange="demo", currency=c) for c in ("USDT", "BTC")}
    return {c: {k: v for k, v in w.items() if k != "present_value"} for c, w in wallets.items()}


async def test_conditional_orders_survive_a_sigkill_once_each_armed_and_holding_what_they_held(
        tmp_path: Path, store_env: dict[str, str]) -> None:
    server = ServerProcess(tmp_path, env=store_env)
    server.start()
    try:
        token = server.traders("tom")["tom"]
        url = f"{server.ws_anonymous}?access_token={token}"
        async with RpcClient(url) as rpc:
            pricing = (await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]
            bid, ask = Decimal(pricing["bid"]), Decimal(pricing["ask"])
            order = {"exchange": "demo", "pair": "BTC_USDT", "size": SIZE}
            placed = [
                await rpc.call("make_order", **order, side="sell", type="stop-market", stop_price=_price(bid * Decimal("0.9"))),
                await rpc.call("make_order", **order, side="buy", type="stop-limit", stop_price=_price(ask * Decimal("1.1")),
                               limit=_price(ask * Decimal("1.11"))),
                *await rpc.call("make_oco", **order, side="sell", limit=_price(ask * Decimal("1.1")),
                                stop_price=_price(bid * Decimal("0.9"))),
                await rpc.call("make_order", **order, side="buy", type="limit", limit=_price(bid * Decimal("0.8")),
                               take_profit={"limit": _price(ask * Decimal("1.2"))},
                               stop_loss={"stop_price": _price(bid * Decimal("0.7"))}),
            ]
            parent = await rpc.call("make_order", **order, side="buy", type="market",
                                    take_profit={"stop_price": _price(ask * Decimal("1.1")), "type": "take-profit-market"},
                                    stop_loss={"stop_price": _price(bid * Decimal("0.9"))})
            up = await rpc.call("make_order", **order, side="sell", type="trailing-stop", trailing_delta="0.01",
                                activation_price=_price(ask * Decimal("1.0005")))
            down = await rpc.call("make_order", **order, side="buy", type="trailing-stop", trailing_delta="0.01",
                                  activation_price=_price(bid * Decimal("0.9995")))
            before = _open(await rpc.call("list_open_orders"))
            wallets = await _wallets(rpc)
        server.kill()  # no shutdown: what was committed is all that survives

        assert parent["status"] == "done" and parent["filled_size"] == SIZE
        children = [i for i, o in before.items() if o[-1] == parent["id"]]
        assert len(children) == 2 and {before[i][2] for i in children} == {"untriggered"}
        assert {before[i][0] for i in children} == {"take-profit-market", "stop-market"}
        expected = {o["id"] for o in placed} | set(children) | {up["id"], down["id"]}
        assert set(before) == expected and {o[2] for o in before.values()} == {"untriggered", "open"}

        server.start()
        async with RpcClient(url) as rpc:
            listed = await rpc.call("list_open_orders")
            assert len(listed) == len({o["id"] for o in listed})  # each once
            assert _open(listed) == before  # same states, levels and links
            restored = await _wallets(rpc)
            assert restored == wallets  # holding what they held, nothing more moved
            for _ in range(600):  # one of the two trailing stops activates as the market moves 5 bp, then fires
                still = {o["id"] for o in await rpc.call("list_open_orders")}
                if not {up["id"], down["id"]} <= still:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("neither trailing stop fired within a minute")
            fired = up if up["id"] not in still else down
            btc = (await _wallets(rpc))["BTC"]
            assert btc != wallets["BTC"], f"order {fired['id']} left without trading"
            cancels = 0
            while listed := await rpc.call("list_open_orders"):  # a cancel of an OCO leg (a bracket's child) ends its list
                cancelled = await rpc.call("cancel_order", order_id=listed[0]["id"])
                assert cancelled["status"] == "done"
                cancels += 1
            assert cancels == len(before) - 1 - 2  # two lists: a leg each ends the other
            after = await _wallets(rpc)
            assert all(Decimal(w["hold"]) == 0 for w in after.values()), after
    finally:
        server.stop()
