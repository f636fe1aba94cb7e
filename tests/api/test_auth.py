"""Users, sessions, tokens, API keys, abilities and ownership through a running server."""

from __future__ import annotations

import time
import urllib.parse
import uuid
from decimal import Decimal
from typing import Any

import httpx
import jwt
import pytest
import websockets
import websockets.exceptions

from coinwire.api.client import RpcClient, RpcError
from tests.api.conftest import SMTP_PASSWORD
from tests.server import ADMIN_PASSWORD, ServerProcess


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> dict[str, str]:
    """A viewer, two traders (one pro) created by admin; name -> password."""
    made = {"vera": ("viewer", "free"), "tom": ("trader", "free"), "tess": ("trader", "pro")}
    passwords = {}
    with server.client() as admin:
        for name, (role, plan) in made.items():
            password = f"{name}-pw-{uuid.uuid4().hex[:8]}"
            r = admin.post("/api/v1/users", json={"username": name, "password": password, "role": role, "plan": plan})
            assert r.status_code == 201, r.text
            passwords[name] = password
    return passwords


def login(server: ServerProcess, name: str, password: str) -> dict[str, Any]:
    r = httpx.post(server.http + "/api/v1/auth/login", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def tokens(server: ServerProcess, users: dict[str, str]) -> dict[str, str]:
    return {name: login(server, name, pw)["access_token"] for name, pw in users.items()}


def client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, headers=bearer(token), timeout=10)


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def far_below(server: ServerProcess) -> str:
    bid = Decimal(httpx.get(server.http + "/xwrap/v1/demo/pricing", headers=server.headers).json()["BTC_USDT"]["bid"])
    return str((bid / 2).quantize(Decimal("0.01")))


# --- sign-in and tokens ----------------------------------------------------------------------------
def test_login_answers_a_token_pair_and_me_says_who(server: ServerProcess) -> None:
    pair = login(server, "admin", ADMIN_PASSWORD)
    assert pair["token_type"] == "bearer" and pair["refresh_token"] and pair["expires_in"] == 900
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["role"] == "admin" and claims["plan"] == "pro" and claims["sid"] and claims["sub"] == "1"
    me = httpx.get(server.http + "/api/v1/me", headers=bearer(pair["access_token"])).json()
    assert me["username"] == "admin" and me["session_id"] == claims["sid"]


@pytest.mark.parametrize("body, expected", [
    ({"username": "admin", "password": "wrong-password"}, (401, "invalid_credentials")),
    ({"username": "nobody", "password": "whatever-pass"}, (401, "invalid_credentials")),
    ({"username": "admin' OR '1'='1", "password": "' OR 1=1 --"}, (401, "invalid_credentials")),
    ({"username": "<script>alert(1)</script>", "password": "x" * 20}, (401, "invalid_credentials")),
    ({"username": "admin", "password": ADMIN_PASSWORD, "role": "admin"}, (400, "invalid_params")),
    ({"username": "admin"}, (400, "invalid_params")),
])
def test_bad_logins_are_refused_with_stable_codes(server: ServerProcess, body: dict[str, Any], expected: tuple[int, str]) -> None:
    assert error(httpx.post(server.http + "/api/v1/auth/login", json=body)) == expected


