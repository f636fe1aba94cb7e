"""Clients of a test server signed in as one user (JSON-RPC, REST), and the code a refused JSON-RPC call answers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

__all__ = ["code_of", "error_code", "http", "ok", "refused", "rpc", "wait_for"]


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON of an answer that must have `status`."""
    assert response.status_code == status, response.text
    return response.json()


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The error of an answer that must be refused with `status` and the stable `code` (and a message)."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return dict(error)


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


def wait_for(client: httpx.Client, path: str, ok: Callable[[Any], bool], timeout: float = 60.0) -> Any:
    """GET `path` until its JSON answer is `ok` (a run that finishes, a message that arrives); AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(path).json()
        if ok(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never got there; last: {json.dumps(answer)[:2000]}")
        time.sleep(0.05)


def error_code(r: httpx.Response) -> str:
    """The stable code of a refused HTTP request: from `{"error": {code, message}}`, or from the X-Error-Code header of the
    seed's `{"error": "message"}` (its strategy API under /cryptick/v1)."""
    error = r.json()["error"]
    return r.headers["x-error-code"] if isinstance(error, str) else str(error["code"])
