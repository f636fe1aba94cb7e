"""api.ws_send under a real uvicorn: messages batched per loop turn arrive whole and in order, pushed ones with them;
a gone client is said; a client that stops reading what is pushed to it is dropped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import uvicorn
import websockets

from coinwire.api.ws_send import SLOW_CONSUMER_BYTES, ClientGone, text_pusher, text_sender
from tests.server import free_port


class _App:
    """Sends `count` messages in one loop turn when asked, then waits for the client to leave."""

    def __init__(self) -> None:
        self.sender_kind = ""
        self.after_close: BaseException | None = None
        self.closed = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        sender = text_sender(send)
        pusher = text_pusher(sender)
        self.sender_kind = type(getattr(sender, "__self__", None)).__name__
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            if message["text"] == "flood":  # 1 MB a loop turn, for a client that reads none of it
                chunk = b'{"pad": "' + b"x" * (1 << 20) + b'"}'
                for _ in range(4 * SLOW_CONSUMER_BYTES >> 20):
                    pusher(chunk)
                    await asyncio.sleep(0.002)
                continue
            count = int(message["text"])
            # all queued in this turn, sent and pushed in turn; the last one is long (several frames' worth of bytes)
            for n in range(count):
                data = json.dumps({"n": n, "pad": "x" * (n == count - 1) * 200_000}).encode()
                if n % 2:
                    pusher(data)
                else:
                    await sender(data)
        try:
            await sender(b'{"late": true}')
        except BaseException as exc:  # noqa: BLE001 - what the test asserts
            self.after_close = exc
        self.closed.set()


@pytest.fixture
async def served() -> Any:
    app = _App()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield app, f"ws://127.0.0.1:{port}/"
    server.should_exit = True
    await task


async def test_messages_sent_in_one_turn_arrive_whole_and_in_order(served: Any) -> None:
    app, url = served
    async with websockets.connect(url, max_size=None) as ws:
        for count in (1, 50):
            await ws.send(str(count))
            got = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(count)]
            assert [m["n"] for m in got] == list(range(count))
            assert len(got[-1]["pad"]) == 200_000
    assert app.sender_kind == "_Batched"  # the fast path, not the plain ASGI one
    await asyncio.wait_for(app.closed.wait(), 5)
    assert isinstance(app.after_close, ClientGone)


async def test_a_client_that_reads_nothing_pushed_to_it_is_dropped(served: Any) -> None:
    """Pushing never waits for the peer; past SLOW_CONSUMER_BYTES unread, the connection goes instead of the memory."""
    app, url = served
    async with websockets.connect(url, max_size=None, max_queue=1) as ws:
        await ws.send("flood")
        await asyncio.wait_for(app.closed.wait(), 30)  # dropped while flooding: the app's next send finds it gone
        assert isinstance(app.after_close, ClientGone)
        with pytest.raises(websockets.ConnectionClosed):
            while True:  # what was already on its way arrives, then the end
                await asyncio.wait_for(ws.recv(), 10)
