"""Sends a WebSocket connection's text messages with one socket write per event-loop turn.

An order answered over /rpc is three messages to the connection that placed it: the answer,
the `order` notification and, when it traded, the `trade` notification. Through ASGI each
`websocket.send` is one `transport.write`, one `write(2)` system call, and on loopback that
call also runs the receiving side's TCP stack: 17% of the server's time per order went
there (py-spy, native frames). Under uvicorn's websockets-sansio protocol this sender
frames messages into the connection's protocol object as they come and writes everything
framed once, at the end of the loop turn; messages keep their order, and anything uvicorn
itself writes in between (a keepalive ping, a close) takes the framed bytes with it.

With any other server (or protocol) the ASGI `send` is used as it is: one write a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Send
from websockets.protocol import OPEN

from coinwire.api.ws_protocol import text_frame

__all__ = ["ClientGone", "text_sender"]

try:  # the fast path needs uvicorn's sansio protocol: its `send` is a bound method of it
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] is a dependency
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]


class ClientGone(ConnectionError):
    """The connection closed: a message to it can no longer be sent."""


def text_sender(send: Send) -> Callable[[bytes], Awaitable[None]]:
    """`await sender(utf8_json)`: one text message; batched into one write a loop turn when the server allows."""
    protocol: Any = getattr(send, "__self__", None)
    if WebSocketsSansIOProtocol is None or not isinstance(protocol, WebSocketsSansIOProtocol) or not _has_internals(protocol):
        async def plain(data: bytes) -> None:
            await send({"type": "websocket.send", "text": data.decode()})
        return plain
    return _Batched(protocol).send


def _has_internals(protocol: Any) -> bool:
    """The attributes the batched path touches; a uvicorn that renamed them gets the plain path."""
    return all(hasattr(protocol, name) for name in ("conn", "transport", "writable", "disconnected", "close_sent")) and all(
        hasattr(protocol.conn, name) for name in ("writes", "state", "expect_continuation_frame", "data_to_send")
    )


class _Batched:
    __slots__ = ("protocol", "_scheduled", "_loop")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self._scheduled = False
        self._loop = asyncio.get_running_loop()

    async def send(self, data: bytes) -> None:
        protocol = self.protocol
        if not protocol.writable.is_set():  # the peer reads slowly: wait as uvicorn's own send does
            await protocol.writable.wait()
        if protocol.disconnected or protocol.close_sent or protocol.transport.is_closing():
            raise ClientGone("the WebSocket connection is closed")
        conn = protocol.conn
        if conn.state is not OPEN or conn.expect_continuation_frame:  # the close handshake has begun
            raise ClientGone("the WebSocket connection is closing")
        conn.writes.append(text_frame(data))  # into websockets' output: ordered with uvicorn's own frames
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        protocol = self.protocol
        output = protocol.conn.data_to_send()  # what uvicorn wrote since has taken its share already
        if output and not protocol.transport.is_closing():
            protocol.transport.write(b"".join(output))
