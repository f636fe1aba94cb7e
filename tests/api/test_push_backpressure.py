"""No connection slows anyone else: on a real server, a client that stops reading and a client at the pattern limit.

A viewer subscribes to tickers and public trades, then stops reading while its own answers
fill its socket: everyone else keeps receiving both, it keeps only each subject's latest
while it is behind, and the server's memory stays put. A `subscribe` over the pattern limit
is refused with `too_many_patterns` and changes nothing; at the limit, another connection's
`get_status` keeps answering. `subscribe_ohlcv` streams are limited per connection likewise.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

PASSWORD = "viewer-password-1"
MAX_PATTERNS = 64  # COINWIRE_WS_MAX_PATTERNS of the test server (the default is 100)
MAX_STREAMS = 3  # COINWIRE_WS_MAX_STREAMS of the test server (the default is 20)
ECHOES = 40  # 100 KB answers a stalled client leaves unread: 4 MB, under the 8 MiB drop limit


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("push-backpressure")),
                         env={"COINWIRE_WS_MAX_PATTERNS": str(MAX_PATTERNS), "COINWIRE_WS_MAX_STREAMS": str(MAX_STREAMS)})
    proc.start()
    with proc.client() as admin:
        made = admin.post("/api/v1/users", json={"username": "vera", "password": PASSWORD, "role": "viewer"})
        assert made.status_code in (200, 201), made.text
    yield proc
    proc.stop()


def _viewer_url(server: ServerProcess) -> str:
    token = httpx.post(server.http + "/api/v1/auth/login", json={"username": "vera", "password": PASSWORD},
                       timeout=30).json()["access_token"]
    return f"{server.ws_anonymous}?access_token={token}"


async def _not_reading(url: str, echoes: int, receive_buffer: int | None = 4096) -> Any:
    """A connection that sends `echoes` 100 KB echo requests and then reads nothing (by default, a 4 KB receive buffer)."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", int(url.split(":")[2].split("/")[0])))
    sock.setblocking(False)
    ws = await websockets.connect(url, sock=sock, max_size=None, max_queue=1)
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"channels": ["ticker", "public_trades"]}}))
    assert "result" in await _answer(ws, 1)
    pad = "x" * 100_000
    for n in range(echoes):
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 100 + n, "method": "echo", "params": {"pad": pad}}))
    return ws


def _rss_bytes(server: ServerProcess) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _answer(ws: Any, rid: int) -> dict[str, Any]:
    """Read `ws` until the answer to request `rid` (notifications before it are skipped)."""
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message.get("id") == rid:
                return dict(message)


async def _count(rpc: RpcClient, seconds: float) -> dict[str, int]:
    """Notifications `rpc` receives in `seconds`, by method."""
    counts: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            method, _ = await asyncio.wait_for(rpc.notifications.get(), left)
        except TimeoutError:
            break
        counts[method] = counts.get(method, 0) + 1
    return counts


async def test_a_client_that_stops_reading_holds_back_no_ones_tickers_or_public_trades(server: ServerProcess) -> None:
    """Before: the ticker and public-trade services awaited each receiver, so a stalled one stopped them for everyone."""
    async with RpcClient(server.ws) as observer:
        await observer.call("subscribe", channels=["ticker", "public_trades"])
        before = await _count(observer, 3)
        assert before.get("ticker", 0) > 0 and before.get("public_trades", 0) > 0  # the demo feed is live
        # a viewer subscribes to both, then stops reading; its own answers (4 MB) fill its socket for good
        slow = await _not_reading(_viewer_url(server), ECHOES)
        try:
            rss = _rss_bytes(server)
            await asyncio.sleep(2)  # the flood is written, and market data to it starts to wait
            while not observer.notifications.empty():
                observer.notifications.get_nowait()
            during = await _count(observer, 8)
            grown = _rss_bytes(server) - rss
            assert during.get("ticker", 0) >= max(5, before["ticker"]), during  # 8 s here against 3 s before
            assert during.get("public_trades", 0) >= 1, during
            assert (await observer.call("get_status"))["status"] == "online"
            assert grown < 64 << 20, f"server grew {grown >> 20} MB while one client was not reading"
            # it reads again: its answers, then the market data held back for it, then live data as before
            got: dict[str, int] = {}
            async with asyncio.timeout(30):
                while got.get("echo_answers", 0) < ECHOES or got.get("ticker", 0) < 3:
                    message = json.loads(await slow.recv())
                    key = "echo_answers" if message.get("id", 0) >= 100 else message.get("method", "other")
                    got[key] = got.get(key, 0) + 1
            assert slow.close_code is None  # kept: it fell behind on market data only, which was conflated
        finally:
            await slow.close()