def _forge(claims: dict[str, Any], key: str = "not-the-secret-" * 3, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def test_forged_expired_none_and_garbage_tokens_are_401(server: ServerProcess) -> None:
    real = jwt.decode(server.token, options={"verify_signature": False})
    secret = (server.data_dir / "jwt_secret").read_bytes().strip()
    assert (server.data_dir / "jwt_secret").stat().st_mode & 0o777 == 0o600
    now = int(time.time())
    cases = {
        "forged": _forge(real),
        "none": jwt.encode(real, None, algorithm="none") if hasattr(jwt, "encode") else "",
        "expired": jwt.encode({**real, "iat": now - 2000, "exp": now - 1000}, secret, algorithm="HS256"),
        "garbage": "abc.def.ghi",
        "refresh-as-access": "deadbeef.secret",
    }
    for name, token in cases.items():
        code = error(httpx.get(server.http + "/xwrap/v1/status", headers=bearer(token)))
        assert code[0] == 401, name
        assert code[1] == ("token_expired" if name == "expired" else "invalid_token"), name
    assert error(httpx.get(server.http + "/xwrap/v1/status")) == (401, "unauthenticated")
    assert error(httpx.get(server.http + "/xwrap/v1/status", headers={"Authorization": "Basic YWRtaW46eA=="})) == (401, "invalid_token")
    # a token signed with the real secret for a session that does not exist
    stray = jwt.encode({**real, "sid": "0" * 32}, secret, algorithm="HS256")
    assert error(httpx.get(server.http + "/xwrap/v1/status", headers=bearer(stray))) == (401, "session_revoked")


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(server: ServerProcess) -> None:
    first = login(server, "admin", ADMIN_PASSWORD)
    second = httpx.post(server.http + "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert httpx.get(server.http + "/api/v1/me", headers=bearer(second["access_token"])).status_code == 200
    replay = httpx.post(server.http + "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert error(replay) == (401, "refresh_token_reused")
    # the whole session is gone: its newest tokens too
    assert error(httpx.get(server.http + "/api/v1/me", headers=bearer(second["access_token"]))) == (401, "session_revoked")
    again = httpx.post(server.http + "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert error(again) == (401, "invalid_refresh_token")


def test_logout_logout_all_and_session_list(server: ServerProcess, users: dict[str, str]) -> None:
    a, b = login(server, "tom", users["tom"]), login(server, "tom", users["tom"])
    sessions = httpx.get(server.http + "/api/v1/auth/sessions", headers=bearer(a["access_token"])).json()
    sid_a = jwt.decode(a["access_token"], options={"verify_signature": False})["sid"]
    assert any(s["id"] == sid_a and s["current"] for s in sessions) and len(sessions) >= 2
    assert "refresh_hash" not in sessions[0]
    assert httpx.post(server.http + "/api/v1/auth/logout", headers=bearer(a["access_token"])).json() == {"revoked": 1}
    assert error(httpx.get(server.http + "/api/v1/me", headers=bearer(a["access_token"]))) == (401, "session_revoked")
    assert httpx.get(server.http + "/api/v1/me", headers=bearer(b["access_token"])).status_code == 200
    c = login(server, "tom", users["tom"])
    assert httpx.post(server.http + "/api/v1/auth/logout_all", headers=bearer(c["access_token"])).json()["revoked"] >= 2
    for pair in (b, c):
        assert error(httpx.get(server.http + "/api/v1/me", headers=bearer(pair["access_token"]))) == (401, "session_revoked")


# --- abilities -------------------------------------------------------------------------------------
def test_a_viewer_reads_but_cannot_trade_or_create(server: ServerProcess, tokens: dict[str, str]) -> None:
    with client(server, tokens["vera"]) as vera:
        assert vera.get("/xwrap/v1/demo/pricing").status_code == 200
        order = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "size": "0.01", "limit": far_below(server)}
        assert error(vera.post("/xwrap/v1/orders/new", json=order)) == (403, "forbidden")
        assert error(vera.post("/xwrap/v1/wallets/new", json={"wallets": []})) == (403, "forbidden")
        assert error(vera.post("/api/v1/users", json={"username": "eve", "password": "x" * 12})) == (403, "forbidden")
        rules = vera.get("/api/v1/me/abilities").json()
        assert {"action": "read", "subject": "market", "own_only": True} in rules["rules"]
        # the order channel carries only the accounts a user may read: a viewer's granted ones, none here
        assert not any(r["action"] == "trade" for r in rules["rules"]) and "order" in rules["channels"]


async def test_a_viewer_cannot_trade_or_follow_others_orders_over_rpc(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['vera']}") as rpc:
        assert (await rpc.call("get_status"))["status"] == "online"
        with pytest.raises(RpcError) as refused:
            await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.01")
        assert refused.value.data["code"] == "forbidden"
        assert "order" in (await rpc.call("subscribe", channels=["order"]))["channels"]  # the accounts vera may read: none
        with pytest.raises(RpcError) as other:
            await rpc.call("subscribe", channels=["order"], account=1)  # an account she was not granted
        assert other.value.data["code"] == "account_not_found"
        assert "ticker" in (await rpc.call("subscribe", channels=["ticker"]))["channels"]


def test_the_pro_plan_gates_the_frontier(server: ServerProcess, tokens: dict[str, str]) -> None:
    body = {"exchange": "demo", "symbols": ["BTC/USDT"], "timeframe": "1d"}
    assert error(httpx.post(server.http + "/api/v1/frontier", json=body, headers=bearer(tokens["tom"]))) == (403, "plan_required")
    assert httpx.post(server.http + "/api/v1/frontier", json=body, headers=bearer(tokens["tess"])).status_code != 403


def test_api_keys_are_shown_once_stored_hashed_and_scoped(server: ServerProcess, tokens: dict[str, str]) -> None:
    with client(server, tokens["tess"]) as tess:
        made = tess.post("/api/v1/api_keys", json={"name": "bot", "scopes": ["read"]})
        assert made.status_code == 201
        key = made.json()["key"]
        listed = tess.get("/api/v1/api_keys").json()
        assert [k["id"] for k in listed] == [made.json()["id"]] and key not in str(listed)
        assert error(tess.post("/api/v1/api_keys", json={"name": "x", "scopes": ["admin"]})) == (403, "forbidden")
        assert error(tess.post("/api/v1/api_keys", json={"name": "x", "scopes": ["root"]})) == (400, "invalid_scopes")
    with client(server, key) as bot:
        assert bot.get("/xwrap/v1/demo/pricing").status_code == 200
        order = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "size": "0.01", "limit": far_below(server)}
        assert error(bot.post("/xwrap/v1/orders/new", json=order)) == (403, "scope_missing")
        assert error(bot.post("/api/v1/api_keys", json={"name": "child", "scopes": ["read"]})) == (403, "scope_missing")
    with client(server, tokens["tess"]) as tess:
        assert tess.delete(f"/api/v1/api_keys/{made.json()['id']}").status_code == 200
    assert error(httpx.get(server.http + "/xwrap/v1/status", headers=bearer(key))) == (401, "invalid_api_key")
    assert error(httpx.get(server.http + "/xwrap/v1/status", headers=bearer(key[:-1] + "A"))) == (401, "invalid_api_key")


async def test_websockets_authenticate_by_header_or_query(server: ServerProcess, tokens: dict[str, str]) -> None:
    for url in (server.ws_anonymous, f"{server.ws_anonymous}?access_token=forged.token.here"):
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(url):
                pass
        assert refused.value.response.status_code == 403
    async with websockets.connect(server.ws_anonymous, additional_headers=bearer(tokens["tom"])) as ws:
        await ws.send('{"jsonrpc": "2.0", "id": 1, "method": "get_status", "params": {}}')
        assert '"online"' in await ws.recv()


def test_admins_create_users_others_cannot_and_input_is_checked(server: ServerProcess, tokens: dict[str, str]) -> None:
    with server.client() as admin:
        assert error(admin.post("/api/v1/users", json={"username": "Bad Name!", "password": "x" * 12})) == (400, "invalid_username")
        assert error(admin.post("/api/v1/users", json={"username": "shorty", "password": "x"})) == (400, "weak_password")
        assert error(admin.post("/api/v1/users", json={"username": "rolo", "password": "x" * 12, "role": "god"})) == (400, "invalid_role")
        assert error(admin.post("/api/v1/users", json={"username": "admin", "password": "x" * 12})) == (409, "user_exists")
        names = [u["username"] for u in admin.get("/api/v1/users").json()]
        assert "admin" in names and "password_hash" not in str(admin.get("/api/v1/users").json())
    assert error(httpx.get(server.http + "/api/v1/users", headers=bearer(tokens["tom"]))) == (403, "forbidden")


# --- ownership -------------------------------------------------------------------------------------
async def test_two_users_never_see_each_others_wallet_sets_and_orders(server: ServerProcess, tokens: dict[str, str]) -> None:
    limit = far_below(server)
    mine: dict[str, dict[str, Any]] = {}
    for name in ("tom", "tess"):
        async with RpcClient(f"{server.ws_anonymous}?access_token={tokens[name]}") as rpc:
            ws = await rpc.call("create_wallet_set", wallets=[{"exchange": "demo", "currency": "USDT", "allocation": "1000"}])
            order = await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.001",
                                   limit=limit, wallet_set_id=ws["id"])
            mine[name] = {"set": ws["id"], "order": order["id"], "oid": order["client_order_id"]}
    tom, tess = mine["tom"], mine["tess"]
    async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as rpc:
        assert (await rpc.call("get_wallet_set", set_id=tom["set"]))
        for method, params in [
            ("get_wallet_set", {"set_id": tess["set"]}),
            ("get_wallet_set_history", {"set_id": tess["set"]}),
            ("deactivate_wallet_set", {"set_id": tess["set"]}),
            ("cancel_order", {"order_id": tess["order"]}),
            ("cancel_order", {"client_oid": tess["oid"]}),
            ("make_order", {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.001",
                            "limit": limit, "wallet_set_id": tess["set"]}),
        ]:
            with pytest.raises(RpcError) as hidden:
                await rpc.call(method, **params)
            # an order id answers as an order that does not exist (order_not_found), the rest as unknown resources
            assert hidden.value.code == -32001 and hidden.value.data["code"].startswith(("unknown_", "order_not_found")), method
        open_ids = [o["id"] for o in await rpc.call("list_open_orders")]
        assert tom["order"] in open_ids and tess["order"] not in open_ids
        recent_ids = [o["id"] for o in await rpc.call("list_recent_orders", include_open=True)]
        assert tess["order"] not in recent_ids
        sets = await rpc.call("get_all_wallet_sets")
        assert str(tom["set"]) in sets and str(tess["set"]) not in sets
    with client(server, tokens["tom"]) as http:
        assert error(http.get(f"/xwrap/v1/wallets/{tess['set']}")) == (404, "unknown_wallet_set")
        assert error(http.post("/xwrap/v1/orders/cancel", json={"order_id": tess["order"]})) == (404, "order_not_found")
    async with RpcClient(server.ws) as admin:  # admins see all
        assert await admin.call("get_wallet_set", set_id=tess["set"])
        await admin.call("cancel_order", order_id=tess["order"])
        await admin.call("cancel_order", order_id=tom["order"])


def test_secrets_never_reach_the_log(server: ServerProcess, users: dict[str, str], tokens: dict[str, str]) -> None:
    # notification secrets: a webhook secret and a bot token saved, read back, used; the SMTP relay's password used
    bot_token, webhook_secret = "987654321:AAE-notify-bot-token-never-shown_x1", "webhook-secret-never-shown-0042"
    with client(server, tokens["tom"]) as tom:
        saved = tom.put("/api/v1/me/notifications", json={"channels": {
            "email": {"address": "tom@example.org"}, "telegram": {"bot_token": bot_token, "chat_id": "77"},
            "webhook": {"url": "http://127.0.0.1:9/hook", "secret": webhook_secret}}, "events": {"trade_receipt": ["email"]}})
        assert saved.status_code == 200, saved.text
        answers = [saved.text, tom.get("/api/v1/me/notifications").text]
        for channel in ("email", "webhook", "telegram"):
            answers.append(tom.post("/api/v1/me/notifications/test", json={"channel": channel}).text)
        assert '"sent":false' in answers[2].replace(" ", "")  # the relay refused: said without its password
    for answer in answers:
        assert bot_token not in answer and webhook_secret not in answer and SMTP_PASSWORD not in answer
    log = server.log_path.read_text(errors="replace")
    assert "request refused" in log  # the log did capture this session's refusals
    for secret in [ADMIN_PASSWORD, *users.values(), *tokens.values(), server.token, bot_token, webhook_secret, SMTP_PASSWORD]:
        assert secret not in log


def test_runs_belong_to_whoever_started_them(server: ServerProcess, tokens: dict[str, str]) -> None:
    with client(server, tokens["tom"]) as tom, client(server, tokens["tess"]) as tess:
        started = tom.put("/runnables/hodl/start", json={"mode": "paper", "balances": {"demo:USDT": "100"},
                                                          "params": {"timeframe": "1s"}})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        try:
            assert tom.get(f"/runs/{run_id}").status_code == 200
            assert run_id in [r["run_id"] for r in tom.get("/runs").json()]
            for path in (f"/runs/{run_id}", f"/runs/{run_id}/messages", f"/runs/{run_id}/log", f"/runs/{run_id}/components"):
                assert error(tess.get(path)) == (404, "unknown_run"), path
            assert error(tess.put(f"/runs/{run_id}/stop")) == (404, "unknown_run")
            assert run_id not in [r["run_id"] for r in tess.get("/runs").json()]
            with server.client() as admin:  # admins see all
                assert run_id in [r["run_id"] for r in admin.get("/runs").json()]
        finally:
            tom.put(f"/runs/{run_id}/stop")


async def test_order_pushes_reach_only_their_owner(server: ServerProcess, tokens: dict[str, str]) -> None:
    import asyncio

    async with RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as tom, \
            RpcClient(f"{server.ws_anonymous}?access_token={tokens['tess']}") as tess:
        await tess.call("subscribe", channels=["order", "trade"])  # her own accounts' only
        ws = await tom.call("create_wallet_set", wallets=[{"exchange": "demo", "currency": "USDT", "allocation": "100"}])
        order = await tom.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.001",
                               limit=far_below(server), wallet_set_id=ws["id"])
        await tom.call("cancel_order", order_id=order["id"])
        await asyncio.sleep(0.5)

        def drained(rpc: RpcClient) -> list[tuple[str, Any]]:
            out = []
            while not rpc.notifications.empty():
                out.append(rpc.notifications.get_nowait())
            return out

        assert any(name == "order" and params["id"] == order["id"] for name, params in drained(tom))
        assert not [name for name, _ in drained(tess) if name in ("order", "trade")]


