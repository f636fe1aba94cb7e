"""A lean JSON-RPC-over-WebSocket client for load generation: asyncio Protocol, RFC 6455 framing, msgspec.

Why not `coinwire.api.client.RpcClient`: it rides on the `websockets` library, which spends
about 175 µs of CPU per round trip; on a 2-core machine the benchmark client then eats the
core the server needs, and the figure measures the client. This one does the same true
request -> answer round trips (each call waits for the answer with its id) for a fraction
of the CPU: one `data_received` callback parses frames, answers settle futures, and
notifications are counted and discarded. It speaks enough of RFC 6455 for a client: the
opening handshake (checked `Sec-WebSocket-Accept`), masked client frames, text/binary
messages (fragmented or not), ping -> pong, and the close handshake. No extensions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import struct
from typing import Any
from urllib.parse import urlsplit

import msgspec

__all__ = ["LeanRpc", "LeanRpcError", "mask", "frame"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class LeanRpcError(Exception):
    """An error answer (`code` is the JSON-RPC code, `data` its details) or a protocol failure."""

    def __init__(self, message: str, code: int = 0, data: Any = None) -> None:
        super().__init__(f"{code} {message} {data or ''}".strip())
        self.code = code
        self.data = data


class _Reply(msgspec.Struct):
    """Only what routing needs; `result` stays raw JSON until a caller asks for it."""

    id: int | None = None
    method: str | None = None
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: Any = None


_decode_reply = msgspec.json.Decoder(_Reply).decode
_encode = msgspec.json.Encoder().encode


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte `key` repeated (RFC 6455 5.3), as one big-integer XOR."""
    n = len(payload)
    if not n:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """One final frame; masked with `key` (a client must mask), unmasked when `key` is None."""
    n = len(payload)
    bit = 0x80 if key is not None else 0
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, bit | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, bit | 127, n)
    if key is None:
        return head + payload
    return head + key + mask(payload, key)


class _Protocol(asyncio.Protocol):
    def __init__(self, client: LeanRpc, key: bytes) -> None:
        self.client = client
        self.key = key  # the Sec-WebSocket-Key we sent
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = bytes(self.buffer[:end]), self.buffer[end + 4 :]
            try:
                self._check_handshake(head)
            except LeanRpcError as exc:
                self.handshake.set_exception(exc)
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded = True
            self.handshake.set_result(None)
        self._frames()

    def _check_handshake(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise LeanRpcError(f"handshake refused: {lines[0]!r}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        expected = base64.b64encode(hashlib.sha1(self.key + _GUID, usedforsecurity=False).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise LeanRpcError("handshake: wrong Sec-WebSocket-Accept")
        if headers.get("sec-websocket-extensions"):
            raise LeanRpcError("handshake: server chose an extension we did not offer")

    def _frames(self) -> None:
        buf = self.buffer
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if b1 & 0x80:
                self._fail("the server masked a frame")
                return
            if b0 & 0x70:
                self._fail("reserved bits set (no extension was negotiated)")
                return
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_BINARY):
            if self.fragments:
                self._fail("a new message started inside a fragmented one")
            elif fin:
                self.client._message(payload)
            else:
                self.fragments.append(payload)
        elif opcode == OP_CONT:
            if not self.fragments:
                self._fail("a continuation frame without a message")
                return
            self.fragments.append(payload)
            if fin:
                message, self.fragments = b"".join(self.fragments), []
                self.client._message(message)
        elif opcode == OP_PING:
            self.client._send_frame(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            if not self.client._close_sent:
                self.client._send_frame(OP_CLOSE, payload[:2])
                self.client._close_sent = True
            self.transport.close()  # type: ignore[union-attr]
        elif opcode != OP_PONG:
            self._fail(f"unknown opcode {opcode}")

    def _fail(self, why: str) -> None:
        self.client._send_frame(OP_CLOSE, struct.pack("!H", 1002))
        self.client._close_sent = True
        self.transport.close()  # type: ignore[union-attr]
        self.client._fail_all(LeanRpcError(f"protocol error: {why}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("connection closed during the handshake"))
        self.client._fail_all(ConnectionError("connection closed"))
        if not self.closed.done():
            self.closed.set_result(None)


class LeanRpc:
    """`async with LeanRpc("ws://127.0.0.1:8000/rpc") as rpc: await rpc.call("make_order", ...)`.

    `notifications` counts the pushed notifications received (their content is discarded).
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"LeanRpc speaks plain ws:// only, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.notifications = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[msgspec.Raw]] = {}
        self._protocol: _Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._close_sent = False

    async def __aenter__(self) -> LeanRpc:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        key = base64.b64encode(os.urandom(16))
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(lambda: _Protocol(self, key), self.host, self.port)
        self._transport, self._protocol = transport, protocol
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await protocol.handshake

    async def close(self, timeout: float = 5.0) -> None:
        """Close handshake: send a close frame, wait for the server's and for the TCP close."""
        if self._protocol is None or self._transport is None:
            return
        if not self._close_sent and not self._transport.is_closing():
            self._send_frame(OP_CLOSE, struct.pack("!H", 1000))
            self._close_sent = True
        try:
            await asyncio.wait_for(asyncio.shield(self._protocol.closed), timeout)
        except TimeoutError:
            self._transport.abort()

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame(opcode, payload, os.urandom(4)))

    def _message(self, data: bytes) -> None:
        reply = _decode_reply(data)
        if reply.id is None:
            if reply.method is not None:
                self.notifications += 1
                return
            self._fail_all(LeanRpcError("an answer without an id", data=data[:200]))
            return
        future = self._pending.pop(reply.id, None)
        if future is None or future.done():
            return
        if reply.error is not None:
            err = reply.error if isinstance(reply.error, dict) else {}
            future.set_exception(LeanRpcError(str(err.get("message", "")), int(err.get("code", 0)), err.get("data")))
        else:
            future.set_result(reply.result)

    def _fail_all(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)

    async def call_raw(self, method: str, params: dict[str, Any]) -> msgspec.Raw:
        """Send one request and wait for its answer; the result comes back as undecoded JSON."""
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("not connected")
        request_id = next(self._ids)
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._send_frame(OP_TEXT, _encode({"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}))
        return await future

    async def call(self, method: str, **params: Any) -> Any:
        """Send one request and return its decoded result (raises LeanRpcError on an error answer)."""
        return msgspec.json.decode(await self.call_raw(method, params))