async def test_a_client_that_reads_none_of_its_answers_is_closed_with_slow_consumer(server: ServerProcess) -> None:
    """Before: its answers waited in its requests' tasks for a drain that never came, growing the server without bound."""
    # 30 MB of answers, far more than the 8 MiB it may leave unread (a usual receive buffer: it reads them back fast)
    slow = await _not_reading(_viewer_url(server), 300, receive_buffer=None)
    try:
        await asyncio.sleep(1)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(30):
                while True:  # what was on its way, then the close
                    await slow.recv()
        assert closed.value.rcvd is not None, "aborted, not closed"
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "slow_consumer")
        async with RpcClient(server.ws) as other:  # the server is as it was
            assert (await other.call("get_status"))["status"] == "online"
    finally:
        await slow.close()


async def test_subscribe_over_the_pattern_limit_is_refused_and_changes_nothing(server: ServerProcess) -> None:
    """Before: any number of patterns was taken (5,000 made every ticker cost thousands of pattern tests)."""
    async with RpcClient(_viewer_url(server)) as flooder, RpcClient(server.ws) as other:
        narrowed = await flooder.call("subscribe", channels=["ticker"], tickers=["demo.usdt.btc"])
        assert narrowed["tickers"] == ["ticker.demo.usdt.btc"]
        for field in ("tickers", "public_trades"):
            too_many = [f"demo.*.x{n}" for n in range(MAX_PATTERNS + 1)]
            with pytest.raises(RpcError) as refused:
                await flooder.call("subscribe", channels=["ticker", "public_trades"], **{field: too_many})
            assert refused.value.reason == "too_many_patterns" and refused.value.data["limit"] == MAX_PATTERNS  # type: ignore[index]
            assert str(MAX_PATTERNS) in refused.value.message
        unchanged = await flooder.call("subscribe", channels=[])
        assert unchanged == {"channels": ["echo_ret", "exchstatus", "order", "ticker", "trade"], "tickers": ["ticker.demo.usdt.btc"]}
        # at the limit (wildcards, the costly kind, and the one market it wants), the server still serves everyone
        at_limit = [f"demo.*.x{n}" for n in range(MAX_PATTERNS - 1)] + ["demo.usdt.eth"]
        answer = await flooder.call("subscribe", channels=["ticker", "public_trades"], tickers=at_limit, public_trades=at_limit)
        assert len(answer["tickers"]) == len(answer["public_trades"]) == MAX_PATTERNS
        while not flooder.notifications.empty():  # pushed before the answer: chosen by the patterns before (BTC/USDT's)
            flooder.notifications.get_nowait()
        await other.call("subscribe", channels=["ticker"])
        for _ in range(20):
            async with asyncio.timeout(5):
                assert (await other.call("get_status"))["status"] == "online"
        async with asyncio.timeout(10):
            while True:  # and its own patterns still select what they name
                method, params = await flooder.notifications.get()
                if method == "ticker":
                    assert params["symbol"] == "ETH/USDT"
                    break


async def test_subscribe_ohlcv_over_the_stream_limit_is_refused_per_connection(server: ServerProcess) -> None:
    """Before: any number of live candle streams per connection (each costs the push loop every interval)."""
    series = {"exchange": "demo", "symbol": "BTC/USDT", "timeframe": "1m", "tz": "UTC"}
    async with RpcClient(_viewer_url(server)) as viewer, RpcClient(server.ws) as other:
        ids = [(await viewer.call("subscribe_ohlcv", **series))["subscription"] for _ in range(MAX_STREAMS)]
        with pytest.raises(RpcError) as refused:
            await viewer.call("subscribe_ohlcv", **series)
        assert refused.value.reason == "too_many_streams" and refused.value.data["limit"] == MAX_STREAMS
        assert (await other.call("subscribe_ohlcv", **series))["subscription"] not in ids  # a quota per connection
        assert await viewer.call("unsubscribe_ohlcv", subscription=ids[0]) is True
        while not viewer.notifications.empty():  # candles pushed before it stopped (a slow machine pushes between two calls)
            viewer.notifications.get_nowait()
        assert (await viewer.call("subscribe_ohlcv", **series))["subscription"] not in ids  # room again
        async with asyncio.timeout(30):
            while True:  # and the streams it holds still push
                method, params = await viewer.notifications.get()
                if method == "ohlcv":
                    assert params["subscription"] != ids[0]
                    break
