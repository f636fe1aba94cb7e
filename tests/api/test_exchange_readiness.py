"""Exchanges that are not ready, and live ones, through a running server: market data refused, venues named truly.

One server serves three exchanges: `demo` (paper, ready), `idle` (paper, replaying a recording
with no book in it: its market is known, its book never syncs, so it stays `starting`) and
`binance` (live, its feed and venue pointed at a local port nobody listens on: it never
connects). Prices and books of an exchange that is not ready answer `exchange_not_ready`,
never nulls or an empty book; `get_exchanges` says which venue each exchange trades on.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.server import DEMO_EXCHANGES, ServerProcess, free_port

NOBODY = free_port()  # bound and released: nothing listens there
LIVE_URLS = {"api.public": f"http://127.0.0.1:{NOBODY}/api/v3", "api.private": f"http://127.0.0.1:{NOBODY}/api/v3",
             "api.sapi": f"http://127.0.0.1:{NOBODY}/sapi/v1", "api.ws.spot": f"ws://127.0.0.1:{NOBODY}/stream/ws"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("unready")
    recording = data / "no_book.gz"
    with gzip.open(recording, "wb"):
        pass  # a recording with no messages: the market is announced, no book ever arrives
    exchanges = [
        *DEMO_EXCHANGES,
        {"name": "idle", "feed": "replay", "replay_paths": [str(recording)], "replay_loop": False},
        {"name": "binance", "mode": "live", "feed": "ccxt", "symbols": ["BTC/USDT"], "poll_interval": 0.2,
         "ccxt_websocket": False, "ccxt_urls": LIVE_URLS, "ccxt_timeout": 1.0,
         "ccxt_options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}},
    ]
    env = {"COINWIRE_BINANCE_API_KEY": "test-key-not-used", "COINWIRE_BINANCE_SECRET": "test-secret-not-used"}
    proc = ServerProcess(data, exchanges=exchanges, env=env)
    proc.start(wait_ready=False)
    try:
        _wait_for(proc, lambda statuses: statuses.get("demo") == "ready" and statuses.get("idle") == "starting")
        yield proc
    finally:
        proc.stop()


def _wait_for(proc: ServerProcess, done: object, timeout: float = 30.0) -> None:
    """Until /readyz reports exchange statuses for which `done` holds."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            r = httpx.get(proc.http + "/readyz", timeout=1.0)
            last = r.text
            if r.status_code == 200 and done(r.json()["exchanges"]):  # type: ignore[operator]
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server not as expected in {timeout}s (last: {last}):\n{proc.log()}")


@pytest.fixture
async def rpc(server: ServerProcess) -> AsyncIterator[RpcClient]:
    async with RpcClient(server.ws) as client:
        yield client


async def refused(rpc: RpcClient, method: str, **params: object) -> RpcError:
    with pytest.raises(RpcError) as info:
        await rpc.call(method, **params)
    return info.value


async def test_prices_and_books_of_an_exchange_that_is_not_ready_answer_exchange_not_ready(rpc: RpcClient) -> None:
    (idle,) = [e for e in await rpc.call("get_exchanges") if e["exchange"] == "idle"]
    assert idle["status"] == "starting" and idle["pairs"] == ["BTC_USDT"]  # the market is known, its book is not
    for exchange in ("idle", "binance"):
        for method, params in (("get_pricing", {}), ("get_book", {"pair": "BTC_USDT"}), ("get_book", {"symbol": "BTC/USDT", "depth": 5})):
            error = await refused(rpc, method, exchange=exchange, **params)
            assert (error.code, error.reason) == (-32004, "exchange_not_ready"), (exchange, method, error)
            assert f"exchange {exchange} is starting" in error.message
    # a ready exchange beside them answers as before
    pricing = await rpc.call("get_pricing", exchange="demo")
    assert all(quote["bid"] is not None and quote["ask"] is not None for quote in pricing.values())
    assert len((await rpc.call("get_book", exchange="demo", pair="BTC_USDT", depth=3))["bids"]) == 3
    unknown = await refused(rpc, "get_pricing", exchange="nope")
    assert unknown.reason == "unknown_exchange"


def test_rest_prices_and_books_of_an_exchange_that_is_not_ready_answer_503_exchange_not_ready(server: ServerProcess) -> None:
    with server.client() as http:
        for exchange in ("idle", "binance"):
            for path in (f"/xwrap/v1/{exchange}/pricing", f"/xwrap/v1/{exchange}/book/BTC_USDT"):
                r = http.get(path)
                assert r.status_code == 503, (path, r.text)
                error = r.json()["error"]
                assert error["code"] == "exchange_not_ready" and f"exchange {exchange} is starting" in error["message"], error
        assert http.get("/xwrap/v1/demo/pricing").status_code == 200
        assert http.get("/xwrap/v1/demo/book/BTC_USDT", params={"depth": 2}).status_code == 200


async def test_get_exchanges_names_each_exchanges_real_venue(rpc: RpcClient, server: ServerProcess) -> None:
    exchanges = {e["exchange"]: e for e in await rpc.call("get_exchanges")}
    assert {name: (e["mode"], e["venue"], e["feed"]) for name, e in exchanges.items()} == {
        "demo": ("paper", "paper", "demo"), "idle": ("paper", "paper", "replay"), "binance": ("live", "live", "ccxt"),
    }
    assert exchanges["binance"]["class"] == "coinwire.venues.live.LiveVenue"
    assert exchanges["demo"]["class"] == exchanges["idle"]["class"] == "coinwire.venues.paper.PaperVenue"
    assert [e["exchange"] for e in await rpc.call("get_exchanges", mode="live")] == ["binance"]
    with server.client() as http:
        (live,) = http.get("/xwrap/v1/exchanges", params={"mode": "live"}).json()
        assert (live["venue"], live["class"]) == ("live", "coinwire.venues.live.LiveVenue")
