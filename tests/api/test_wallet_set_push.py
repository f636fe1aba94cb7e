"""The `wallet_set` push channel on a real server: two traders and a viewer never cross.

tom (trader) owns a wallet set funded by his paper account; vic (viewer) and tess (trader) are users of their own; vic is
granted `view` on tom's account, tess nothing. A fill in tom's set reaches tom, vic and an admin subscribed to every set,
with exactly what `get_wallet_set` answers; tess never hears of it, and naming tom's set in `subscribe` answers her
`unknown_wallet_set`, as an id that does not exist does. vic reads the set but cannot trade with it. tess's own set
reaches tess and the admin only. A burst of orders on one set is pushed coalesced, its last push the set's final state.
A grant taken back ends vic's pushes. /ws/wallet_sets carries the same, as plain JSON objects. (On PostgreSQL too:
tests/api/test_wallet_allocation.py, a set's own changes.)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websockets

from coinwire.api.client import RpcClient
from coinwire.api.wallet_set_push import WALLET_SET_PUSH_BOUND
from tests.api.signed_in import code_of, http, rpc
from tests.server import ServerProcess

EX = "demo"
USERS = {"tom": "trader", "tess": "trader", "vic": "viewer"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("wallet-push")), env={"COINWIRE_RECORD_RATES": "false"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> dict[str, Any]:
    """Tokens, user ids, a paper account each for tom and tess (vic granted `view` on tom's), a wallet set each."""
    tokens = server.users(USERS)
    tokens["admin"] = server.token
    with server.client() as admin:
        ids = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
    accounts = {}
    for name in ("tom", "tess"):
        with http(server, tokens[name]) as client:
            made = client.post("/api/v1/accounts", json={"exchange": EX, "kind": "paper", "name": f"{name}'s"})
            assert made.status_code == 201, made.text
            accounts[name] = made.json()["id"]
    with server.client() as admin:
        admin.put(f"/api/v1/accounts/{accounts['tom']}/members/{ids['vic']}", json={"role": "view"}).raise_for_status()

    async def wallet_set(name: str) -> int:
        async with rpc(server, tokens[name]) as client:
            made = await client.call("create_wallet_set", description=f"{name}'s set",
                                     wallets=[{"exchange": EX, "currency": "USDT", "allocation": "2000", "account": accounts[name]}])
            return int(made["id"])

    sets = {name: asyncio.run(wallet_set(name)) for name in ("tom", "tess")}
    return {"tokens": tokens, "ids": ids, "accounts": accounts, "sets": sets}


async def pushes_until(client: RpcClient, set_id: int, done: Any = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The `wallet_set` notifications `client` receives up to the first of set `set_id` (that `done(view)` accepts)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        view = await client.notification("wallet_set", timeout=max(0.1, deadline - time.monotonic()))
        got.append(view)
        if view["id"] == set_id and (done is None or done(view)):
            return got


async def subscribed(server: ServerProcess, token: str, **params: Any) -> RpcClient:
    client = rpc(server, token)
    await client.connect()
    answer = await client.call("subscribe", channels=["wallet_set"], **params)
    assert "wallet_set" in answer["channels"]
    return client


async def buy(client: RpcClient, set_id: int, *, market: bool = False, size: str = "0.001") -> dict[str, Any]:
    if market:
        return dict(await client.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="market", size=size,
                                      wallet_set_id=set_id))
    bid = Decimal((await client.call("get_pricing", exchange=EX))["BTC_USDT"]["bid"])
    limit = str((bid * Decimal("0.5")).quantize(Decimal("0.01")))  # far below the book: it rests, holding funds
    return dict(await client.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="limit", size=size, limit=limit,
                                  wallet_set_id=set_id))


def usdt(view: dict[str, Any]) -> dict[str, Any]:
    return next(w for w in view["wallets"] if w["currency"] == "USDT")


def unpriced(view: dict[str, Any]) -> dict[str, Any]:
    """A wallet set without its wallets' present value (the demo feed's prices move between two reads)."""
    return {**view, "wallets": [{k: v for k, v in w.items() if k != "present_value"} for w in view["wallets"]]}


