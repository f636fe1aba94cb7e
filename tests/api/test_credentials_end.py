"""Open /rpc connections end with their credentials: expiry, a revoked API key, logout, logout_all, a disabled user.

The server's access tokens live `TTL` seconds; it runs on SQLite and on PostgreSQL (the
revocations and the re-check go through the store). Each connection here places a resting order
first, so the server has something of its user to push; after the credential ends, the
order is cancelled by an admin and the connection must be closed (code 4001 and the reason)
with nothing of it delivered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets

from tests.conftest import POSTGRES_URL, require_service
from tests.server import ServerProcess
from tests.test_cli import coinwire

TTL = 6  # seconds an access token lives on this module's server
RECHECK = 10.0  # the re-check that catches what another process ended (`coinwire user disable`)
_ids = itertools.count(1)


async def _empty_database(url: str) -> None:
    """This module's PostgreSQL database, emptied: the server migrates it afresh."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"COINWIRE_ACCESS_TOKEN_TTL": str(TTL)}
    if request.param == "postgresql":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        asyncio.run(_empty_database(POSTGRES_URL))
        env["COINWIRE_STORE_URL"] = POSTGRES_URL
    proc = ServerProcess(Path(tmp_path_factory.mktemp(f"creds-{request.param}")), env=env)
    proc.start()
    yield proc
    proc.stop()


def admin(server: ServerProcess) -> httpx.Client:
    """Admin over HTTP with a fresh token (they expire within seconds here)."""
    token = server.login()["access_token"]
    return httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.fixture(scope="module")
def users(server: ServerProcess) -> dict[str, str]:
    passwords = {}
    with admin(server) as http:
        for name in ("tina", "todd", "dora", "kim"):
            password = f"{name}-pw-{uuid.uuid4().hex[:8]}"
            r = http.post("/api/v1/users", json={"username": name, "password": password, "role": "trader"})
            assert r.status_code == 201, r.text
            passwords[name] = password
    return passwords


