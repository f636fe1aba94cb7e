"""Bad input gets a clear error at the edge: slow and deeply nested bodies, non-ASCII digits, exact JSON numbers, strict integers, maximum lengths."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import websockets

from coinwire.api import params as P
from coinwire.api.client import RpcClient, RpcError
from coinwire.api.methods import METHOD_NAMES, _REGISTRY
from tests.conftest import POSTGRES_URL, require_service
from tests.server import ServerProcess

EX = "demo"
ENV = {"COINWIRE_BODY_TIMEOUT": "1", "COINWIRE_RATE_LIMIT_IP": "1000/5000", "COINWIRE_RATE_LIMIT_USER": "1000/5000"}
NESTED = b"[" * 200_000  # 200 KB of nesting: deeper than any decoder's recursion limit
LONG = "r" * 100  # beyond the 64 characters of an identifier (the store's VARCHAR(64))
HUGE = "r" * 500_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("input")), env=ENV)
    proc.start()
    yield proc
    proc.stop()


def _reset_postgres() -> None:
    """A fresh public schema in the test database: this module's server is its only user."""
    import asyncpg

    async def reset() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    asyncio.run(reset())


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def any_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on SQLite (the default) or on PostgreSQL."""
    env = dict(ENV)
    if request.param == "postgresql":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        _reset_postgres()
        env["COINWIRE_STORE_URL"] = POSTGRES_URL
    proc = ServerProcess(Path(tmp_path_factory.mktemp(f"input-{request.param}")), env=env)
    proc.start()
    yield proc
    proc.stop()


def _error(r: httpx.Response) -> str:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    return str(r.json()["error"]["code"])


async def _frame(server: ServerProcess, text: str | bytes) -> Any:
    """One raw JSON-RPC frame and its answer (what a client library would not let us send)."""
    async with websockets.connect(server.ws, max_size=None) as ws:
        await ws.send(text if isinstance(text, str) else text.decode())
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def _far_limit(rpc: RpcClient) -> str:
    bid = float((await rpc.call("get_pricing", exchange=EX))["BTC_USDT"]["bid"])
    return f"{bid * 0.5:.2f}"


async def _refused(rpc: RpcClient, method: str, **params: Any) -> str:
    try:
        result = await rpc.call(method, **params)
    except RpcError as exc:
        assert exc.code != -32603, exc
        return str(exc.reason)
    raise AssertionError(f"{method} {str(params)[:200]} was accepted: {str(result)[:200]}")


# --- slow bodies (finding 7) --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/xwrap/v1/orders/new", "/api/v1/auth/login"])
def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed(server: ServerProcess, path: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=8) as sock:
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        start = time.monotonic()
        sock.sendall(head.encode() + b'{"exchang')  # 10 of the 100 bytes declared, then nothing
        answer = b""
        while True:  # read until the server closes: it must, and soon
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"body_timeout"' in answer and 0.9 <= waited < 5, waited


