"""Accounts over REST: listing, opening paper accounts, reading one, its balances, grants; and `account` on the xWrap routes.

One real server with two traders (ann, ben), a viewer (val) and the admin. Every refusal is
checked for its status, stable code, and that nothing was written (the caller's accounts and
balances are as before); grants are checked through what they open and close, in the audit
log, and after a restart on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.accounts_routes import MAX_ACCOUNT_NAME
from coinwire.api.client import RpcClient
from tests.api.signed_in import ok, refused
from tests.server import DEMO_EXCHANGES, ServerProcess

EX = "demo"
FUNDS = DEMO_EXCHANGES[0]["paper_funds"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("accounts")))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """ann and ben (traders), val (a viewer) and admin: {name: {token, id}}."""
    tokens = server.traders("ann", "ben")
    with server.client() as admin:
        admin.post("/api/v1/users", json={"username": "val", "password": "val-password", "role": "viewer"}).raise_for_status()
        ids = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
    tokens["val"] = server.login("val", "val-password")["access_token"]
    tokens["admin"] = server.token
    return {name: {"token": token, "id": ids[name]} for name, token in tokens.items()}


def client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, timeout=10, headers={"Authorization": f"Bearer {token}"})


def own_demo(rest: httpx.Client) -> dict[str, Any]:
    """The caller's first (own) account on demo."""
    mine = [a for a in ok(rest.get("/api/v1/accounts")) if a["exchange"] == EX and a["role"] == "owner"]
    return min(mine, key=lambda a: a["id"])


def usdt(balances: dict[str, Any], kind: str) -> Decimal:
    return sum((Decimal(w["balance"]) for w in balances[kind] if w["currency"] == "USDT"), Decimal(0))


# --- list, open, read ------------------------------------------------------------------------------
def test_the_list_shows_the_callers_own_accounts_made_on_first_use_and_nobody_elses(server: ServerProcess, users: dict[str, Any]) -> None:
    with client(server, users["ann"]["token"]) as ann, client(server, users["ben"]["token"]) as ben, \
            client(server, users["admin"]["token"]) as admin:
        mine = ok(ann.get("/api/v1/accounts"))
        seen = [(a["exchange"], a["kind"], a["owner"], a["role"], a["members"]) for a in mine]
        assert seen == [(EX, "paper", users["ann"]["id"], "owner", [])]
        assert set(mine[0]) == {"id", "exchange", "kind", "name", "owner", "created_at", "active", "role", "members"}
        assert ok(ann.get("/api/v1/accounts")) == mine  # listing again makes nothing more
        theirs = ok(ben.get("/api/v1/accounts"))
        assert mine[0]["id"] not in {a["id"] for a in theirs} and {a["owner"] for a in theirs} == {users["ben"]["id"]}
        every = {a["id"]: a for a in ok(admin.get("/api/v1/accounts"))}
        assert every[mine[0]["id"]]["role"] == "admin" and every[mine[0]["id"]]["members"] == []
        assert every[theirs[0]["id"]]["owner"] == users["ben"]["id"]
        refused(ann.get("/api/v1/accounts", params={"owner": users["ben"]["id"]}), 400, "invalid_params")