def test_the_audit_log_records_who_did_what_from_where(server: ServerProcess, tokens: dict[str, str]) -> None:
    with client(server, tokens["vera"]) as vera:
        refused = vera.post("/xwrap/v1/wallets/new", json={"wallets": []})
        assert refused.status_code == 403
        assert error(vera.get("/api/v1/audit")) == (403, "forbidden")
    with server.client() as admin:
        rows = admin.get("/api/v1/audit", params={"user": "vera", "limit": 5}).json()
        assert rows[0]["action"] == "POST /xwrap/v1/wallets/new" and rows[0]["outcome"] == "forbidden"
        assert rows[0]["client_ip"] == "127.0.0.1" and rows[0]["ts"] > 0
        made = admin.get("/api/v1/audit", params={"action": "POST /api/v1/users"}).json()
        assert {(r["username"], r["outcome"]) for r in made} >= {("admin", "201"), ("admin", "409"), ("vera", "forbidden")}
        orders = admin.get("/api/v1/audit", params={"user": "tom", "action": "rpc make_order"}).json()
        assert orders and all(r["target"].startswith("wallet_set_id=") for r in orders)
        hidden = admin.get("/api/v1/audit", params={"user": "tom", "action": "rpc deactivate_wallet_set"}).json()
        assert [r["outcome"] for r in hidden] == ["unknown_wallet_set"]  # tom's try on tess's set is audited
        assert not admin.get("/api/v1/audit", params={"action": "rpc get_"}).json()  # reads are not
        first = admin.get("/api/v1/audit", params={"limit": 2}).json()
        older = admin.get("/api/v1/audit", params={"limit": 2, "before": first[-1]["id"]}).json()
        assert older[0]["id"] < first[-1]["id"]
        assert error(admin.get("/api/v1/audit", params={"limit": 0})) == (400, "invalid_limit")
        assert error(admin.get("/api/v1/audit", params={"nope": 1})) == (400, "invalid_params")


