"""api.ws_protocol under a real uvicorn, driven by raw frames over TCP: the fast path agrees with RFC 6455.

The client writes byte streams mixing everything a peer may send (small and large text and
binary messages, fragmented messages, pings between fragments) cut at random places, down
to single bytes; the server echoes each message and answers each ping. Malformed input
must close the connection with the code websockets would use.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
from typing import Any

import pytest
import uvicorn

from coinwire.api.ws_protocol import FastWebSocketProtocol, text_frame
from tests.server import free_port

MAX_SIZE = 1 << 20
TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class _EchoApp:
    """Echoes every message as it came (text or bytes); remembers each connection's protocol object."""

    def __init__(self, read: bool = True) -> None:
        self.reading = asyncio.Event()
        if read:
            self.reading.set()
        self.protocols: list[Any] = []
        self.disconnects: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        self.protocols.append(send.__self__)
        await self.reading.wait()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message)
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})


def _frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        header = bytes((first, (0x80 if masked else 0) | n))
    elif n < 65536:
        header = bytes((first, (0x80 if masked else 0) | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((first, (0x80 if masked else 0) | 127)) + n.to_bytes(8, "big")
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class _Client:
    """A raw WebSocket client: the handshake, then bytes as the test writes them and frames as the server sends them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> _Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bool, bytes]:
        first, second = await self.reader.readexactly(2)
        n = second & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        return first & 0x0F, bool(first & 0x80), await self.reader.readexactly(n)

    def close(self) -> None:
        self.writer.close()

    async def close_code(self) -> int:
        """Frames until the server's close frame; its status code."""
        while True:
            opcode, _, payload = await asyncio.wait_for(self.frame(), 5)
            if opcode == CLOSE:
                return int.from_bytes(payload[:2], "big")

    async def write_in_pieces(self, data: bytes, rng: random.Random) -> None:
        pos = 0
        while pos < len(data):
            step = rng.choice((1, 2, 3, 7, 64, 1000, 70_000))
            self.writer.write(data[pos : pos + step])
            await self.writer.drain()
            pos += step


@pytest.fixture
async def server() -> Any:
    async def start(app: _EchoApp) -> int:
        apps.append(app)
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws=FastWebSocketProtocol,
                                ws_max_size=MAX_SIZE, ws_per_message_deflate=False)
        servers.append(uvicorn.Server(config))
        tasks.append(asyncio.create_task(servers[-1].serve()))
        while not servers[-1].started:
            await asyncio.sleep(0.01)
        return port

    apps: list[_EchoApp] = []
    servers: list[uvicorn.Server] = []
    tasks: list[asyncio.Task[None]] = []
    yield start
    for app in apps:
        app.reading.set()  # an application held back by a test that failed must not hold the shutdown up
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks)


