"""Wallet-set allocation through a running server: zero allocations, get_wallet and allocate_to_wallet_set, their pushes.

On SQLite and on PostgreSQL: what is acknowledged is in the store, so a SIGKILL and a restart
give back the same wallets and the same history.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.conftest import POSTGRES_URL, require_service
from tests.server import ServerProcess

EX = "demo"


def _database(action: str, name: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"' if action == "create" else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on SQLite, or on a throwaway PostgreSQL database beside the test one; a trader and a viewer."""
    env: dict[str, str] = {}
    name = ""
    if request.param == "postgresql":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        base, _, test_db = POSTGRES_URL.rpartition("/")
        name = f"{test_db}_alloc_{uuid.uuid4().hex[:10]}"
        _database("create", name)
        env["COINWIRE_STORE_URL"] = f"{base}/{name}"
    proc = ServerProcess(Path(tmp_path_factory.mktemp(f"alloc-{request.param}")), env=env)
    proc.start()
    try:
        with proc.client() as admin:
            for user, role in (("tom", "trader"), ("vic", "viewer")):
                admin.post("/api/v1/users", json={"username": user, "password": f"{user}-password", "role": role}).raise_for_status()
        yield proc
    finally:
        proc.stop()
        if name:
            _database("drop", name)


def as_user(server: ServerProcess, user: str) -> RpcClient:
    token = server.login(user, f"{user}-password")["access_token"]
    return RpcClient(f"{server.ws_anonymous}?access_token={token}")


def http_as(server: ServerProcess, user: str) -> httpx.Client:
    token = server.login(user, f"{user}-password")["access_token"]
    return httpx.Client(base_url=server.http, timeout=10, headers={"Authorization": f"Bearer {token}"})


async def refusal(call: Any) -> tuple[int, str, str]:
    """(JSON-RPC code, stable code, message) of a refused call."""
    try:
        await call
    except RpcError as exc:
        assert exc.message and exc.reason, exc
        return exc.code, exc.reason, exc.message
    raise AssertionError("the call was not refused")


def wallets_of(wallet_set: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["currency"]: w for w in wallet_set["wallets"]}


def balances(view: dict[str, Any]) -> dict[tuple[str, str], Decimal]:
    return {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in view["wallets"]}


async def far_buy(rpc: RpcClient, set_id: int, size: str) -> dict[str, Any]:
    """A limit buy far under the market on the set's funds: it rests, holding USDT."""
    bid = Decimal((await rpc.call("get_pricing", exchange=EX))["BTC_USDT"]["bid"])
    limit = str((bid * Decimal("0.5")).quantize(Decimal("0.01")))
    return dict(await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="limit", size=size, limit=limit,
                               wallet_set_id=set_id, client_oid=uuid.uuid4().hex))


