"""A JSON-RPC 2.0 WebSocket client for coinwire's `/rpc`: concurrent calls, notifications queued."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import msgspec
import websockets

__all__ = ["RpcClient", "RpcError"]


class RpcError(Exception):
    """An error answer: `code` is the JSON-RPC code, `data["code"]` the stable coinwire code."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None) -> None:
        super().__init__(f"{code} {message} {data or ''}")
        self.code = code
        self.message = message
        self.data = data or {}

    @property
    def reason(self) -> str | None:
        return self.data.get("code")


class RpcClient:
    """`async with RpcClient(url) as rpc: await rpc.call("get_status")`."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.notifications: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RpcClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._ws = await websockets.connect(self.url, additional_headers=self.headers, max_size=1 << 24)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = msgspec.json.decode(raw)
                for item in message if isinstance(message, list) else [message]:
                    self._dispatch(item)
        except websockets.ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))

    def _dispatch(self, item: dict[str, Any]) -> None:
        if "method" in item and "id" not in item:
            self.notifications.put_nowait((item["method"], item.get("params")))
            return
        future = self._pending.pop(item.get("id"), None)  # type: ignore[arg-type]
        if future is None or future.done():
            return
        if "error" in item:
            err = item["error"]
            future.set_exception(RpcError(err.get("code", 0), err.get("message", ""), err.get("data")))
        else:
            future.set_result(item.get("result"))

    async def send_raw(self, text: str) -> None:
        await self._ws.send(text)

    async def call(self, method: str, timeout: float = 10.0, **params: Any) -> Any:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self._ws.send(msgspec.json.encode({"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}).decode())
        return await asyncio.wait_for(future, timeout)

    async def notification(self, method: str, timeout: float = 5.0) -> Any:
        """Wait for the next notification named `method` (others are dropped)."""
        async def wait() -> Any:
            while True:
                name, params = await self.notifications.get()
                if name == method:
                    return params

        return await asyncio.wait_for(wait(), timeout)
