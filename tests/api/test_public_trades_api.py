"""GET /api/v1/trades/{exchange}/{symbol} and the `public_trades` push channel.

In process: the route served through FastAPI from PublicTrades on a MemoryBus, and the channel
through the Notifier with `subscribe`'s patterns and access rule. Then on a real `coinwire serve`
with the demo feed: the route behind the guard, and the push over /rpc.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from fastapi import FastAPI

from coinwire.api import params as P
from coinwire.api.client import RpcClient
from coinwire.api.context import CallContext
from coinwire.api.methods import Api, subscribe
from coinwire.api.notifier import Notifier
from coinwire.api.trades_routes import add_trades_routes
from coinwire.auth.abilities import Principal
from coinwire.auth.errors import Unauthenticated
from coinwire.bus import MemoryBus
from coinwire.core.errors import InvalidInput
from coinwire.core.instruments import Instrument
from coinwire.messages import Markets, TradeTick, subject
from coinwire.services.public_trades import PublicTrades
from tests.server import ServerProcess

BTC = Instrument(exchange="binance", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5)
ETH = Instrument(exchange="binance", symbol="ETH/BTC", base="ETH", quote="BTC", price_decimals=6, size_decimals=4)
T0 = 1_723_200_000 * 10**9


class Rig:
    def __init__(self, bus: MemoryBus, trades: PublicTrades, notifier: Notifier, http: httpx.AsyncClient) -> None:
        self.bus, self.trades, self.notifier, self.http = bus, trades, notifier, http
        self.n = 0

    async def trade(self, inst: Instrument, price: int, size: int, side: str) -> None:
        self.n += 1
        await self.bus.publish(subject("trade", inst.exchange, inst.symbol),
                               TradeTick(inst.exchange, inst.symbol, T0 + self.n * 10**9, f"t{self.n}", price, size, side))

    async def settle(self) -> None:
        for _ in range(200):
            await asyncio.sleep(0.002)
            if all(s.inbox.pending == 0 for s in self.bus._subscriptions):
                break


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    bus = MemoryBus()
    await bus.start()
    trades = PublicTrades(bus)
    notifier = Notifier(bus)
    trades.listeners.append(notifier.on_public_trade)
    await trades.start()
    app = FastAPI()
    add_trades_routes(app, trades)
    await bus.publish(subject("markets", "binance"), Markets("binance", [BTC, ETH]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        made = Rig(bus, trades, notifier, http)
        await made.settle()
        yield made
    await trades.close()
    await bus.close()


async def test_recent_trades_route(rig: Rig) -> None:
    assert (await rig.http.get("/api/v1/trades/binance/BTC_USDT")).json() == []
    for price, size, side in ((6_100_050, 1_000, "buy"), (6_100_000, 25_000, "sell"), (6_100_100, 5, "buy")):
        await rig.trade(BTC, price, size, side)
    await rig.trade(ETH, 41_234, 120_000, "sell")
    await rig.settle()
    body = (await rig.http.get("/api/v1/trades/binance/BTC_USDT", params={"limit": 2})).json()
    assert body == [
        {"exchange": "binance", "symbol": "BTC/USDT", "pair": "BTC_USDT", "id": "t3", "time": (T0 + 3 * 10**9) / 1e9,
         "price": "61001", "amount": "0.00005", "side": "buy"},
        {"exchange": "binance", "symbol": "BTC/USDT", "pair": "BTC_USDT", "id": "t2", "time": (T0 + 2 * 10**9) / 1e9,
         "price": "61000", "amount": "0.25", "side": "sell"},
    ]
    assert [t["id"] for t in (await rig.http.get("/api/v1/trades/binance/btc_usdt")).json()] == ["t3", "t2", "t1"]
    eth = (await rig.http.get("/api/v1/trades/binance/eth_btc")).json()
    assert [(t["price"], t["amount"], t["side"]) for t in eth] == [("0.041234", "12", "sell")]


async def test_recent_trades_route_refusals(rig: Rig) -> None:
    cases = [
        ("/api/v1/trades/binance/BTC_USDT?limit=0", 400, "invalid_limit"),
        ("/api/v1/trades/binance/BTC_USDT?limit=201", 400, "invalid_limit"),
        ("/api/v1/trades/binance/BTC_USDT?limit=ten", 400, "invalid_limit"),
        ("/api/v1/trades/binance/BTC_USDT?limit=-1", 400, "invalid_limit"),
        ("/api/v1/trades/binance/BTC_USDT?since=1", 400, "invalid_params"),
        ("/api/v1/trades/binance/BTC-USDT", 400, "invalid_symbol"),
        ("/api/v1/trades/kraken/BTC_USDT", 404, "unknown_exchange"),
        ("/api/v1/trades/binance/DOGE_USDT", 404, "unknown_symbol"),
    ]
    for path, status, code in cases:
        answer = await rig.http.get(path)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), path
        assert answer.json()["error"]["message"]


async def test_public_trades_channel_with_patterns(rig: Rig) -> None:
    received: list[tuple[int, dict[str, Any]]] = []

    def sender(n: int):  # type: ignore[no-untyped-def]
        async def send(data: bytes) -> None:
            received.append((n, msgspec.json.decode(data)))
        return send

    viewer = Principal(2, "vera", "viewer", "free")  # reading the market is enough
    btc_only, everything, silent, ticker_only = (CallContext("rpc", sender(n), viewer) for n in range(4))
    for ctx in (btc_only, everything, silent, ticker_only):
        rig.notifier.add(ctx)
    api = Api(None, rig.notifier, None)  # type: ignore[arg-type]  # `subscribe` needs only the notifier
    answer = await subscribe(api, P.SubscribeParams(channels=["public_trades"], public_trades=["binance.usdt.btc"]), btc_only)
    assert answer == {"channels": ["echo_ret", "exchstatus", "order", "public_trades", "trade"], "public_trades": ["trade.binance.usdt.btc"]}
    everything_answer = await subscribe(api, P.SubscribeParams(channels=["public_trades"]), everything)
    assert everything_answer["public_trades"] == ["trade.>"]
    await subscribe(api, P.SubscribeParams(channels=["ticker"]), ticker_only)
    for bad in (["binance..btc"], [], ["trade.binance.usdt.b tc"]):
        with pytest.raises(InvalidInput) as refused:
            await subscribe(api, P.SubscribeParams(channels=["public_trades"], public_trades=bad), silent)
        assert refused.value.code == "invalid_pattern"
    assert "public_trades" not in silent.channels  # a refused subscription changes nothing
    with pytest.raises(Unauthenticated):
        await subscribe(api, P.SubscribeParams(channels=["public_trades"]), CallContext("rpc", sender(9), None))
    await rig.trade(BTC, 6_100_050, 1_000, "buy")
    await rig.trade(ETH, 41_234, 120_000, "sell")
    await rig.settle()
    assert all(r["method"] == "public_trades" for _, r in received)
    got = [(n, r["params"]["symbol"]) for n, r in received]
    assert sorted(got) == [(0, "BTC/USDT"), (1, "BTC/USDT"), (1, "ETH/BTC")]
    assert received[0][1]["params"] == rig.trades.recent("binance", "BTC/USDT")[0]


# --- on a real server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("public-trades")))
    proc.start()
    yield proc
    proc.stop()


def test_demo_trades_over_rest_behind_the_guard(server: ServerProcess) -> None:
    url = server.http + "/api/v1/trades/demo/BTC_USDT"
    assert httpx.get(url).status_code == 401
    body: list[dict[str, Any]] = []
    for _ in range(100):
        body = httpx.get(url, params={"limit": 5}, headers=server.headers).json()
        if len(body) == 5:
            break
        asyncio.run(asyncio.sleep(0.1))
    assert len(body) == 5 and {t["symbol"] for t in body} == {"BTC/USDT"} and {t["side"] for t in body} <= {"buy", "sell"}
    times = [t["time"] for t in body]
    assert times == sorted(times, reverse=True)  # newest first


async def test_demo_trades_pushed_over_rpc(server: ServerProcess) -> None:
    async with RpcClient(server.ws) as rpc:
        answer = await rpc.call("subscribe", channels=["public_trades"], public_trades=["demo.usdt.eth"])
        assert answer["public_trades"] == ["trade.demo.usdt.eth"]
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            while len(got) < 5:
                method, params = await rpc.notifications.get()
                if method == "public_trades":
                    got.append(params)
        assert {t["symbol"] for t in got} == {"ETH/USDT"}
        ids = [int(t["id"]) for t in got]
        assert ids == sorted(ids) and len(set(ids)) == 5  # in the feed's order, each once