# --- a zero allocation ---------------------------------------------------------------------------
async def test_a_wallet_set_may_list_a_currency_with_a_zero_allocation(server: ServerProcess) -> None:
    async with as_user(server, "tom") as tom:
        unallocated = balances(await tom.call("get_unallocated_wallet_set"))
        made = await tom.call("create_wallet_set", run_id=f"zero-{uuid.uuid4().hex[:8]}", wallets=[
            {"exchange": EX, "currency": "USDT", "allocation": "100"},
            {"exchange": EX, "currency": "ETH", "allocation": "0"},
            {"exchange": EX, "currency": "SOL", "allocation": 0},
        ])
        wallets = wallets_of(await tom.call("get_wallet_set", set_id=made["id"]))
        assert set(wallets) == {"USDT", "ETH", "SOL"}
        assert (wallets["ETH"]["balance"], wallets["ETH"]["available"], wallets["ETH"]["hold"]) == ("0", "0", "0")
        assert isinstance(wallets["ETH"]["id"], int) and wallets["ETH"]["id"] > 0
        after = balances(await tom.call("get_unallocated_wallet_set"))
        assert after[(EX, "ETH")] == unallocated[(EX, "ETH")] and after[(EX, "USDT")] == unallocated[(EX, "USDT")] - 100
        # a set of empty wallets only, ready to be funded later
        empty = await tom.call("create_wallet_set", wallets=[{"exchange": EX, "currency": "BTC", "allocation": "0"}])
        assert [(w["currency"], w["balance"]) for w in (await tom.call("get_wallet_set", set_id=empty["id"]))["wallets"]] == [("BTC", "0")]
        # negative is still refused, and nothing is written
        before = await tom.call("get_all_wallet_sets")
        code, reason, message = await refusal(tom.call("create_wallet_set", wallets=[
            {"exchange": EX, "currency": "USDT", "allocation": "1"}, {"exchange": EX, "currency": "ETH", "allocation": "-1"},
        ]))
        assert (code, reason) == (-32000, "bad_wallet_config") and "must not be negative" in message
        assert set(await tom.call("get_all_wallet_sets")) == set(before)
    with http_as(server, "tom") as rest:
        r = rest.post("/xwrap/v1/wallets/new", json={"wallets": [{"exchange": EX, "currency": "ETH", "allocation": "0"}]})
        assert r.status_code == 200, r.text
        assert [w["balance"] for w in rest.get(f"/xwrap/v1/wallets/{r.json()['id']}").json()["wallets"]] == ["0"]
        r = rest.post("/xwrap/v1/wallets/new", json={"wallets": [{"exchange": EX, "currency": "ETH", "allocation": "-0.5"}]})
        assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_wallet_config")


# --- get_wallet ------------------------------------------------------------------------------------
async def test_get_wallet_answers_a_sets_wallet_as_get_wallet_set_shows_it(server: ServerProcess) -> None:
    async with as_user(server, "tom") as tom:
        made = await tom.call("create_wallet_set", wallets=[
            {"exchange": EX, "currency": "USDT", "allocation": "250"}, {"exchange": EX, "currency": "ETH", "allocation": "1"},
        ])
        set_id = made["id"]
        await far_buy(tom, set_id, "0.001")  # some USDT held
        wallets = wallets_of(await tom.call("get_wallet_set", set_id=set_id))
        usdt = await tom.call("get_wallet", exchange=EX, currency="USDT", wallet_set_id=set_id)
        assert usdt == wallets["USDT"] and Decimal(usdt["hold"]) > 0
        eth = await tom.call("get_wallet", exchange=EX, base="eth", wallet_set_id=set_id)  # the seed's `base`
        # ETH's present value follows the demo market, which may tick between the two calls
        assert without_value(eth) == without_value(wallets["ETH"]) and set(eth["present_value"]) == set(wallets["ETH"]["present_value"])
        # a currency the set does not list, an unknown exchange or currency, bad parameters
        assert (await refusal(tom.call("get_wallet", exchange=EX, currency="BTC", wallet_set_id=set_id)))[:2] == (-32001, "unknown_wallet")
        assert (await refusal(tom.call("get_wallet", exchange="nope", currency="BTC",
                                       wallet_set_id=set_id)))[:2] == (-32001, "unknown_exchange")
        assert (await refusal(tom.call("get_wallet", exchange=EX, currency="DOGE",
                                       wallet_set_id=set_id)))[:2] == (-32001, "currency_not_found")
        assert (await refusal(tom.call("get_wallet", exchange=EX, wallet_set_id=set_id)))[:2] == (-32602, "missing_parameter")
        assert (await refusal(tom.call("get_wallet", exchange=EX, currency="USDT", base="BTC",
                                       wallet_set_id=set_id)))[:2] == (-32602, "invalid_params")
        assert (await refusal(tom.call("get_wallet", exchange=EX, currency="USDT",
                                       wallet_set_id=10**9)))[:2] == (-32001, "unknown_wallet_set")
        # without a wallet set: the caller's account wallet, all its partitions (allocated + unallocated)
        own = await tom.call("get_wallet", exchange=EX, currency="USDT")
        tom_total = balances(await tom.call("get_total_wallet_set"))
        assert Decimal(own["balance"]) == tom_total[(EX, "USDT")] and own["account"] == usdt["account"] and own["id"] != usdt["id"]
        await tom.call("cancel_order", order_id=(await tom.call("list_open_orders", wallet_set_id=set_id))[0]["id"])
    with http_as(server, "tom") as rest:
        r = rest.get(f"/xwrap/v1/wallets/{EX}/USDT", params={"wallet_set_id": set_id})
        assert r.status_code == 200 and r.json()["balance"] == "250" and r.json()["id"] == usdt["id"]
        assert rest.get(f"/xwrap/v1/wallets/{EX}/BTC", params={"wallet_set_id": set_id}).json()["error"]["code"] == "unknown_wallet"
        r = rest.get(f"/xwrap/v1/wallets/{EX}/USDT")
        assert r.status_code == 200 and r.json()["account"] == usdt["account"]
        # another user's account is not found, whether or not it exists
        r = rest.get(f"/xwrap/v1/wallets/{EX}/USDT", params={"account": usdt["account"] + 1000})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "account_not_found")
    async with RpcClient(server.ws) as admin:
        own = await admin.call("get_wallet", exchange=EX, currency="USDT")
        total = balances(await admin.call("get_total_wallet_set", account=own["account"]))
        assert Decimal(own["balance"]) == total[(EX, "USDT")] and own["exchange"] == EX and "present_value" in own
        assert own["account"] != usdt["account"]  # the admin's own account, not tom's
        tom_wallet = await admin.call("get_wallet", exchange=EX, currency="USDT", account=usdt["account"])  # admins read any
        assert tom_wallet["account"] == usdt["account"]
    with server.client() as admin_http:
        assert Decimal(admin_http.get(f"/xwrap/v1/wallets/{EX}/usdt").json()["balance"]) == total[(EX, "USDT")]


