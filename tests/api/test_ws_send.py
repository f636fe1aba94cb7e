"""api.ws_send under a real uvicorn: messages batched per loop turn arrive whole and in order, pushed ones with them;
a gone client is said; a client that stops reading what is pushed to it is closed with 1008 `slow_consumer`; market
data offered to a client that is behind waits as each subject's latest only, and arrives once it reads again."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import uvicorn
import websockets

from coinwire.api.ws_send import SLOW_CONSUMER_BYTES, ClientGone, offer_of, task_pusher, text_pusher, text_sender
from tests.server import free_port


class _App:
    """Sends `count` messages in one loop turn when asked, then waits for the client to leave."""

    def __init__(self) -> None:
        self.sender_kind = ""
        self.after_close: BaseException | None = None
        self.closed = asyncio.Event()
        self.offered = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        sender = text_sender(send)
        pusher = text_pusher(sender)
        offer = offer_of(pusher)
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
            if message["text"] == "market":  # 3 subjects x 10,000 updates of 1 KB, offered as a feed would, then "end"
                for n in range(10_000):
                    for subject in ("a", "b", "c"):
                        offer(subject, json.dumps({"subject": subject, "n": n, "pad": "x" * 1_000}).encode())
                    await asyncio.sleep(0)
                pusher(b'{"end": true}')  # pushed: in order, never waited for
                self.offered.set()
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
    """Pushing never waits for the peer; past SLOW_CONSUMER_BYTES unread, the connection goes instead of the memory.

    It is closed, not only cut: what was already on its way arrives, then a close frame with
    code 1008 and reason `slow_consumer` (before, an aborted socket: 1006, no reason).
    """
    app, url = served
    async with websockets.connect(url, max_size=None, max_queue=1) as ws:
        await ws.send("flood")
        await asyncio.wait_for(app.closed.wait(), 30)  # dropped while flooding: the app's next send finds it gone
        assert isinstance(app.after_close, ClientGone)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # what was already on its way arrives, then the end
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "slow_consumer")


async def test_market_data_to_a_client_that_is_behind_keeps_each_subjects_latest(served: Any) -> None:
    """Offered 30,000 updates (30 MB) while not reading: it gets far fewer, each subject's in order, ending with its last."""
    app, url = served
    async with websockets.connect(url, max_size=None, max_queue=1) as ws:
        await ws.send("market")
        await asyncio.wait_for(app.offered.wait(), 30)  # offering never waited for this client
        got: dict[str, list[int]] = {"a": [], "b": [], "c": []}
        async with asyncio.timeout(10):
            while True:
                message = json.loads(await ws.recv())
                if message.get("end"):
                    break
                got[message["subject"]].append(message["n"])
            while any(not seen or seen[-1] != 9_999 for seen in got.values()):  # held back behind "end": comes as it drains
                message = json.loads(await ws.recv())
                got[message["subject"]].append(message["n"])
        for subject, seen in got.items():
            assert seen == sorted(set(seen)) and seen[-1] == 9_999, subject  # in order, none twice, the latest last
        assert sum(map(len, got.values())) < 3 * 10_000 / 2  # conflated: most updates superseded while it was behind
        assert not app.closed.is_set()  # behind on market data is no reason to be dropped


async def test_the_task_pusher_holds_a_bounded_queue_and_closes_a_peer_past_it() -> None:
    """Without the batched path (another server), pushes wait in one queue, not a task each, and never past the limit.

    Before: a task per message, each awaiting the peer; a stuck peer held every message pushed to it.
    """
    started, closed = asyncio.Event(), asyncio.Event()
    sent: list[bytes] = []

    async def stuck(data: bytes) -> None:
        sent.append(data)
        started.set()
        await asyncio.Event().wait()  # the peer never takes it

    async def close() -> None:
        closed.set()

    push = task_pusher(stuck, 64 << 10, close)
    offer = offer_of(push)
    message = b"x" * 1_000
    for _ in range(60):  # 60 KB: within the limit
        push(message)
    for n in range(1_000):
        offer("ticker.demo.usdt.btc", b"%d" % n)  # only the latest waits
    await asyncio.wait_for(started.wait(), 5)
    assert not closed.is_set()
    for _ in range(10):  # past 64 KB unread
        push(message)
    await asyncio.wait_for(closed.wait(), 5)
    push(message)
    await asyncio.sleep(0.01)
    assert sent == [message]  # nothing more was handed to the stuck peer
