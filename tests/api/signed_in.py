"""Clients of a test server signed in as one user (JSON-RPC, REST), and the code a refused JSON-RPC call answers."""

from __future__ import annotations

from typing import Any

import httpx

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

__all__ = ["code_of", "http", "rpc"]


def rpc(server: ServerProcess, token: str) -> RpcClient:
    return RpcClient(f"{server.ws_anonymous}?access_token={token}")


def http(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, timeout=10, headers={"Authorization": f"Bearer {token}"})


async def code_of(client: RpcClient, method: str, **params: Any) -> str:
    """The stable code of a call that must be refused (AssertionError when it is not)."""
    try:
        await client.call(method, **params)
    except RpcError as exc:
        return str(exc.data.get("code") if exc.data else exc.code)
    raise AssertionError(f"{method}({params}) was not refused")