# --- allocate_to_wallet_set ------------------------------------------------------------------------
async def test_allocate_to_wallet_set_moves_funds_in_and_back_out(server: ServerProcess) -> None:
    async with as_user(server, "tom") as tom:
        made = await tom.call("create_wallet_set", run_id=f"top-{uuid.uuid4().hex[:8]}", wallets=[
            {"exchange": EX, "currency": "USDT", "allocation": "1000"}, {"exchange": EX, "currency": "BTC", "allocation": "0.5"},
        ])
        set_id = made["id"]
        pool = balances(await tom.call("get_unallocated_wallet_set"))
        view = await tom.call("allocate_to_wallet_set", set_id=set_id, wallets=[
            {"exchange": EX, "currency": "USDT", "allocation": "500"},
            {"exchange": EX, "currency": "BTC", "allocation": "-0.2"},
            {"exchange": EX, "currency": "ETH", "allocation": "0"},
        ])
        assert view == await tom.call("get_wallet_set", set_id=set_id)  # answers the set, as get_wallet_set shows it
        wallets = wallets_of(view)
        assert (wallets["USDT"]["balance"], wallets["BTC"]["balance"], wallets["ETH"]["balance"]) == ("1500", "0.3", "0")
        after = balances(await tom.call("get_unallocated_wallet_set"))
        assert after[(EX, "USDT")] == pool[(EX, "USDT")] - 500 and after[(EX, "BTC")] == pool[(EX, "BTC")] + Decimal("0.2")
        # the seed's name for the set, and JSON numbers
        await tom.call("allocate_to_wallet_set", wallet_set_id=set_id, wallets=[{"exchange": EX, "currency": "usdt", "allocation": -100}])
        assert (await tom.call("get_wallet", exchange=EX, currency="USDT", wallet_set_id=set_id))["balance"] == "1400"
        # the history shows each movement
        history = await tom.call("get_wallet_set_history", set_id=set_id)
        usdt_id = wallets["USDT"]["id"]
        assert [p[1]["balance"] for p in history["data"] if p[1]["id"] == usdt_id] == ["1000", "1500", "1400"]
        # total = allocated + unallocated, as admins see the exchange
    async with RpcClient(server.ws) as admin:
        sets = await admin.call("get_all_wallet_sets")
        total, allocated, unallocated = (balances(sets[k]) for k in ("total", "allocated", "unallocated"))
        for key, value in total.items():
            assert value == allocated.get(key, 0) + unallocated.get(key, 0)