def test_secrets_are_not_in_the_store_either(server: ServerProcess, users: dict[str, str], tokens: dict[str, str]) -> None:
    files = [p for p in server.data_dir.glob("coinwire.db*") if p.is_file()] + list(server.data_dir.glob("coinwire.db.journal/*.cwj"))
    assert any(p.suffix == ".cwj" for p in files)  # the store's journal is searched too
    stored = b"".join(p.read_bytes() for p in files)
    for secret in [ADMIN_PASSWORD, *users.values(), *tokens.values()]:
        assert secret.encode() not in stored


PAYLOADS = ["' OR '1'='1' --", "1; DROP TABLE orders; --", "<script>alert(1)</script>", "${jndi:ldap://x/a}", "\u0000", "../../etc/passwd"]
ORDER = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.001", "limit": "1000", "client_oid": "ok-1"}


def test_injection_payloads_in_every_string_field_are_refused_and_change_nothing(server: ServerProcess, tokens: dict[str, str]) -> None:
    with client(server, tokens["tom"]) as tom:
        before = tom.get("/xwrap/v1/orders/recent", params={"include_open": "true", "limit": 1000}).json()
        for field in ("exchange", "pair", "side", "type", "size", "limit"):
            for payload in PAYLOADS:
                r = tom.post("/xwrap/v1/orders/new", json={**ORDER, field: payload})
                assert 400 <= r.status_code < 500 and r.json()["error"]["code"], (field, payload, r.text)
        for payload in PAYLOADS:
            r = tom.post("/xwrap/v1/wallets/new", json={"wallets": [{"exchange": payload, "currency": payload, "allocation": "1"}]})
            assert 400 <= r.status_code < 500, r.text
            quoted = urllib.parse.quote(payload, safe="")
            assert 400 <= tom.get(f"/xwrap/v1/{quoted}/pricing").status_code < 500
            assert tom.get(f"/runs/{quoted}").status_code == (400 if "\u0000" in payload else 404)  # a NUL: invalid_characters
        after = tom.get("/xwrap/v1/orders/recent", params={"include_open": "true", "limit": 1000}).json()
        assert after == before
    with server.client() as admin:
        assert "admin" in [u["username"] for u in admin.get("/api/v1/users").json()]  # the users table is intact


async def test_logout_ends_an_open_websocket_at_once(server: ServerProcess, users: dict[str, str]) -> None:
    import asyncio

    pair = login(server, "tess", users["tess"])
    async with websockets.connect(server.ws_anonymous, additional_headers=bearer(pair["access_token"])) as ws:
        await ws.send('{"jsonrpc": "2.0", "id": 1, "method": "get_status", "params": {}}')
        assert '"online"' in await ws.recv()
        httpx.post(server.http + "/api/v1/auth/logout", headers=bearer(pair["access_token"])).raise_for_status()
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 3)
        assert (ws.close_code, ws.close_reason) == (4001, "session_revoked")