def test_a_paper_account_is_opened_funded_and_read_back(server: ServerProcess, users: dict[str, Any]) -> None:
    with client(server, users["ann"]["token"]) as ann:
        made = ok(ann.post("/api/v1/accounts", json={"exchange": EX, "kind": "paper", "name": "ann's desk ✓"}), 201)
        assert (made["exchange"], made["kind"], made["name"], made["owner"], made["role"], made["active"]) == \
            (EX, "paper", "ann's desk ✓", users["ann"]["id"], "owner", True)
        assert ok(ann.get(f"/api/v1/accounts/{made['id']}")) == made
        assert made["id"] in {a["id"] for a in ok(ann.get("/api/v1/accounts"))}
        balances = ok(ann.get(f"/api/v1/accounts/{made['id']}/balances"))
        assert (balances["account"], balances["exchange"]) == (made["id"], EX)
        assert usdt(balances, "total") == usdt(balances, "unallocated") == Decimal(FUNDS["USDT"]) and usdt(balances, "allocated") == 0
        assert {w["currency"] for w in balances["total"]} == set(FUNDS)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"exchange": EX, "kind": "live", "name": "x"}, 400, "unsupported_account_kind"),
    ({"exchange": EX, "kind": "margin", "name": "x"}, 400, "invalid_account_kind"),
    ({"exchange": "nowhere", "kind": "paper", "name": "x"}, 404, "unknown_exchange"),
    ({"exchange": EX, "kind": "paper", "name": ""}, 400, "invalid_account_name"),
    ({"exchange": EX, "kind": "paper", "name": "   "}, 400, "invalid_account_name"),
    ({"exchange": EX, "kind": "paper", "name": "tab\there"}, 400, "invalid_account_name"),
    ({"exchange": EX, "kind": "paper", "name": "x" * (MAX_ACCOUNT_NAME + 1)}, 400, "invalid_account_name"),
    ({"exchange": EX, "kind": "paper", "name": "x" * 5000}, 400, "too_long"),
    ({"exchange": EX, "kind": "paper", "name": 5}, 400, "invalid_params"),
    ({"exchange": EX, "kind": "paper"}, 400, "invalid_params"),
    ({"exchange": EX, "kind": "paper", "name": "x", "owner": 1}, 400, "invalid_params"),
    ({"exchange": EX, "kind": "paper", "name": "nul\u0000"}, 400, "invalid_characters"),
])
def test_a_refused_open_says_why_and_opens_nothing(server: ServerProcess, users: dict[str, Any], body: dict[str, Any], status: int,
                                                   code: str) -> None:
    with client(server, users["ann"]["token"]) as ann:
        before = ok(ann.get("/api/v1/accounts"))
        refused(ann.post("/api/v1/accounts", json=body), status, code)
        assert ok(ann.get("/api/v1/accounts")) == before


def test_viewers_open_no_accounts_and_a_name_at_the_limit_is_taken(server: ServerProcess, users: dict[str, Any]) -> None:
    with client(server, users["val"]["token"]) as val, client(server, users["ben"]["token"]) as ben:
        refused(val.post("/api/v1/accounts", json={"exchange": EX, "kind": "paper", "name": "mine"}), 403, "forbidden")
        assert [a["owner"] for a in ok(val.get("/api/v1/accounts"))] == [users["val"]["id"]]  # read: their own, made on first use
        name = "n" * MAX_ACCOUNT_NAME
        assert ok(ben.post("/api/v1/accounts", json={"exchange": EX, "kind": "paper", "name": name}), 201)["name"] == name


def test_an_account_the_caller_may_not_read_answers_like_one_that_does_not_exist(server: ServerProcess, users: dict[str, Any]) -> None:
    with client(server, users["ann"]["token"]) as ann, client(server, users["ben"]["token"]) as ben, \
            client(server, users["val"]["token"]) as val:
        theirs = own_demo(ann)["id"]
        for rest in (ben, val):
            for suffix in ("", "/balances", "/members"):
                for account in (theirs, 10**9):
                    error = refused(rest.get(f"/api/v1/accounts/{account}{suffix}"), 404, "account_not_found")
                    assert error == {"code": "account_not_found", "message": f"no account {account}", "account": account}
        refused(ann.get(f"/api/v1/accounts/{10**30}"), 404, "account_not_found")  # beyond any id: not a 500
        refused(ann.get("/api/v1/accounts/abc"), 404, "not_found")  # no such route


def test_balances_keep_total_equal_to_allocated_plus_unallocated(server: ServerProcess, users: dict[str, Any]) -> None:
    async def allocate(account: int) -> int:
        async with RpcClient(f"{server.ws_anonymous}?access_token={users['ann']['token']}") as rpc:
            made = await rpc.call("create_wallet_set",
                                  wallets=[{"exchange": EX, "currency": "USDT", "allocation": "2500", "account": account}])
            return int(made["id"])

    with client(server, users["ann"]["token"]) as ann:
        account = ok(ann.post("/api/v1/accounts", json={"exchange": EX, "kind": "paper", "name": "split"}), 201)["id"]
        asyncio.run(allocate(account))
        balances = ok(ann.get(f"/api/v1/accounts/{account}/balances"))
        assert usdt(balances, "allocated") == 2500
        assert usdt(balances, "unallocated") == Decimal(FUNDS["USDT"]) - 2500
        assert usdt(balances, "total") == Decimal(FUNDS["USDT"])
        first = own_demo(ann)["id"]  # the other account of ann's is untouched
        assert usdt(ok(ann.get(f"/api/v1/accounts/{first}/balances")), "allocated") == 0


