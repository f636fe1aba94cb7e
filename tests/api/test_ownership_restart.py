"""Owners and the audit log survive a restart (their buffered rows are written at shutdown); an order's owner survives a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess


def _users(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """Traders tom and tess, signed in: their token pairs."""
    with server.client() as admin:
        for name in ("tom", "tess"):
            admin.post("/api/v1/users", json={"username": name, "password": f"{name}-password"}).raise_for_status()
    return {n: httpx.post(server.http + "/api/v1/auth/login", json={"username": n, "password": f"{n}-password"}).json()
            for n in ("tom", "tess")}


def test_owners_and_audit_rows_survive_a_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    server.start()
    try:
        tokens = _users(server)
        made = httpx.post(server.http + "/xwrap/v1/wallets/new", headers={"Authorization": f"Bearer {tokens['tom']['access_token']}"},
                          json={"wallets": [{"exchange": "demo", "currency": "USDT", "allocation": "10"}]})
        set_id = made.json()["id"]
        server.stop()
        server.start()
        for name, status in (("tom", 200), ("tess", 404)):
            r = httpx.get(f"{server.http}/xwrap/v1/wallets/{set_id}", headers={"Authorization": f"Bearer {tokens[name]['access_token']}"})
            assert r.status_code == status, (name, r.text)  # sessions survive too
        with server.client() as admin:
            rows = admin.get("/api/v1/audit", params={"user": "tom"}).json()
        assert [(r["action"], r["outcome"]) for r in rows] == [("POST /xwrap/v1/wallets/new", "200")]
    finally:
        server.stop()


async def test_an_orders_owner_is_committed_with_the_order_and_survives_a_crash(tmp_path: Path) -> None:
    """The owner is in the order's own row: a SIGKILL right after the answer cannot leave the order to admins only."""
    server = ServerProcess(tmp_path)
    server.start()
    try:
        tokens = {name: pair["access_token"] for name, pair in _users(server).items()}
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as tom:
            bid = float((await tom.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
            order = await tom.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.001",
                                   limit=f"{bid * 0.5:.2f}", client_oid="tom-crash-1")
        server.kill()  # no shutdown: only what was committed with the order survives
        server.start()
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as tom, \
                RpcClient(f"{server.ws_anonymous}?access_token={tokens['tess']}") as tess:
            assert order["id"] in [o["id"] for o in await tom.call("list_open_orders")]
            assert order["id"] not in [o["id"] for o in await tess.call("list_open_orders")]
            for params in ({"order_id": order["id"]}, {"client_oid": "tom-crash-1"}):
                try:
                    await tess.call("cancel_order", **params)
                except RpcError as exc:
                    assert exc.data["code"] in ("unknown_order", "order_not_found")  # by client_oid / by an id of another account
                else:
                    raise AssertionError(f"tess cancelled tom's order by {params}")
            assert (await tom.call("cancel_order", client_oid="tom-crash-1"))["id"] == order["id"]
    finally:
        server.stop()


def test_wallet_sets_and_runs_keep_their_owner_through_a_sigkill_right_after_the_answer(tmp_path: Path) -> None:
    """A wallet set's owner is committed with the set, a run's before its start is answered: a SIGKILL at once loses neither."""
    server = ServerProcess(tmp_path)
    server.start()
    try:
        tokens = {name: pair["access_token"] for name, pair in _users(server).items()}
        headers = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
        with httpx.Client(base_url=server.http, headers=headers["tom"], timeout=30) as tom:
            set_ids = []
            for _ in range(3):
                made = tom.post("/xwrap/v1/wallets/new", json={"wallets": [{"exchange": "demo", "currency": "USDT", "allocation": "10"}]})
                assert made.status_code == 200, made.text
                set_ids.append(made.json()["id"])
            started = tom.put("/runnables/hodl/start", json={"mode": "paper", "balances": {"demo:USDT": "100"}, "params": {"timeframe": "1s"}})
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            server.kill()  # at once: nothing buffered after the answers is written
        server.start()
        with httpx.Client(base_url=server.http, headers=headers["tom"], timeout=30) as tom, \
                httpx.Client(base_url=server.http, headers=headers["tess"], timeout=30) as tess:
            for set_id in set_ids:
                assert tom.get(f"/xwrap/v1/wallets/{set_id}").status_code == 200, set_id
                assert tess.get(f"/xwrap/v1/wallets/{set_id}").status_code == 404, set_id
            assert tom.get(f"/runs/{run_id}").status_code == 200
            assert tess.get(f"/runs/{run_id}").status_code == 404
            assert run_id in [r["run_id"] for r in tom.get("/runs").json()]
            assert run_id not in [r["run_id"] for r in tess.get("/runs").json()]
    finally:
        server.stop()


async def test_a_client_oid_stays_each_users_own_after_a_restart(tmp_path: Path, store_env: dict[str, str]) -> None:
    """After a restart the client_oid index comes from the store, per owner: each user's repeat finds that user's order.

    And a run_id label stays with the user who named it first.
    """
    server = ServerProcess(tmp_path, env=store_env)
    server.start()
    try:
        tokens = {name: pair["access_token"] for name, pair in _users(server).items()}
        made: dict[str, dict[str, Any]] = {}
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as tom, \
                RpcClient(f"{server.ws_anonymous}?access_token={tokens['tess']}") as tess:
            bid = float((await tom.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
            resting = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.001",
                       "limit": f"{bid * 0.5:.2f}"}
            market = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "market", "size": "0.001"}
            for name, rpc in (("tom", tom), ("tess", tess)):
                made[f"{name}-rest"] = await rpc.call("make_order", client_oid="shared-rest", run_id=f"{name}-label", **resting)
                made[f"{name}-done"] = await rpc.call("make_order", client_oid="shared-done", **market)
            # a label first named by a wallet set (no order carries it) is kept by the set
            await tom.call("create_wallet_set", run_id="tom-set-label",
                           wallets=[{"exchange": "demo", "currency": "USDT", "allocation": "10"}])
        assert len({o["id"] for o in made.values()}) == 4
        server.stop()
        server.start()
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as tom, \
                RpcClient(f"{server.ws_anonymous}?access_token={tokens['tess']}") as tess:
            for name, rpc in (("tom", tom), ("tess", tess)):
                assert (await rpc.call("make_order", client_oid="shared-done", **market))["id"] == made[f"{name}-done"]["id"]
                again = await rpc.call("make_order", client_oid="shared-rest", run_id=f"{name}-label", **resting)
                assert again["id"] == made[f"{name}-rest"]["id"]
            try:  # a run_id label stays its first user's
                await tom.call("make_order", client_oid="label-taken", run_id="tess-label", **resting)
            except RpcError as exc:
                assert exc.data["code"] == "unknown_run"
            else:
                raise AssertionError("tom used tess's run_id label")
            try:
                await tess.call("make_order", client_oid="set-label-taken", run_id="tom-set-label", **resting)
            except RpcError as exc:
                assert exc.data["code"] == "unknown_run"
            else:
                raise AssertionError("tess used the run_id label of tom's wallet set")
            assert (await tess.call("cancel_order", client_oid="shared-rest"))["id"] == made["tess-rest"]["id"]
            assert made["tom-rest"]["id"] in [o["id"] for o in await tom.call("list_open_orders")]
            assert (await tom.call("cancel_order", client_oid="shared-rest"))["id"] == made["tom-rest"]["id"]
    finally:
        server.stop()