async def test_a_sets_changes_reach_its_owner_its_readers_and_admins_only(server: ServerProcess, world: dict[str, Any]) -> None:
    tokens, tom_set, tess_set = world["tokens"], world["sets"]["tom"], world["sets"]["tess"]
    tom = await subscribed(server, tokens["tom"])
    vic = await subscribed(server, tokens["vic"], wallet_sets=[tom_set])
    tess = await subscribed(server, tokens["tess"])
    admin = await subscribed(server, tokens["admin"])  # an admin without ids: every set
    try:
        # another user's set answers as one that does not exist, and changes nothing of tess's subscription
        assert await code_of(tess, "subscribe", channels=["wallet_set"], wallet_sets=[tom_set]) == "unknown_wallet_set"
        assert await code_of(tess, "subscribe", channels=["wallet_set"], wallet_sets=[987_654]) == "unknown_wallet_set"
        assert await code_of(admin, "subscribe", channels=["wallet_set"], wallet_sets=[987_654]) == "unknown_wallet_set"
        assert await code_of(tess, "subscribe", channels=["order"], wallet_sets=[tess_set]) == "invalid_params"
        assert await code_of(tess, "get_wallet_set", set_id=tom_set) == "unknown_wallet_set"

        # a fill in tom's set: its owner, its reader and the admin get the set as get_wallet_set answers it
        filled = await buy(tom, tom_set, market=True)
        assert filled["status"] == "done", filled
        has_btc = lambda view: any(w["currency"] == "BTC" and Decimal(w["balance"]) > 0 for w in view["wallets"])  # noqa: E731
        for client in (tom, vic, admin):
            got = await pushes_until(client, tom_set, has_btc)
            assert all(view["id"] == tom_set for view in got if client is not admin)
        answer = await tom.call("get_wallet_set", set_id=tom_set)
        assert unpriced(got[-1]) == unpriced(answer) and answer["id"] == tom_set  # the admin's: what get_wallet_set answers, with its `id`
        assert unpriced(await vic.call("get_wallet_set", set_id=tom_set)) == unpriced(answer)  # the viewer reads it...
        assert await code_of(vic, "make_order", exchange=EX, pair="BTC_USDT", side="buy", type="market", size="0.001",
                             wallet_set_id=tom_set) == "forbidden"  # ...and cannot trade with it

        # tess's own set: tess and the admin, never tom or vic (each connection's order is kept: what came before
        # tom's next push would have arrived first)
        await buy(tess, tess_set)
        got = await pushes_until(tess, tess_set)
        assert [view["id"] for view in got] == [tess_set]  # never tom's
        assert tom_set not in {view["id"] for view in got}
        await pushes_until(admin, tess_set)
        await buy(tom, tom_set)
        for client in (tom, vic):
            assert {view["id"] for view in await pushes_until(client, tom_set)} == {tom_set}  # tess's never reached them
    finally:
        for client in (tom, vic, tess, admin):
            await client.close()


async def test_a_burst_on_one_set_is_coalesced_and_its_last_push_is_the_final_state(server: ServerProcess,
                                                                                    world: dict[str, Any]) -> None:
    tom_set = world["sets"]["tom"]
    tom = await subscribed(server, world["tokens"]["tom"], wallet_sets=[tom_set])
    try:
        orders = 20
        started = time.monotonic()
        placed = await asyncio.gather(*(buy(tom, tom_set) for _ in range(orders)))
        assert len({o["id"] for o in placed}) == orders
        final = await tom.call("get_wallet_set", set_id=tom_set)
        got = await pushes_until(tom, tom_set, lambda view: usdt(view) == usdt(final))
        elapsed = time.monotonic() - started
        assert unpriced(got[-1]) == unpriced(final)
        assert set(got[-1]) == set(final) and set(got[-1]["wallets"][0]) == set(final["wallets"][0])
        assert len(got) < orders  # one push per bound, not one per change
        assert len(got) <= elapsed / WALLET_SET_PUSH_BOUND + 2
    finally:
        await tom.close()


async def test_a_grant_taken_back_ends_the_viewers_pushes(server: ServerProcess, world: dict[str, Any]) -> None:
    tokens, tom_set, account = world["tokens"], world["sets"]["tom"], world["accounts"]["tom"]
    vic = await subscribed(server, tokens["vic"])  # every set vic may read: tom's, through the grant
    tom = await subscribed(server, tokens["tom"], wallet_sets=[tom_set])
    try:
        await buy(tom, tom_set)
        await pushes_until(vic, tom_set)
        with server.client() as admin:
            admin.delete(f"/api/v1/accounts/{account}/members/{world['ids']['vic']}").raise_for_status()
        try:
            await buy(tom, tom_set)
            await pushes_until(tom, tom_set)  # pushed: to tom, and no longer to vic
            with pytest.raises(TimeoutError):
                await vic.notification("wallet_set", timeout=2 * WALLET_SET_PUSH_BOUND + 0.5)
            assert await code_of(vic, "get_wallet_set", set_id=tom_set) == "unknown_wallet_set"
        finally:
            with server.client() as admin:
                admin.put(f"/api/v1/accounts/{account}/members/{world['ids']['vic']}", json={"role": "view"}).raise_for_status()
    finally:
        await vic.close()
        await tom.close()


def sets_ws(server: ServerProcess, token: str, *set_ids: int) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/wallet_sets?access_token={token}" + "".join(f"&wallet_set={i}" for i in set_ids)


async def test_the_plain_json_stream_carries_the_same_sets_to_the_same_users(server: ServerProcess, world: dict[str, Any]) -> None:
    tokens, tom_set, tess_set = world["tokens"], world["sets"]["tom"], world["sets"]["tess"]
    async with websockets.connect(sets_ws(server, tokens["tess"], tom_set)) as refused:  # another's set: as an unknown one
        assert json.loads(await refused.recv()) == {"channel": "error", "code": "unknown_wallet_set", "message": f"no wallet set {tom_set}"}
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await refused.recv()
        assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "unknown_wallet_set")
    async with websockets.connect(sets_ws(server, tokens["vic"], tom_set)) as vic, \
            websockets.connect(sets_ws(server, tokens["tess"])) as tess, rpc(server, tokens["tom"]) as tom:
        event = None
        for _ in range(10):  # a connection follows once its query was checked, just after the handshake: until then, again
            await buy(tom, tom_set)
            try:
                event = json.loads(await asyncio.wait_for(vic.recv(), 2))
                break
            except TimeoutError:
                continue
        assert event is not None
        assert event["channel"] == "wallet_set" and event["id"] == tom_set
        answer = await tom.call("get_wallet_set", set_id=tom_set)
        assert unpriced({k: v for k, v in event.items() if k != "channel"}) == unpriced(answer)
        async with rpc(server, tokens["tess"]) as tess_rpc:
            await buy(tess_rpc, tess_set)
        assert json.loads(await asyncio.wait_for(tess.recv(), 10))["id"] == tess_set  # her own first: tom's never came