# --- grants ----------------------------------------------------------------------------------------
def test_an_admin_grants_and_revokes_and_the_grant_opens_exactly_that(server: ServerProcess, users: dict[str, Any]) -> None:
    ben_id = users["ben"]["id"]
    with client(server, users["ann"]["token"]) as ann, client(server, users["ben"]["token"]) as ben, \
            client(server, users["admin"]["token"]) as admin:
        account = own_demo(ann)["id"]
        members = f"/api/v1/accounts/{account}/members"
        assert ok(admin.put(f"{members}/{ben_id}", json={"role": "view"})) == \
            {"account": account, "members": [{"user_id": ben_id, "role": "view"}]}
        shared = ok(ben.get(f"/api/v1/accounts/{account}"))
        # members: not a member's to see
        assert (shared["role"], shared["owner"], "members" in shared) == ("view", users["ann"]["id"], False)
        assert account in {a["id"] for a in ok(ben.get("/api/v1/accounts"))}
        assert ok(ben.get(f"/api/v1/accounts/{account}/balances"))["account"] == account
        assert ok(ann.get(f"/api/v1/accounts/{account}"))["members"] == [{"user_id": ben_id, "role": "view"}]  # the owner sees them
        assert ok(ann.get(members))["members"] == [{"user_id": ben_id, "role": "view"}]
        refused(ben.get(members), 403, "forbidden")
        refused(ben.put(f"{members}/{ben_id}", json={"role": "trade"}), 403, "forbidden")  # may read it, may not grant
        refused(ann.put(f"{members}/{ben_id}", json={"role": "trade"}), 403, "forbidden")  # owners do not grant either
        refused(ann.delete(f"{members}/{ben_id}"), 403, "forbidden")
        assert ok(admin.put(f"{members}/{ben_id}", json={"role": "trade"}))["members"] == [{"user_id": ben_id, "role": "trade"}]
        assert ok(ben.get(f"/api/v1/accounts/{account}"))["role"] == "trade"
        assert ok(admin.delete(f"{members}/{ben_id}")) == {"account": account, "members": []}
        assert ok(admin.delete(f"{members}/{ben_id}")) == {"account": account, "members": []}  # again: the same answer
        refused(ben.get(f"/api/v1/accounts/{account}"), 404, "account_not_found")
        assert account not in {a["id"] for a in ok(ben.get("/api/v1/accounts"))}


@pytest.mark.parametrize(("caller", "target", "body", "status", "code"), [
    ("val", "ben", {"role": "view"}, 404, "account_not_found"),  # cannot read it: not found, before anything else
    ("ben", "ben", {"role": "view"}, 404, "account_not_found"),
    ("ben", "ben", {"role": "owner"}, 400, "invalid_role"),  # a malformed body first: it says nothing of the account
    ("admin", "nobody", {"role": "view"}, 404, "unknown_user"),
    ("admin", "huge", {"role": "view"}, 404, "unknown_user"),
    ("admin", "ann", {"role": "view"}, 400, "grant_to_owner"),
    ("admin", "ben", {"role": "owner"}, 400, "invalid_role"),
    ("admin", "ben", {"role": "admin"}, 400, "invalid_role"),
    ("admin", "ben", {}, 400, "invalid_params"),
    ("admin", "ben", {"role": "view", "user_id": 1}, 400, "invalid_params"),
    ("admin", "val", {"role": "trade"}, 400, "grant_exceeds_role"),
])
def test_a_refused_grant_says_why_and_grants_nothing(server: ServerProcess, users: dict[str, Any], caller: str, target: str,
                                                     body: dict[str, Any], status: int, code: str) -> None:
    ids = {**{n: u["id"] for n, u in users.items()}, "nobody": 10**9, "huge": 10**30}
    with client(server, users["ann"]["token"]) as ann, client(server, users[caller]["token"]) as rest, \
            client(server, users["admin"]["token"]) as admin:
        account = own_demo(ann)["id"]
        before = ok(admin.get(f"/api/v1/accounts/{account}/members"))
        refused(rest.put(f"/api/v1/accounts/{account}/members/{ids[target]}", json=body), status, code)
        if status == 404:  # a revoke names the account and the user too
            refused(rest.delete(f"/api/v1/accounts/{account}/members/{ids[target]}"), status, code)
        assert ok(admin.get(f"/api/v1/accounts/{account}/members")) == before


