"""uvicorn's sans-I/O WebSocket protocol, reading whole data frames in one pass and pausing the socket less.

Every JSON-RPC request is one small masked text frame. Through uvicorn's protocol each one
went through websockets' generator parser (a frame is read in four resumable steps), an
event list, uvicorn's per-opcode dispatch, an `asyncio.Queue` (here `coinwire.aio.LoopQueue`), and a pause and a resume of
the socket (two epoll changes) around every message. Here the frames that are complete,
unfragmented text or binary, masked and within the size limit are unmasked and queued
directly. Everything else, byte for byte, still goes to websockets' parser: handshakes,
control frames (ping, pong, close), fragmented messages, frames with reserved bits, unmasked
or oversized frames. It is only ever handed whole frames (or, for a frame too large or
malformed to wait for, everything from its header on), so it always stands at a frame
boundary when the fast path resumes, and protocol errors close the connection exactly as
before. Reading pauses once `_PAUSE_AT` messages wait for the application, not after each.

An application may take the data messages straight from here (`on_message`, set by
`api.rpc` once it accepted): each is handed over as it is read, with no ASGI message, queue
or wake-up of the application's task between. Messages that were queued before keep their
turn: while any waits in the queue, new ones queue behind it.

Outgoing text frames are built here too (`text_frame`), for `api.ws_send`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import OPEN

from coinwire.aio import LoopQueue

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C helper ships in websockets' wheels
    from websockets.utils import apply_mask

__all__ = ["FastWebSocketProtocol", "text_frame"]

_TEXT, _BINARY = 0x81, 0x82  # first header byte of a final, unfragmented text / binary frame (RSV bits 0)
_PAUSE_AT = 16  # messages queued for the application before reading pauses
_RESUME_BELOW = 4


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (a server never masks)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT, n)) + payload
    if n < 65536:
        return bytes((_TEXT, 126)) + n.to_bytes(2, "big") + payload
    return bytes((_TEXT, 127)) + n.to_bytes(8, "big") + payload


class FastWebSocketProtocol(WebSocketsSansIOProtocol):
    """Pass as `uvicorn.run(..., ws=FastWebSocketProtocol)`; behaves as uvicorn's `websockets-sansio`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LoopQueue(self.loop)  # type: ignore[assignment]  # uvicorn's own asyncio.Queue, cheaper
        self._fast: bool | None = None  # None until the handshake completes; then whether frames are read here
        self._pending = b""  # the start of a frame not yet complete
        self.on_message: Callable[[str | bytes], None] | None = None  # the application's direct consumer, if it set one

    def data_received(self, data: bytes) -> None:
        if self._fast is None and self.handshake_complete:
            self._fast = _at_frame_boundary(self.conn)
        if not self._fast:
            super().data_received(data)
            return
        buf = self._pending + data if self._pending else data
        self._pending = b""
        conn = self.conn
        limit = conn.max_message_size
        end = len(buf)
        pos = 0
        while end - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length = second & 0x7F
            at = pos + 2
            if length == 126:
                if end - at < 2:
                    break
                length = int.from_bytes(buf[at : at + 2], "big")
                at += 2
            elif length == 127:
                if end - at < 8:
                    break
                length = int.from_bytes(buf[at : at + 8], "big")
                at += 8
            masked = second & 0x80
            if not masked or (limit is not None and length > limit):
                self._hand_over(buf[pos:])  # websockets refuses it and closes the connection
                return
            at += 4  # the masking key
            stop = at + length
            if stop > end:
                break
            if (first == _TEXT or first == _BINARY) and conn.current_size is None:
                if not self._deliver(first, apply_mask(buf[at:stop], buf[at - 4 : at])):
                    return
            else:  # control frame, fragment, reserved bits or opcode: websockets and uvicorn as usual
                super().data_received(buf[pos:stop])
                if conn.parser_exc is not None or conn.state is not OPEN or self.close_sent:
                    self._fast = False
                    if stop < end and conn.parser_exc is None:
                        super().data_received(buf[stop:])
                    return
            pos = stop
        if pos < end:
            self._pending = buf[pos:]

    def _hand_over(self, data: bytes) -> None:
        self._fast = False
        super().data_received(data)

    def _deliver(self, first: int, payload: bytes) -> bool:
        """Hand one message to the application (to `on_message`, or through the queue); False when the connection is closing."""
        if self.close_sent:  # past `websocket.close`: discarded, as uvicorn does
            return True
        data: str | bytes = payload
        if first == _TEXT:
            try:
                data = payload.decode()
            except UnicodeDecodeError:
                self._fast = False
                self.conn.send_close(1007, "invalid UTF-8 in a text message")
                self.handle_parser_exception()
                return False
        if self.on_message is not None and not self.queue.qsize():
            self.on_message(data)
            return True
        self.queue.put_nowait(
            {"type": "websocket.receive", "text": data} if isinstance(data, str) else {"type": "websocket.receive", "bytes": data}
        )
        if not self.read_paused and self.queue.qsize() >= _PAUSE_AT:
            self.read_paused = True
            self.transport.pause_reading()
        return True

    async def receive(self) -> Any:
        message = await self.queue.get()
        if self.read_paused and self.queue.qsize() < _RESUME_BELOW:
            self.read_paused = False
            self.transport.resume_reading()
        return message


def _at_frame_boundary(conn: Any) -> bool:
    """Whether websockets' parser waits for the first byte of a frame (nothing of one read yet)."""
    if conn.state is not OPEN or conn.extensions or conn.current_size is not None or conn.reader.buffer:
        return False
    generator = conn.parser
    while getattr(generator, "gi_yieldfrom", None) is not None:
        generator = generator.gi_yieldfrom
    return getattr(getattr(generator, "gi_code", None), "co_qualname", "") == "StreamReader.at_eof"