def _stream(rng: random.Random) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Frames a client might send, and what the server must send back (echoes and pongs), in order."""
    out, expected = [], []
    for _ in range(rng.randint(5, 25)):
        kind = rng.random()
        size = rng.choice((0, 1, 125, 126, 127, 300, 65535, 65536, 200_000))
        if kind < 0.45:
            text = "".join(rng.choice("ab€😀{}\"") for _ in range(size // 4))
            out.append(_frame(TEXT, text.encode()))
            expected.append((TEXT, text.encode()))
        elif kind < 0.6:
            data = rng.randbytes(size)
            out.append(_frame(BINARY, data))
            expected.append((BINARY, data))
        elif kind < 0.75:
            ping = rng.randbytes(rng.randint(0, 125))
            out.append(_frame(PING, ping))
            expected.append((PONG, ping))
        else:  # a fragmented text message with a ping between its fragments
            text = "".join(rng.choice("xyz€") for _ in range(rng.randint(1, 3000))).encode()
            cut = rng.randint(0, len(text))
            ping = rng.randbytes(4)
            out += [_frame(TEXT, text[:cut], fin=False), _frame(PING, ping), _frame(CONT, text[cut:])]
            expected += [(PONG, ping), (TEXT, text)]
    return b"".join(out), expected


@pytest.mark.parametrize("seed", range(12))
async def test_random_streams_cut_anywhere_are_echoed_in_order(server: Any, seed: int) -> None:
    app = _EchoApp()
    port = await server(app)
    client = await _Client.connect(port)
    rng = random.Random(seed)
    data, expected = _stream(rng)
    writer = asyncio.create_task(client.write_in_pieces(data, rng))
    got = []
    for _ in expected:
        opcode, fin, payload = await asyncio.wait_for(client.frame(), 10)
        assert fin
        got.append((opcode, payload))
    await writer
    # messages come back in order, and pongs in order; a pong is sent as its ping is read, so
    # it may overtake the echo of an earlier message (the echo waits for the application)
    assert [m for m in got if m[0] != PONG] == [m for m in expected if m[0] != PONG]
    assert [m for m in got if m[0] == PONG] == [m for m in expected if m[0] == PONG]
    assert app.protocols[0]._fast is True  # the fast path read these, not only websockets' parser
    client.writer.write(_frame(CLOSE, (1000).to_bytes(2, "big")))
    assert await client.close_code() == 1000
    await asyncio.sleep(0.05)
    assert app.disconnects and app.disconnects[0]["code"] == 1000
    client.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (_frame(TEXT, b"{}", masked=False), 1002),  # a client must mask
        (_frame(TEXT, b"{}", rsv=0x40), 1002),  # no extension was negotiated
        (_frame(TEXT, b"\xff\xfe"), 1007),  # not UTF-8
        (_frame(BINARY, b"x" * (MAX_SIZE + 1)), 1009),  # over ws_max_size
        (_frame(CONT, b"x"), 1002),  # a continuation with nothing to continue
        (_frame(TEXT, b"a", fin=False) + _frame(TEXT, b"b"), 1002),  # a new message inside a fragmented one
        (_frame(PING, b"x" * 126), 1002),  # control frames carry at most 125 bytes
    ],
    # named, not shown: a masked frame's bytes hold a random key, and parallel workers must collect the same ids
    ids=["unmasked", "rsv-bit", "not-utf8", "oversized", "lone-continuation", "message-inside-fragments", "long-ping"],
)
async def test_malformed_frames_close_the_connection(server: Any, frame: bytes, code: int) -> None:
    app = _EchoApp()
    port = await server(app)
    client = await _Client.connect(port)
    client.writer.write(_frame(TEXT, b"first"))
    assert await asyncio.wait_for(client.frame(), 5) == (TEXT, True, b"first")
    client.writer.write(frame + _frame(TEXT, b"never echoed"))
    assert await client.close_code() == code
    client.close()


async def test_an_oversized_frame_is_refused_from_its_header(server: Any) -> None:
    """The server does not wait for (or buffer) a payload it will refuse."""
    app = _EchoApp()
    port = await server(app)
    client = await _Client.connect(port)
    client.writer.write(bytes((0x82, 0x80 | 127)) + (MAX_SIZE * 8).to_bytes(8, "big") + os.urandom(4))
    assert await client.close_code() == 1009
    client.close()


async def test_reading_pauses_while_the_application_lags(server: Any) -> None:
    app = _EchoApp(read=False)
    port = await server(app)
    client = await _Client.connect(port)
    pad = b" " * 2000  # 400 kB in all: more than one read of the socket
    client.writer.write(b"".join(_frame(TEXT, b'{"n": %d}' % n + pad) for n in range(200)))
    await client.writer.drain()
    await asyncio.sleep(0.2)
    protocol = app.protocols[0]
    assert protocol.read_paused
    assert 16 <= protocol.queue.qsize() < 200  # it stopped reading instead of queueing everything
    app.reading.set()  # the application catches up: reading resumes and every message is answered
    for n in range(200):
        assert await asyncio.wait_for(client.frame(), 5) == (TEXT, True, b'{"n": %d}' % n + pad)
    assert not protocol.read_paused
    client.close()


def test_text_frames_use_the_shortest_length_form() -> None:
    for n, header in ((0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"), (65535, b"\x81\x7e\xff\xff"),
                      (65536, b"\x81\x7f" + (65536).to_bytes(8, "big"))):
        frame = text_frame(b"x" * n)
        assert frame.startswith(header) and len(frame) == len(header) + n