def test_grants_and_refusals_are_in_the_audit_log(server: ServerProcess, users: dict[str, Any]) -> None:
    with client(server, users["ann"]["token"]) as ann, client(server, users["ben"]["token"]) as ben, \
            client(server, users["admin"]["token"]) as admin:
        account = own_demo(ann)["id"]
        path = f"/api/v1/accounts/{account}/members/{users['ben']['id']}"
        ok(admin.put(path, json={"role": "view"}))
        refused(ben.delete(path), 403, "forbidden")
        ok(admin.delete(path))
        template = "/api/v1/accounts/{account_id:int}/members/{user_id:int}"
        rows = ok(admin.get("/api/v1/audit", params={"limit": 100}))  # the query writes what is buffered first
        mine = [(r["username"], r["action"], r["outcome"]) for r in rows if r["target"] == path]
        assert ("admin", f"PUT {template}", "200") in mine and ("ben", f"DELETE {template}", "403") in mine
        assert ("admin", f"DELETE {template}", "200") in mine


# --- `account` on the xWrap REST routes -------------------------------------------------------------
def test_the_xwrap_routes_take_an_account_in_the_query_or_the_body(server: ServerProcess, users: dict[str, Any]) -> None:
    with client(server, users["ann"]["token"]) as ann, client(server, users["ben"]["token"]) as ben:
        account = ok(ann.post("/api/v1/accounts", json={"exchange": EX, "kind": "paper", "name": "rest"}), 201)["id"]
        bid = Decimal(ok(ann.get(f"/xwrap/v1/{EX}/pricing"))["BTC_USDT"]["bid"])
        order = {"exchange": EX, "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.01",
                 "limit": str((bid / 2).quantize(Decimal("0.01")))}
        placed = ok(ann.post("/xwrap/v1/orders/new", json={**order, "account": account}))
        assert placed["account"] == account
        assert [o["id"] for o in ok(ann.get("/xwrap/v1/orders/open", params={"account": account}))] == [placed["id"]]
        recent = ok(ann.get("/xwrap/v1/orders/recent", params={"account": account, "include_open": "true"}))
        assert placed["id"] in [o["id"] for o in recent]
        held = Decimal(ok(ann.get(f"/xwrap/v1/wallets/{EX}/USDT", params={"account": account}))["hold"])
        assert held > 0
        total = ok(ann.get("/xwrap/v1/wallets/total", params={"account": account}))
        assert [w["balance"] for w in total["wallets"] if w["currency"] == "USDT"] == [FUNDS["USDT"]]
        assert ok(ann.get("/xwrap/v1/wallets/unallocated_exchange", params={"account": account}))[EX]
        ok(ann.post("/xwrap/v1/wallets/virtual/transaction", json={"exchange": EX, "currency": "SOL", "movement": "5", "account": account}))
        sol = ok(ann.get(f"/xwrap/v1/wallets/{EX}/SOL", params={"account": account}))
        assert Decimal(sol["balance"]) == Decimal(FUNDS["SOL"]) + 5
        # the other trader names it: not found, on every route, and nothing moves
        for verb, path, params in [
            ("POST", "/xwrap/v1/orders/new", {**order, "account": account}),
            ("POST", "/xwrap/v1/orders/cancel", {"order_id": placed["id"], "account": account}),
            ("GET", "/xwrap/v1/orders/open", {"account": account}),
            ("GET", "/xwrap/v1/orders/recent", {"account": account}),
            ("GET", f"/xwrap/v1/wallets/{EX}/USDT", {"account": account}),
            ("GET", "/xwrap/v1/wallets/total", {"account": account}),
            ("GET", "/xwrap/v1/wallets/sets", {"account": account}),
            ("POST", "/xwrap/v1/wallets/new", {"wallets": [{"exchange": EX, "currency": "USDT", "allocation": "1", "account": account}]}),
            ("POST", "/xwrap/v1/wallets/virtual/transaction", {"exchange": EX, "currency": "SOL", "movement": "5", "account": account}),
        ]:
            r = ben.get(path, params=params) if verb == "GET" else ben.post(path, json=params)
            refused(r, 404, "account_not_found")
        assert Decimal(ok(ann.get(f"/xwrap/v1/wallets/{EX}/SOL", params={"account": account}))["balance"]) == Decimal(sol["balance"])
        assert [o["id"] for o in ok(ann.get("/xwrap/v1/orders/open", params={"account": account}))] == [placed["id"]]
        assert ok(ann.post("/xwrap/v1/orders/cancel", json={"order_id": placed["id"], "account": account}))["status"] == "done"
        assert Decimal(ok(ann.get(f"/xwrap/v1/wallets/{EX}/USDT", params={"account": account}))["hold"]) == 0


