"""`logmessages` carry every warning and error with level, source, message, time and context; users read only their own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient
from tests.server import ServerProcess


async def _drain(client: RpcClient, seconds: float) -> list[Any]:
    """Every `logmessages` notification that arrives within `seconds`."""
    got: list[Any] = []
    try:
        while True:
            got.append(await client.notification("logmessages", timeout=seconds))
    except TimeoutError:
        return got


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    proc = ServerProcess(tmp_path, env={"COINWIRE_LOG_FEED_PER_SECOND": "5"})
    proc.start()
    yield proc
    proc.stop()


async def test_warnings_reach_admins_and_users_only_their_own_orders_logs(server: ServerProcess) -> None:
    tokens = server.traders("tom", "tess")
    async with RpcClient(server.ws) as admin, \
            RpcClient(f"{server.ws_anonymous}?access_token={tokens['tom']}") as tom, \
            RpcClient(f"{server.ws_anonymous}?access_token={tokens['tess']}") as tess:
        for client in (admin, tom, tess):
            await client.call("subscribe", channels=["logmessages"])
        # a warning the server logs: a refused sign-in (no one's resource: admins only)
        assert httpx.post(server.http + "/api/v1/auth/login", json={"username": "tom", "password": "wrong-password"}).status_code == 401
        warning = await admin.notification("logmessages")
        assert warning["level"] == "warning" and warning["levelname"] == "WARNING"
        assert warning["source"] == "coinwire.auth" and warning["message"] == "sign-in refused"
        assert isinstance(warning["time"], int) and abs(warning["time"] / 1000 - warning["created"]) < 1
        assert "client_ip" in warning["context"] and "password" not in str(warning["context"])
        # tom's order ends: tom and the admin are told, tess is not
        bid = float((await tom.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
        await tom.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="limit", size="0.001",
                       limit=f"{bid * 0.5:.2f}", client_oid="tom-log-1")
        await tom.call("cancel_order", client_oid="tom-log-1")
        mine = list(await _drain(tom, 1.5))
        assert [m["message"] for m in mine] == ["Order tom-log-1 is done (cancelled)"], mine
        assert isinstance(mine[0]["context"]["owner_id"], int)
        assert await _drain(tess, 0.5) == []  # neither the warning nor tom's order
        assert any(m["message"] == "Order tom-log-1 is done (cancelled)" for m in await _drain(admin, 0.5))

    # the REST route answers the same, newest first
    def logs(token: str | None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(server.http + "/api/v1/logs", headers=headers, params=params)

    with server.client() as admin_http:
        everything = admin_http.get("/api/v1/logs").json()["logs"]
    messages = [m["message"] for m in everything]
    assert "sign-in refused" in messages and "Order tom-log-1 is done (cancelled)" in messages
    assert messages.index("Order tom-log-1 is done (cancelled)") < messages.index("sign-in refused")  # newest first
    assert [m["message"] for m in logs(tokens["tom"]).json()["logs"]] == ["Order tom-log-1 is done (cancelled)"]
    assert logs(tokens["tess"]).json()["logs"] == []
    assert len(logs(tokens["tom"], limit=1).json()["logs"]) == 1
    for bad in ({"limit": "0"}, {"limit": "x"}, {"limit": "1001"}, {"other": "1"}):
        r = logs(tokens["tom"], **bad)
        assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_limit", "invalid_params"), (bad, r.text)
    assert logs(None).status_code == 401


async def test_a_flood_of_warnings_is_bounded(server: ServerProcess) -> None:
    async with RpcClient(server.ws) as admin:
        await admin.call("subscribe", channels=["logmessages"])
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
            for _ in range(3):  # 3 rounds of 20 refused sign-ins, each round within about a second
                await asyncio.gather(*(http.post("/api/v1/auth/login", json={"username": "nobody", "password": "wrong-password"})
                                       for _ in range(20)))
        got = await _drain(admin, 1.5)
    logged = server.log_path.read_text().count('"event": "sign-in refused"')  # what the server logged: every line
    assert logged >= 20, logged
    assert 1 <= len(got) <= 5 * 4, len(got)  # COINWIRE_LOG_FEED_PER_SECOND=5, over at most 4 seconds
    with server.client() as admin_http:
        metrics = admin_http.get("/metrics").text
    dropped = [float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("coinwire_log_messages_dropped_total ")]
    assert dropped == [logged - len(got)], (dropped, logged, len(got))  # every one not sent is counted
