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

`push` is the same as a plain function, for notifications delivered inline by the bus (see
`coinwire.api.notifier`). Neither waits for a peer that reads slowly: their bytes queue in the
transport, and a connection that lets more than its limit (`SLOW_CONSUMER_BYTES` by default,
`ws_max_unread_bytes`) pile up while the server waits to write is dropped (as a NATS server
drops a slow consumer) rather than holding the whole process's memory (answers waiting in
their requests' tasks did), or, as awaited notifications did, everyone else's. The drop is a
WebSocket close, code 1008 and reason `slow_consumer`, queued behind what the peer has not
read yet; a peer that does not take it within `CLOSE_GRACE` seconds has its socket aborted.

`drained_of(pusher)` waits until what was pushed has left (the transport is writable again,
or the queue is empty): a replay of many notifications (`api.streams`) goes out a page at a
time at the pace its peer reads, never past the unread limit. `drop_of(pusher)` drops the
connection as a slow consumer, as the pusher itself does past its limit.

`offer(subject, data)` is for market data (tickers, public trades, candles): the latest value
of a subject supersedes the one before. While the connection keeps up it is `push`; while its
transport is paused (more unsent than the transport's high-water mark) each subject's latest
message waits in a dict, one per subject, and goes out once the transport drains. A peer that
stops reading holds the transport's buffer and one message per subject, never more, and never
delays anyone else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from starlette.types import Send
from websockets.protocol import OPEN

from coinwire.api.ws_protocol import text_frame

__all__ = ["ClientGone", "text_sender", "text_pusher", "task_pusher", "SLOW_CONSUMER_BYTES", "SLOW_CONSUMER_CLOSE", "offer_of",
           "drained_of", "drop_of"]

SLOW_CONSUMER_BYTES = 8 << 20  # notification bytes a connection may leave unread before it is dropped (default)
SLOW_CONSUMER_CLOSE = (1008, "slow_consumer")  # the close code and reason of a dropped slow consumer
CLOSE_GRACE = 5.0  # seconds a dropped peer has to read up to the close frame before its socket is aborted

log = structlog.get_logger("coinwire.rpc")

try:  # the fast path needs uvicorn's sansio protocol: its `send` is a bound method of it
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] is a dependency
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]


class ClientGone(ConnectionError):
    """The connection closed: a message to it can no longer be sent."""


Sender = Callable[[bytes], Awaitable[None]]


def text_sender(send: Send, unread_limit: int = SLOW_CONSUMER_BYTES) -> Sender:
    """`await sender(utf8_json)`: one text message; batched into one write a loop turn when the server allows.

    `unread_limit`: bytes a peer may leave unread before its pusher drops it (see the module's text).
    """
    batched = _batched(send, unread_limit)
    if batched is None:
        async def plain(data: bytes) -> None:
            await send({"type": "websocket.send", "text": data.decode()})

        async def close() -> None:
            await send({"type": "websocket.close", "code": SLOW_CONSUMER_CLOSE[0], "reason": SLOW_CONSUMER_CLOSE[1]})

        plain.unread_limit, plain.close = unread_limit, close  # type: ignore[attr-defined]  # for text_pusher
        return plain
    return batched.send


def text_pusher(sender: Sender) -> Callable[[bytes], None]:
    """`pusher(utf8_json)`: one text message queued now, without waiting (`sender` is from `text_sender`).

    With uvicorn's sansio protocol it joins the same batched write as `sender`'s messages;
    otherwise messages are sent in order by one task (`task_pusher`), within the same limit.
    `offer_of(pusher)` is its market-data counterpart.
    """
    owner = getattr(sender, "__self__", None)
    if isinstance(owner, _Batched):
        return owner.push
    return task_pusher(sender, getattr(sender, "unread_limit", SLOW_CONSUMER_BYTES), getattr(sender, "close", None))


def offer_of(pusher: Callable[[bytes], None]) -> Callable[[str, bytes], None]:
    """The `offer(subject, data)` of a pusher from `text_pusher` or `task_pusher`; any other pusher pushes every message."""
    owner = getattr(pusher, "__self__", None)
    if isinstance(owner, (_Batched, _Queued)):
        return owner.offer

    def offer(subject: str, data: bytes) -> None:
        pusher(data)

    return offer