def test_minting_paper_funds_is_for_the_owner_and_admins(server: ServerProcess, users: dict[str, Any]) -> None:
    with client(server, users["ann"]["token"]) as ann, client(server, users["ben"]["token"]) as ben, \
            client(server, users["val"]["token"]) as val, client(server, users["admin"]["token"]) as admin:
        account = own_demo(ann)["id"]
        path = "/xwrap/v1/wallets/virtual/transaction"
        tx = {"exchange": EX, "currency": "ETH", "movement": "1", "account": account}
        ok(admin.put(f"/api/v1/accounts/{account}/members/{users['ben']['id']}", json={"role": "trade"}))
        try:
            refused(ben.post(path, json=tx), 404, "account_not_found")  # a trading member never mints
            refused(val.post(path, json=tx), 403, "forbidden")
            before = Decimal(ok(ann.get(f"/xwrap/v1/wallets/{EX}/ETH", params={"account": account}))["balance"])
            ok(ann.post(path, json=tx))
            ok(admin.post(path, json={**tx, "movement": "2"}))
            assert Decimal(ok(ann.get(f"/xwrap/v1/wallets/{EX}/ETH", params={"account": account}))["balance"]) == before + 3
        finally:
            ok(admin.delete(f"/api/v1/accounts/{account}/members/{users['ben']['id']}"))


# --- grants are stored ------------------------------------------------------------------------------
def test_grants_survive_a_restart(tmp_path: Path, store_env: dict[str, str]) -> None:
    """A grant answered is stored, and so is a revoke: after a restart, dee still trades cid's account and eve reads nothing."""
    proc = ServerProcess(tmp_path, env=store_env)
    proc.start()
    try:
        tokens = proc.traders("cid", "dee", "eve")
        with proc.client() as admin:
            ids = {u["username"]: u["id"] for u in admin.get("/api/v1/users").json()}
        with client(proc, tokens["cid"]) as cid:
            account = own_demo(cid)["id"]
        with proc.client() as admin:
            members = f"/api/v1/accounts/{account}/members"
            ok(admin.put(f"{members}/{ids['dee']}", json={"role": "trade"}))
            ok(admin.put(f"{members}/{ids['eve']}", json={"role": "view"}))
            ok(admin.delete(f"{members}/{ids['eve']}"))
        proc.stop()
        proc.start()
        with client(proc, proc.login("dee", "dee-password")["access_token"]) as dee:
            assert ok(dee.get(f"/api/v1/accounts/{account}"))["role"] == "trade"
        with client(proc, proc.login("eve", "eve-password")["access_token"]) as eve:
            refused(eve.get(f"/api/v1/accounts/{account}"), 404, "account_not_found")
        with proc.client() as admin:
            assert ok(admin.get(members))["members"] == [{"user_id": ids["dee"], "role": "trade"}]
    finally:
        proc.stop()
