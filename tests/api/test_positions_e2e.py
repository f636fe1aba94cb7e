"""Perpetual positions end to end on a real server with a paper perpetual market: the methods, the core's refusals at the edge,
/ws/positions with a reconnect that misses nothing, two users and a viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websockets

from coinwire.api.client import RpcClient
from tests.api.signed_in import code_of, http, rpc
from tests.server import ServerProcess

PERP = "BTC_USDT:USDT"
EXCHANGES = [{"name": "demo", "feed": "demo", "tick_interval": 0.05, "seed": 11, "symbols": ["BTC/USDT", "BTC/USDT:USDT"],
              "paper_funds": {"USDT": "100000"}}]
USERS = {"pia": "trader", "pol": "trader", "vik": "viewer"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("perp-e2e")), exchanges=EXCHANGES)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    return server.users(USERS)



def positions_ws(server: ServerProcess, token: str, **query: int) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"ws://127.0.0.1:{server.port}/ws/positions?access_token={token}{extra}"




async def frames_until(ws: Any, done: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while not got or not done(got[-1]):
        got.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return got


async def own_account(client: RpcClient) -> int:
    return int((await client.call("get_wallet", exchange="demo", currency="USDT"))["account"])


def market(side: str, size: str, **extra: Any) -> dict[str, Any]:
    return {"exchange": "demo", "pair": PERP, "side": side, "type": "market", "size": size, **extra}


async def test_a_position_through_its_life_over_rpc_rest_and_ws_positions(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with rpc(server, tokens["pia"]) as pia:
        account = await own_account(pia)
        (demo,) = await pia.call("get_exchanges")
        sources = {m["symbol"]: m.get("mark_price_source") for m in demo["markets"]}
        assert sources == {"BTC/USDT": None, "BTC/USDT:USDT": "feed's own"}  # the demo feed sends marks; spot has none
        settings = await pia.call("set_leverage", exchange="demo", pair=PERP, leverage=5)
        assert settings == {"account": account, "exchange": "demo", "symbol": "BTC/USDT:USDT", "leverage": 5, "margin_mode": "cross"}
        assert (await pia.call("set_margin_mode", exchange="demo", pair=PERP, mode="isolated"))["margin_mode"] == "isolated"
        assert await code_of(pia, "set_leverage", exchange="demo", pair=PERP, leverage=1000) == "leverage_above_maximum"
        assert await code_of(pia, "make_order", **market("sell", "0.01", reduce_only=True)) == "reduce_only_would_open"
        assert await code_of(pia, "make_order", **market("buy", "0.01", position_side="long")) == "position_side_in_one_way_mode"
        assert await code_of(pia, "make_order", **market("buy", "1000")) == "insufficient_margin"
        assert await code_of(pia, "close_position", exchange="demo", pair=PERP) == "no_position"
        witness_ws = await websockets.connect(positions_ws(server, tokens["pia"], account=account))  # connected throughout
        async with websockets.connect(positions_ws(server, tokens["pia"], account=account)) as live:
            bought = await pia.call("make_order", **market("buy", "0.02"))
            first = await frames_until(live, lambda f: f["channel"] == "positions_updated" and f["size"] == "0.02")
            seen = first[-1]
            assert (seen["side"], seen["margin_mode"], seen["leverage"], seen["account"]) == ("long", "isolated", 5, account)
            assert seen["liquidation_price"] is not None and Decimal(seen["liquidation_price"]) < Decimal(seen["entry_price"])
            assert bought["account"] == account
            assert await code_of(pia, "set_margin_mode", exchange="demo", pair=PERP, mode="cross") \
                == "margin_mode_change_with_open_position"
            (listed,) = await pia.call("get_positions", exchange="demo", pair=PERP)
            assert (listed["size"], listed["side"], listed["position_side"]) == ("0.02", "long", "both")
            with http(server, tokens["pia"]) as rest:
                assert [p["size"] for p in rest.get("/api/v1/positions", params={"account": account}).json()] == ["0.02"]
                added = rest.post(f"/api/v1/positions/demo/{PERP}/margin", json={"amount": "25"})
                assert added.status_code == 200, added.text
                assert Decimal(added.json()["isolated_margin"]) == Decimal(listed["isolated_margin"]) + 25
            last_read = seen["seq"]
        # away: the position is reduced, then closed; nothing of it may be missed on reconnecting with `since`
        await pia.call("make_order", **market("sell", "0.005", reduce_only=True))
        cut = await pia.call("make_order", **market("sell", "0.05", reduce_only=True, client_oid="cut-to-position"))
        assert cut["size"] in ("0.015", "0.05") and cut["reduce_only"] is True
        await asyncio.sleep(0.3)
        assert await pia.call("get_positions", exchange="demo") == []
        closed = await pia.call("get_positions", exchange="demo", include_flat=True)
        assert [p["side"] for p in closed] == ["flat"]
        async with websockets.connect(positions_ws(server, tokens["pia"], account=account, since=last_read)) as again:
            frames = await frames_until(again, lambda f: f["channel"] == "replayed")
        replayed = [f for f in frames if f["channel"] == "positions_updated"]
        assert [f["seq"] for f in replayed] == sorted({f["seq"] for f in replayed}) and all(f["seq"] > last_read for f in replayed)
        assert [f["size"] for f in replayed][-1] == "0" and {f["account"] for f in replayed} == {account}
        assert any(f["isolated_margin"] == added.json()["isolated_margin"] for f in replayed)  # the margin added while connected
        assert frames[-1]["replayed"] == len(replayed)
        witnessed = await frames_until(witness_ws, lambda f: f.get("seq") == replayed[-1]["seq"])
        await witness_ws.close()
        # a mark-only push repeats the seq of the position's last stored change, and never comes before that change's push:
        # each stored change was witnessed first under its seq, byte for byte as objects, and none was missed
        changes = [f for f in witnessed if f["seq"] > last_read]
        first_of_each = [f for i, f in enumerate(changes) if i == 0 or f["seq"] != changes[i - 1]["seq"]]
        assert [f["seq"] for f in first_of_each] == [f["seq"] for f in replayed]  # nothing missed, in order
        assert first_of_each == replayed  # the same events, byte for byte as objects


async def test_users_never_cross_on_positions_and_a_viewer_reads_only(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with rpc(server, tokens["pia"]) as pia, rpc(server, tokens["pol"]) as pol, rpc(server, tokens["vik"]) as vik:
        account = await own_account(pia)
        with http(server, tokens["vik"]) as viewer:
            vik_id = viewer.get("/api/v1/me").json()["id"]
        with server.client() as admin:  # grants are an admin's
            granted = admin.put(f"/api/v1/accounts/{account}/members/{vik_id}", json={"role": "view"})
            assert granted.status_code == 200, granted.text
        await pol.call("subscribe", channels=["positions_updated", "orders_updated", "orders_executed"])
        await vik.call("subscribe", channels=["positions_updated"], account=account)
        async with websockets.connect(positions_ws(server, tokens["pol"])) as foreign:
            await pia.call("make_order", **market("buy", "0.01"))
            note = await vik.notification("positions_updated", timeout=10)
            assert note["account"] == account and note["size"] == "0.01"
            assert [p["account"] for p in await vik.call("get_positions", account=account)] == [account]
            with contextlib.suppress(TimeoutError):
                got = await asyncio.wait_for(foreign.recv(), 0.6)
                raise AssertionError(f"another user's position reached /ws/positions: {got!r}")
            with pytest.raises(TimeoutError):
                await pol.notification("positions_updated", timeout=0.3)
        assert await pol.call("get_positions") == []
        assert await code_of(pol, "get_positions", account=account) == "account_not_found"
        assert await code_of(pol, "close_position", exchange="demo", pair=PERP, account=account) == "account_not_found"
        assert await code_of(pol, "set_leverage", exchange="demo", pair=PERP, leverage=3, account=account) == "account_not_found"
        assert await code_of(vik, "close_position", exchange="demo", pair=PERP, account=account) == "forbidden"
        closed = await pia.call("close_position", exchange="demo", pair=PERP)
        assert closed["reduce_only"] is True and closed["side"] == "sell"
        final = await vik.notification("positions_updated", timeout=10)
        while final["size"] != "0":
            final = await vik.notification("positions_updated", timeout=10)
        assert final["side"] == "flat"


async def test_orders_executed_is_each_orders_acceptance_and_orders_updated_every_change(server: ServerProcess,
                                                                                        tokens: dict[str, str]) -> None:
    async with rpc(server, tokens["pol"]) as pol:
        await pol.call("subscribe", channels=["orders_executed", "orders_updated"])
        bid = Decimal((await pol.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
        resting = await pol.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.001",
                                 limit=str((bid / 2).quantize(Decimal("0.01"))))
        await pol.call("cancel_order", order_id=resting["id"])
        filled = await pol.call("make_order", **market("buy", "0.001"))
        updated: list[dict[str, Any]] = []
        executed: list[dict[str, Any]] = []
        while not updated or updated[-1]["id"] != filled["id"] or updated[-1]["status"] != "done":
            method, params = await asyncio.wait_for(pol.notifications.get(), 10)
            if method == "orders_updated":
                updated.append(params)
            elif method == "orders_executed":
                executed.append(params)
        with contextlib.suppress(TimeoutError):
            while True:
                method, params = await asyncio.wait_for(pol.notifications.get(), 0.5)
                if method == "orders_executed":
                    executed.append(params)
        assert [(o["id"], o["status"]) for o in executed] == [(resting["id"], "open"), (filled["id"], "done")]
        assert [o["status"] for o in updated if o["id"] == resting["id"]] == ["open", "done"]
        assert {o["id"] for o in updated} == {resting["id"], filled["id"]}


async def test_subscribe_with_since_replays_positions_over_json_rpc_as_ws_positions_does(server: ServerProcess,
                                                                                        tokens: dict[str, str]) -> None:
    async with rpc(server, tokens["pia"]) as pia:
        account = await own_account(pia)
        await pia.call("make_order", **market("buy", "0.003"))
        await pia.call("close_position", exchange="demo", pair=PERP)
        await asyncio.sleep(0.3)
    async with websockets.connect(positions_ws(server, tokens["pia"], account=account, since=0)) as ws:
        frames = [f for f in await frames_until(ws, lambda f: f["channel"] == "replayed") if f["channel"] == "positions_updated"]
    async with rpc(server, tokens["pia"]) as fresh:
        answer = await fresh.call("subscribe", channels=["positions_updated"], account=account, since=0)
        notes = [await fresh.notification("positions_updated", timeout=10) for _ in range(answer["replay"]["replayed"])]
    assert answer["replay"]["replayed"] == len(frames) >= 2
    assert [{**n, "channel": "positions_updated"} for n in notes] == frames