def drained_of(pusher: Callable[[bytes], None]) -> Callable[[], Awaitable[None]]:
    """`await drained()`: until what `pusher` (from `text_pusher` or `task_pusher`) queued has been handed to the socket."""
    owner = getattr(pusher, "__self__", None)
    if isinstance(owner, (_Batched, _Queued)):
        return owner.drained

    async def drained() -> None:
        await asyncio.sleep(0)

    return drained


def drop_of(pusher: Callable[[bytes], None]) -> Callable[[], None]:
    """`drop()`: give up the pusher's connection as a slow consumer (close 1008 `slow_consumer`), as past its unread limit."""
    owner = getattr(pusher, "__self__", None)
    if isinstance(owner, _Batched):
        return owner.drop
    if isinstance(owner, _Queued):
        return owner.give_up

    def drop() -> None:
        log.warning("a notification stream was given up: its peer does not keep up")

    return drop


def task_pusher(
    sender: Sender, unread_limit: int = SLOW_CONSUMER_BYTES, close: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> Callable[[bytes], None]:
    """A pusher over any async sender: messages sent in order by one task, never more than `unread_limit` bytes waiting.

    Past the limit the connection is given up: what waits is discarded, nothing more is sent,
    and `close` (when given) closes it with `SLOW_CONSUMER_CLOSE`.
    """
    return _Queued(sender, unread_limit, close).push


class _Queued:
    """Messages waiting for one async sender, drained by a single task (started when the first arrives)."""

    __slots__ = ("_sender", "_limit", "_close", "_queue", "_latest", "_bytes", "_task", "_gone", "_closing")

    def __init__(self, sender: Sender, unread_limit: int, close: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
        self._sender, self._limit, self._close = sender, unread_limit, close
        self._queue: deque[bytes] = deque()
        self._latest: dict[str, bytes] = {}  # market data while the sender is busy: a subject's latest only
        self._bytes = 0  # waiting in `_queue`
        self._task: asyncio.Task[None] | None = None
        self._gone = False
        self._closing: asyncio.Task[None] | None = None

    def push(self, data: bytes) -> None:
        if self._gone:
            return
        if self._bytes + len(data) > self._limit:
            self.give_up()
            return
        self._queue.append(data)
        self._bytes += len(data)
        self._start()

    def offer(self, subject: str, data: bytes) -> None:
        if self._gone:
            return
        if self._task is None:
            self._queue.append(data)
            self._bytes += len(data)
            self._start()
        else:  # the sender is busy: this supersedes the subject's waiting message
            self._latest[subject] = data

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def drained(self) -> None:
        """Until the queue is empty (or the connection is gone)."""
        while self._task is not None and not self._gone:
            await asyncio.wait({self._task})

    async def _drain(self) -> None:
        try:
            while not self._gone and (self._queue or self._latest):
                if self._queue:
                    data = self._queue.popleft()
                    self._bytes -= len(data)
                else:
                    data = self._latest.pop(next(iter(self._latest)))
                await self._sender(data)
        except Exception as exc:  # noqa: BLE001 - a push that failed is a notification lost with its connection
            log.debug("notification not delivered", error=str(exc))
            self._gone = True
        finally:
            self._task = None
            if self._gone:
                self._queue.clear()
                self._latest.clear()

    def give_up(self) -> None:
        if self._gone:
            return
        log.warning("websocket dropped: its peer does not read its notifications", unread_bytes=self._bytes)
        self._gone = True
        self._queue.clear()
        self._latest.clear()
        self._bytes = 0
        if self._close is not None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
            self._closing.add_done_callback(_retrieved)


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # a close that failed is a connection already gone, not an error to report


def _batched(send: Send, unread_limit: int) -> _Batched | None:
    protocol: Any = getattr(send, "__self__", None)
    if WebSocketsSansIOProtocol is None or not isinstance(protocol, WebSocketsSansIOProtocol) or not _has_internals(protocol):
        return None
    return _Batched(protocol, unread_limit)


def _has_internals(protocol: Any) -> bool:
    """The attributes the batched path touches; a uvicorn that renamed them gets the plain path."""
    return all(hasattr(protocol, name) for name in ("conn", "transport", "writable", "disconnected", "close_sent", "queue")) and all(
        hasattr(protocol.conn, name) for name in ("writes", "state", "expect_continuation_frame", "data_to_send", "send_close")
    )


class _Batched:
    __slots__ = ("protocol", "_scheduled", "_loop", "_limit", "_latest", "_drainer")

    def __init__(self, protocol: Any, unread_limit: int) -> None:
        self.protocol = protocol
        self._scheduled = False
        self._loop = asyncio.get_running_loop()
        self._limit = unread_limit
        self._latest: dict[str, bytes] = {}  # market data held while the transport is paused: a subject's latest only
        self._drainer: asyncio.Task[None] | None = None  # sends `_latest` once the transport drains

    async def send(self, data: bytes) -> None:
        """An answer: written in turn, never waiting for the peer; past the unread limit the connection is dropped.

        Waiting for a paused transport (as uvicorn's own send does) kept each answer in its
        request's task instead: a client that sent requests and never read their answers grew
        the server's memory without bound.
        """
        protocol = self.protocol
        if not self._open():
            raise ClientGone("the WebSocket connection is closed or closing")
        if not protocol.writable.is_set() and protocol.transport.get_write_buffer_size() > self._limit:
            self._drop()
            raise ClientGone("the WebSocket connection was closed: its peer does not read")
        self._append(data)

    def push(self, data: bytes) -> None:
        """Queue without waiting; dropped when the connection is gone, and the connection when its peer falls too far behind."""
        protocol = self.protocol
        if not self._open():
            return
        if not protocol.writable.is_set() and protocol.transport.get_write_buffer_size() > self._limit:
            self._drop()
            return
        self._append(data)

    def offer(self, subject: str, data: bytes) -> None:
        """Market data: pushed while the peer keeps up; while the transport is paused, kept as the subject's latest."""
        if self._latest:  # already held back, waiting for the drain: this joins, or supersedes, what waits
            self._latest[subject] = data
        elif self.protocol.writable.is_set():
            if self._open():
                self._append(data)
        elif self._open():
            self._latest[subject] = data
            self._drainer = self._loop.create_task(self._send_latest())

    async def _send_latest(self) -> None:
        """Once the transport drains (or the connection ends), what `offer` held, in the order subjects were first held."""
        try:
            await self.protocol.writable.wait()  # set again by uvicorn on resume_writing, and when the connection is lost
        finally:
            latest, self._latest, self._drainer = self._latest, {}, None
        if self._open():
            for data in latest.values():
                self._append(data)

    async def drained(self) -> None:
        """Until the frames queued so far are written and the transport takes more (or the connection is gone)."""
        await asyncio.sleep(0)  # the flush scheduled by the last `_append` runs first
        await self.protocol.writable.wait()  # set while not paused, and when the connection is lost

    def drop(self) -> None:
        """Give the connection up as a slow consumer (once)."""
        if self._open():
            self._drop()

    def _drop(self) -> None:
        """Close a slow consumer: 1008 `slow_consumer` behind what it has not read, its socket aborted if it never reads it."""
        protocol = self.protocol
        log.warning("websocket dropped: its peer does not read its notifications", unread_bytes=protocol.transport.get_write_buffer_size())
        code, reason = SLOW_CONSUMER_CLOSE
        protocol.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})  # the application's end
        try:
            protocol.conn.send_close(code, reason)
            protocol.transport.write(b"".join(protocol.conn.data_to_send()))
        except Exception:  # noqa: BLE001 - a connection websockets no longer lets us close: abort it now
            protocol.transport.abort()
        # as uvicorn's own `websocket.close`: nothing more is sent; reading goes on (discarding) until
        # the peer's close frame ends the connection, or the timer does (closing the socket while
        # the peer still sends would reset it, and with it what it has not read: the close frame)
        protocol.close_sent = True
        if getattr(protocol, "read_paused", False):
            protocol.read_paused = False
            protocol.transport.resume_reading()
        if getattr(protocol, "close_timer", None) is None:
            protocol.close_timer = self._loop.call_later(CLOSE_GRACE, _abort_if_open, protocol.transport)
        self._latest.clear()

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


def _abort_if_open(transport: Any) -> None:
    """A dropped peer that did not read up to its close frame in time: its buffer is freed now."""
    if not transport.is_closing() or transport.get_write_buffer_size():
        transport.abort()