async def test_a_sets_creation_allocations_and_deactivation_are_pushed_to_its_owner_only(server: ServerProcess) -> None:
    """Each committed change of a set reaches its owner's `wallet_set` listeners as get_wallet_set shows it; a viewer
    granted nothing hears nothing, and naming the set answers him as a set that does not exist."""
    async with as_user(server, "tom") as tom, as_user(server, "vic") as vic:
        await tom.call("subscribe", channels=["wallet_set"])
        await vic.call("subscribe", channels=["wallet_set"])
        made = await tom.call("create_wallet_set", wallets=[{"exchange": EX, "currency": "USDT", "allocation": "300"}])
        set_id = made["id"]

        async def pushed(done: Any) -> dict[str, Any]:
            while True:  # coalesced: an earlier state may come first, never a later one after the last
                view = await tom.notification("wallet_set")
                if view["id"] == set_id and done(view):
                    return dict(view)

        assert wallets_of(await pushed(lambda v: True))["USDT"]["balance"] == "300"  # created
        await tom.call("allocate_to_wallet_set", set_id=set_id, wallets=[{"exchange": EX, "currency": "USDT", "allocation": "-100"}])
        view = await pushed(lambda v: wallets_of(v)["USDT"]["balance"] == "200")  # moved out
        assert view == await tom.call("get_wallet_set", set_id=set_id)
        await tom.call("deactivate_wallet_set", set_id=set_id)
        assert wallets_of(await pushed(lambda v: v["active"] is False))["USDT"]["balance"] == "0"  # closed: its funds went back
        assert (await refusal(vic.call("subscribe", channels=["wallet_set"], wallet_sets=[set_id])))[:2] == (-32001, "unknown_wallet_set")
        with pytest.raises(TimeoutError):
            await vic.notification("wallet_set", timeout=0.5)


