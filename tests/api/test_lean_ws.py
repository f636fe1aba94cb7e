"""The benchmark's lean WebSocket JSON-RPC client against a real RFC 6455 server (the `websockets` library).

The server side is a real `websockets` server in this process, so the framing is checked
by an independent implementation: masked client frames, fragmented server messages, pings
answered with pongs, the close handshake, a refused handshake, and error answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from benchmarks.lean_ws import LeanRpc, LeanRpcError, frame, mask


async def _handler(ws: ServerConnection) -> None:
    """A tiny JSON-RPC server: `echo` answers, `push` sends a fragmented notification first, `ping` pings."""
    async for raw in ws:
        request = json.loads(raw)
        method, params, rid = request["method"], request["params"], request["id"]
        if method == "push":
            note = json.dumps({"jsonrpc": "2.0", "method": "order", "params": params})
            await ws.send([note[:10], note[10:20], note[20:]])  # three frames: text + 2 continuations
            await ws.send(json.dumps({"jsonrpc": "2.0", "result": params, "id": rid}))
        elif method == "ping":
            pong = await ws.ping(b"abc")
            latency = await asyncio.wait_for(pong, 5)  # resolves only when our pong arrives
            await ws.send(json.dumps({"jsonrpc": "2.0", "result": {"pong": latency >= 0}, "id": rid}))
        elif method == "fail":
            error = {"code": -32602, "message": "bad", "data": {"code": "invalid_params"}}
            await ws.send(json.dumps({"jsonrpc": "2.0", "error": error, "id": rid}))
        elif method == "big":
            await ws.send(json.dumps({"jsonrpc": "2.0", "result": "x" * params["n"], "id": rid}))
        else:
            await ws.send(json.dumps({"jsonrpc": "2.0", "result": params, "id": rid}))


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with serve(_handler, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/rpc"


def test_mask_is_its_own_inverse_and_matches_the_rfc_example() -> None:
    key = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 5.7: a masked "Hello"
    assert frame(0x1, b"Hello", key) == bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    assert mask(mask(b"any payload at all", key), key) == b"any payload at all"
    assert mask(b"", key) == b""
    assert frame(0x2, b"x" * 300)[:4] == bytes([0x82, 126, 1, 44])
    assert frame(0x2, b"x" * 70_000)[:10] == bytes([0x82, 127]) + (70_000).to_bytes(8, "big")


async def test_round_trips_fragmented_notifications_and_errors(url: str) -> None:
    async with LeanRpc(url) as rpc:
        assert await rpc.call("echo", a=1, b="two") == {"a": 1, "b": "two"}
        assert await rpc.call("push", oid="x1") == {"oid": "x1"}
        assert rpc.notifications == 1
        with pytest.raises(LeanRpcError) as info:
            await rpc.call("fail")
        assert info.value.code == -32602 and info.value.data == {"code": "invalid_params"}
        assert len(await rpc.call("big", n=200_000)) == 200_000  # 64-bit length, many TCP reads
        results = await asyncio.gather(*(rpc.call("echo", i=i) for i in range(50)))
        assert [r["i"] for r in results] == list(range(50))


async def test_answers_pings(url: str) -> None:
    async with LeanRpc(url) as rpc:
        assert await rpc.call("ping") == {"pong": True}


async def test_close_handshake_then_calls_fail(url: str) -> None:
    rpc = LeanRpc(url)
    await rpc.connect()
    await rpc.close(timeout=5)
    assert rpc._protocol is not None and rpc._protocol.closed.done()
    with pytest.raises(ConnectionError):
        await rpc.call("echo")


async def test_refused_handshake_is_an_error() -> None:
    async def refuse(connection: ServerConnection, request: object) -> object:
        return connection.respond(403, "no\n")

    async with serve(_handler, "127.0.0.1", 0, process_request=refuse) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with pytest.raises(LeanRpcError, match="handshake refused"):
            await LeanRpc(f"ws://127.0.0.1:{port}/rpc").connect()