def login(server: ServerProcess, name: str, password: str) -> dict[str, Any]:
    r = httpx.post(server.http + "/api/v1/auth/login", json={"username": name, "password": password}, timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_key(server: ServerProcess, token: str) -> str:
    r = httpx.post(server.http + "/api/v1/api_keys", json={"name": "bot", "scopes": ["trade"]}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


class Conn:
    """One raw /rpc connection: calls answered in order, notifications kept, the close code and reason seen."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.notifications: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """The whole answer ({result} or {error}) of one call."""
        rid = next(_ids)
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            for item in message if isinstance(message, list) else [message]:
                if item.get("id") == rid:
                    return dict(item)
                if "method" in item:
                    self.notifications.append(item)

    async def closed(self, within: float) -> tuple[int | None, str]:
        """Read until the server closes the connection; fails if it is still open after `within` seconds."""
        try:
            async with asyncio.timeout(within):
                async for raw in self.ws:
                    message = json.loads(raw)
                    self.notifications.extend(m for m in (message if isinstance(message, list) else [message]) if "method" in m)
        except websockets.ConnectionClosed:
            pass  # closed with a code other than 1000
        except TimeoutError:
            pytest.fail(f"the connection is still open {within} s later")
        return self.ws.close_code, self.ws.close_reason


def connect(server: ServerProcess, credential: str) -> Any:
    return websockets.connect(server.ws_anonymous, additional_headers=bearer(credential))


def far_below(server: ServerProcess) -> str:
    with admin(server) as http:
        bid = Decimal(http.get("/xwrap/v1/demo/pricing").json()["BTC_USDT"]["bid"])
    return str((bid / 2).quantize(Decimal("0.01")))


async def rest_order(conn: Conn, limit: str) -> int:
    answer = await conn.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.001", limit=limit)
    assert "result" in answer, answer
    return int(answer["result"]["id"])


def cancel_as_admin(server: ServerProcess, order_id: int) -> None:
    with admin(server) as http:
        assert http.post("/xwrap/v1/orders/cancel", json={"order_id": order_id}).status_code == 200


def cancelled(conn: Conn, order_id: int) -> list[dict[str, Any]]:
    """The notifications the connection received of its order's end (the admin cancels it after the credential ended)."""
    return [n for n in conn.notifications if n["method"] == "order" and n["params"]["id"] == order_id and n["params"]["status"] == "done"]


async def test_a_websocket_ends_when_its_access_token_expires(server: ServerProcess, users: dict[str, str]) -> None:
    limit = far_below(server)
    pair = login(server, "tina", users["tina"])
    expires = jwt.decode(pair["access_token"], options={"verify_signature": False})["exp"]
    async with connect(server, pair["access_token"]) as ws:
        conn = Conn(ws)
        order_id = await rest_order(conn, limit)
        code, reason = await conn.closed(within=TTL + 4)
        closed_at = time.time()
        assert (code, reason) == (4001, "token_expired")
        assert expires - 0.5 <= closed_at <= expires + 1.5  # at the expiry instant, not at some later call
        cancel_as_admin(server, order_id)
        await asyncio.sleep(0.3)
        assert not cancelled(conn, order_id)  # nothing of the user's orders after the end


async def test_authenticate_by_message_keeps_a_connection_past_its_first_tokens_expiry(
    server: ServerProcess, users: dict[str, str]
) -> None:
    first = login(server, "tina", users["tina"])
    other = login(server, "kim", users["kim"])
    first_exp = jwt.decode(first["access_token"], options={"verify_signature": False})["exp"]
    async with connect(server, first["access_token"]) as ws:
        conn = Conn(ws)
        await asyncio.sleep(2.1)  # a token issued two seconds later expires two seconds later
        renewed = httpx.post(server.http + "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
        refused = await conn.call("authenticate", access_token=other["access_token"])  # another user's token
        assert refused["error"]["data"]["code"] == "other_user"
        garbage = await conn.call("authenticate", access_token="abc.def.ghi")
        assert garbage["error"]["data"]["code"] == "invalid_token"
        answer = await conn.call("authenticate", access_token=renewed["access_token"])
        assert str(answer["result"]["user_id"]) == jwt.decode(renewed["access_token"], options={"verify_signature": False})["sub"]
        assert answer["result"]["expires_at"] >= first_exp + 2
        await asyncio.sleep(max(0.0, first_exp - time.time()) + 0.5)
        status = await conn.call("get_status")
        assert status["result"]["status"] == "online"  # still open past the first token's expiry, as the same user
        me = await conn.call("list_open_orders")
        assert "result" in me


async def test_a_revoked_api_key_closes_its_open_connections_at_once(server: ServerProcess, users: dict[str, str]) -> None:
    limit = far_below(server)
    session = login(server, "tina", users["tina"])
    key = api_key(server, session["access_token"])
    key_id = key.split("_")[1]
    async with connect(server, key) as key_ws, connect(server, session["access_token"]) as session_ws:
        keyed, other = Conn(key_ws), Conn(session_ws)
        order_id = await rest_order(keyed, limit)
        r = httpx.delete(f"{server.http}/api/v1/api_keys/{key_id}", headers=bearer(session["access_token"]))
        assert r.status_code == 200, r.text
        revoked_at = time.monotonic()
        assert await keyed.closed(within=3) == (4001, "key_revoked")
        assert time.monotonic() - revoked_at < 2  # at once, not at a later re-check
        cancel_as_admin(server, order_id)
        await asyncio.sleep(0.3)
        assert not cancelled(keyed, order_id)
        assert (await other.call("get_status"))["result"]["status"] == "online"  # the same user's session goes on


async def test_logout_and_logout_all_close_their_sessions_connections(server: ServerProcess, users: dict[str, str]) -> None:
    limit = far_below(server)
    a, b = login(server, "todd", users["todd"]), login(server, "todd", users["todd"])
    key = api_key(server, a["access_token"])
    async with connect(server, a["access_token"]) as ws_a, connect(server, b["access_token"]) as ws_b, connect(server, key) as ws_key:
        conn_a, conn_b, conn_key = Conn(ws_a), Conn(ws_b), Conn(ws_key)
        order_a, order_b = await rest_order(conn_a, limit), await rest_order(conn_b, limit)
        assert httpx.post(server.http + "/api/v1/auth/logout", headers=bearer(a["access_token"])).status_code == 200
        assert await conn_a.closed(within=2) == (4001, "session_revoked")
        assert (await conn_b.call("get_status"))["result"]["status"] == "online"  # another session of the same user
        assert httpx.post(server.http + "/api/v1/auth/logout_all", headers=bearer(b["access_token"])).status_code == 200
        assert await conn_b.closed(within=2) == (4001, "session_revoked")
        cancel_as_admin(server, order_a)
        cancel_as_admin(server, order_b)
        await asyncio.sleep(0.3)
        assert not cancelled(conn_a, order_a) and not cancelled(conn_b, order_b)
        assert (await conn_key.call("get_status"))["result"]["status"] == "online"  # API keys are not sessions


async def test_a_user_disabled_from_the_command_line_loses_its_open_connections(server: ServerProcess, users: dict[str, str]) -> None:
    limit = far_below(server)
    session = login(server, "dora", users["dora"])
    key = api_key(server, session["access_token"])
    async with connect(server, key) as ws:
        conn = Conn(ws)
        order_id = await rest_order(conn, limit)
        store = {k: v for k, v in server.extra_env.items() if k == "COINWIRE_STORE_URL"}
        disabled = coinwire("--data-dir", str(server.data_dir), "user", "disable", "dora", env=store)  # another process
        assert disabled.returncode == 0, disabled.stderr
        assert await conn.closed(within=RECHECK + 3) == (4001, "user_disabled")
        cancel_as_admin(server, order_id)
        await asyncio.sleep(0.3)
        assert not cancelled(conn, order_id)
