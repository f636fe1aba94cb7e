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

`push` is the same without waiting, for notifications delivered inline by the bus (see
`coinwire.api.notifier`): it never waits for a peer that reads slowly. Its bytes queue in the
transport instead, and a connection that lets more than `SLOW_CONSUMER_BYTES` pile up while
the server waits to write is dropped (as a NATS server drops a slow consumer) rather than
holding the whole process's memory, or, as an awaited send did, everyone else's notifications.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.types import Send
from websockets.protocol import OPEN

from coinwire.api.ws_protocol import text_frame

__all__ = ["ClientGone", "text_sender", "text_pusher", "task_pusher", "SLOW_CONSUMER_BYTES"]

SLOW_CONSUMER_BYTES = 8 << 20  # notification bytes a connection may leave unread before it is dropped

log = structlog.get_logger("coinwire.rpc")

try:  # the fast path needs uvicorn's sansio protocol: its `send` is a bound method of it
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] is a dependency
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]


class ClientGone(ConnectionError):
    """The connection closed: a message to it can no longer be sent."""


def text_sender(send: Send) -> Callable[[bytes], Awaitable[None]]:
    """`await sender(utf8_json)`: one text message; batched into one write a loop turn when the server allows."""
    batched = _batched(send)
    if batched is None:
        async def plain(data: bytes) -> None:
            await send({"type": "websocket.send", "text": data.decode()})
        return plain
    return batched.send


def text_pusher(sender: Callable[[bytes], Awaitable[None]]) -> Callable[[bytes], None]:
    """`pusher(utf8_json)`: one text message queued now, without waiting (`sender` is from `text_sender`).

    With uvicorn's sansio protocol it joins the same batched write as `sender`'s messages;
    otherwise each message is sent by a task of its own, started in order.
    """
    owner = getattr(sender, "__self__", None)
    if isinstance(owner, _Batched):
        return owner.push
    return task_pusher(sender)


def task_pusher(sender: Callable[[bytes], Awaitable[None]]) -> Callable[[bytes], None]:
    """A pusher over any async sender: each message sent by a task of its own, started in order."""

    def push(data: bytes) -> None:
        asyncio.get_running_loop().create_task(sender(data)).add_done_callback(_retrieved)

    return push


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # a push that failed is a notification lost with its connection, not an error to report


def _batched(send: Send) -> _Batched | None:
    protocol: Any = getattr(send, "__self__", None)
    if WebSocketsSansIOProtocol is None or not isinstance(protocol, WebSocketsSansIOProtocol) or not _has_internals(protocol):
        return None
    return _Batched(protocol)


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
        if not self._open():
            raise ClientGone("the WebSocket connection is closed or closing")
        self._append(data)

    def push(self, data: bytes) -> None:
        """Queue without waiting; dropped when the connection is gone, and the connection when its peer falls too far behind."""
        protocol = self.protocol
        if not self._open():
            return
        if not protocol.writable.is_set() and protocol.transport.get_write_buffer_size() > SLOW_CONSUMER_BYTES:
            log.warning("websocket dropped: its peer does not read its notifications", unread_bytes=protocol.transport.get_write_buffer_size())
            protocol.transport.abort()
            return
        self._append(data)

    def _open(self) -> bool:
        protocol = self.protocol
        if protocol.disconnected or protocol.close_sent or protocol.transport.is_closing():
            return False
        conn = protocol.conn
        return conn.state is OPEN and not conn.expect_continuation_frame  # not once the close handshake has begun

    def _append(self, data: bytes) -> None:
        self.protocol.conn.writes.append(text_frame(data))  # into websockets' output: ordered with uvicorn's own frames
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        protocol = self.protocol
        output = protocol.conn.data_to_send()  # what uvicorn wrote since has taken its share already
        if output and not protocol.transport.is_closing():
            protocol.transport.write(b"".join(output))
