"""Edge protection on a running server: rate limits (in process and in Redis), login lockout, body limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_service
from tests.server import ADMIN_PASSWORD, ServerProcess

LIMITS = {"COINWIRE_RATE_LIMIT_IP": "5/20", "COINWIRE_RATE_LIMIT_RPC": "5/10", "COINWIRE_MAX_BODY": "2048", "COINWIRE_CORS_ORIGINS": "https://dash.example"}


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.services)])
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = dict(LIMITS)
    if request.param == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        env["COINWIRE_CACHE_URL"] = "redis://127.0.0.1:6379/0"
    proc = ServerProcess(Path(tmp_path_factory.mktemp(f"limited-{request.param}")), env=env)
    proc.start()
    yield proc
    proc.stop()


def test_bodies_over_the_limit_are_413_and_run_nothing(limited: ServerProcess) -> None:
    headers = limited.headers
    big = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "market", "size": "0.01", "client_oid": "x" * 4000}
    r = httpx.post(limited.http + "/xwrap/v1/orders/new", json=big, headers=headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"username": "admin", "password": "'
        yield b"x" * 4000
        yield b'"}'

    r = httpx.post(limited.http + "/api/v1/auth/login", content=chunks())
    assert r.status_code == 413


def test_a_flood_from_one_address_gets_429_with_retry_after(limited: ServerProcess) -> None:
    with httpx.Client(base_url=limited.http, headers=limited.headers) as http:
        answers = [http.get("/xwrap/v1/status") for _ in range(40)]
    refused = [r for r in answers if r.status_code == 429]
    assert refused and answers[0].status_code == 200
    assert refused[0].json()["error"]["code"] == "rate_limited" and int(refused[0].headers["Retry-After"]) >= 1


def test_repeated_failed_logins_lock_the_name_with_backoff(limited: ServerProcess) -> None:
    import time

    time.sleep(4)  # let the address's bucket refill after the flood
    login = limited.http + "/api/v1/auth/login"
    codes = [httpx.post(login, json={"username": "admin", "password": f"guess-{i}"}).status_code for i in range(5)]
    assert codes == [401] * 5
    locked = httpx.post(login, json={"username": "admin", "password": ADMIN_PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "login_locked"
    assert int(locked.headers["Retry-After"]) >= 1
    time.sleep(int(locked.headers["Retry-After"]) + 0.1)
    assert httpx.post(login, json={"username": "admin", "password": ADMIN_PASSWORD}).status_code == 200


def test_security_headers_and_cors(limited: ServerProcess) -> None:
    r = httpx.get(limited.http + "/healthz")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    refused = httpx.get(limited.http + "/xwrap/v1/status")
    assert refused.status_code in (401, 429) and refused.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in httpx.get(limited.http + "/docs").headers
    preflight = httpx.options(limited.http + "/xwrap/v1/status", headers={
        "Origin": "https://dash.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "https://dash.example"
    other = httpx.options(limited.http + "/xwrap/v1/status", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in other.headers


async def test_a_flood_of_json_rpc_requests_on_one_connection_is_refused(limited: ServerProcess) -> None:
    import asyncio

    from coinwire.api.client import RpcClient, RpcError

    async with RpcClient(limited.ws) as rpc:
        results = await asyncio.gather(*(rpc.call("get_status") for _ in range(30)), return_exceptions=True)
        refused = [r for r in results if isinstance(r, RpcError)]
        assert refused and not isinstance(results[0], Exception)
        assert refused[0].data["code"] == "rate_limited" and refused[0].data["retry_after"] >= 1
        await asyncio.sleep(1.5)
        assert (await rpc.call("get_status"))["status"] == "online"  # refilled