async def test_a_refused_allocation_changes_nothing(server: ServerProcess) -> None:
    async with as_user(server, "tom") as tom:
        made = await tom.call("create_wallet_set", wallets=[{"exchange": EX, "currency": "USDT", "allocation": "1000"}])
        set_id = made["id"]
        order = await far_buy(tom, set_id, "0.01")  # holds some of the set's USDT
        before = await tom.call("get_wallet_set", set_id=set_id)
        held = Decimal(wallets_of(before)["USDT"]["hold"])
        assert held > 0
        pool = balances(await tom.call("get_unallocated_wallet_set"))
        cases: list[tuple[dict[str, Any], tuple[int, str]]] = [
            # more back out than the set has available: held funds stay with the order
            ({"set_id": set_id, "wallets": [{"exchange": EX, "currency": "BTC", "allocation": "0"},
                                             {"exchange": EX, "currency": "USDT", "allocation": str(-(1000 - held) - 1)}]},
                                             (-32003, "insufficient_funds")),
            # more in than unallocated holds: all or none, the first wallet is not moved either
            ({"set_id": set_id, "wallets": [{"exchange": EX, "currency": "BTC", "allocation": "1"},
                                             {"exchange": EX, "currency": "USDT", "allocation": "1e15"}]}, (-32003, "insufficient_funds")),
            ({"set_id": set_id, "wallets": [{"exchange": EX, "currency": "ETH", "allocation": "-1"}]}, (-32003, "insufficient_funds")),
            ({"set_id": set_id, "wallets": [{"exchange": EX, "currency": "BTC", "allocation": "1"},
                                             {"exchange": EX, "currency": "BTC", "allocation": "1"}]}, (-32000, "bad_wallet_config")),
            ({"set_id": set_id, "wallets": [{"exchange": EX, "currency": "DOGE", "allocation": "1"}]}, (-32000, "bad_wallet_config")),
            ({"set_id": set_id, "wallets": [{"exchange": "nope", "currency": "BTC", "allocation": "1"}]}, (-32001, "unknown_exchange")),
            ({"set_id": set_id, "wallets": []}, (-32602, "bad_wallet_config")),
            ({"set_id": set_id, "wallets": [{"exchange": EX, "currency": "BTC", "allocation": "abc"}]}, (-32602, "invalid_number")),
            ({"set_id": set_id, "wallets": [{"exchange": EX, "currency": "BTC"}]}, (-32602, "invalid_params")),
            ({"set_id": set_id, "wallet_set_id": set_id, "wallets": [{"exchange": EX, "currency": "BTC", "allocation": "1"}]},
             (-32602, "conflicting_parameters")),
            ({"wallets": [{"exchange": EX, "currency": "BTC", "allocation": "1"}]}, (-32602, "missing_parameter")),
            ({"set_id": 10**9, "wallets": [{"exchange": EX, "currency": "BTC", "allocation": "1"}]}, (-32001, "unknown_wallet_set")),
        ]
        for params, expected in cases:
            assert (await refusal(tom.call("allocate_to_wallet_set", **params)))[:2] == expected, params
        assert await tom.call("get_wallet_set", set_id=set_id) == before
        assert balances(await tom.call("get_unallocated_wallet_set")) == pool
        # exactly what is available goes back out; the held part stays for the order
        await tom.call("allocate_to_wallet_set", set_id=set_id,
                       wallets=[{"exchange": EX, "currency": "USDT", "allocation": str(-(1000 - held))}])
        usdt = await tom.call("get_wallet", exchange=EX, currency="USDT", wallet_set_id=set_id)
        assert (Decimal(usdt["balance"]), usdt["available"]) == (held, "0")
        await tom.call("cancel_order", order_id=order["id"])
        await tom.call("deactivate_wallet_set", set_id=set_id)
        code, reason, _ = await refusal(tom.call("allocate_to_wallet_set", set_id=set_id,
                                                 wallets=[{"exchange": EX, "currency": "USDT", "allocation": "1"}]))
        assert (code, reason) == (-32002, "wallet_set_inactive")
    async with as_user(server, "vic") as vic:  # a viewer may read wallets, not move them
        assert (await refusal(vic.call("allocate_to_wallet_set", set_id=set_id,
                                       wallets=[{"exchange": EX, "currency": "USDT", "allocation": "1"}])))[:2] == (-32011, "forbidden")


async def test_acknowledged_allocations_survive_a_sigkill(server: ServerProcess) -> None:
    """What allocate_to_wallet_set and a zero allocation answered is in the store: the same wallets and history after a restart."""
    async with as_user(server, "tom") as tom:
        made = await tom.call("create_wallet_set", wallets=[
            {"exchange": EX, "currency": "USDT", "allocation": "300"}, {"exchange": EX, "currency": "SOL", "allocation": "0"},
        ])
        set_id = made["id"]
        await tom.call("allocate_to_wallet_set", set_id=set_id, wallets=[
            {"exchange": EX, "currency": "USDT", "allocation": "-120.5"}, {"exchange": EX, "currency": "BTC", "allocation": "0.01"},
            {"exchange": EX, "currency": "ETH", "allocation": "0"},
        ])
        before = await tom.call("get_wallet_set", set_id=set_id)
        history = (await tom.call("get_wallet_set_history", set_id=set_id))["data"]
    server.kill()
    server.start()
    async with as_user(server, "tom") as tom:
        after = await tom.call("get_wallet_set", set_id=set_id)
        assert [(w["id"], w["currency"], w["balance"], w["hold"]) for w in after["wallets"]] == [
            (w["id"], w["currency"], w["balance"], w["hold"]) for w in before["wallets"]
        ]
        assert {w["currency"]: w["balance"] for w in after["wallets"]} == {"USDT": "179.5", "SOL": "0", "BTC": "0.01", "ETH": "0"}
        assert (await tom.call("get_wallet_set_history", set_id=set_id))["data"] == history
        await tom.call("deactivate_wallet_set", set_id=set_id)


def without_value(wallet: dict[str, Any]) -> dict[str, Any]:
    """A wallet's view without its present value (the market's, not the ledger's)."""
    return {key: value for key, value in wallet.items() if key != "present_value"}
