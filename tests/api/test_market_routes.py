"""/api/v1/tickers, /api/v1/convert, /api/v1/refdata and the `ticker` push channel, on real ports.

The market-data role is built as the composition root builds it (MemoryBus, MemoryCache, a
SQLite store, reference data fetched from the local source server), and the routes are
served through FastAPI in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
import pytest
from fastapi import FastAPI

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.market_routes import add_market_routes, ticker_pattern
from coinwire.api.methods import Api, subscribe
from coinwire.api.notifier import Notifier
from coinwire.auth.abilities import Principal
from coinwire.bus import MemoryBus
from coinwire.cache import MemoryCache
from coinwire.config.market_data import MarketDataConfig
from coinwire.core.errors import InvalidInput
from coinwire.feeds.base import subject_for
from coinwire.messages import Ticker
from coinwire.services.market_data import MarketData, build_refdata
from coinwire.store import Store
from tests.feeds.binance_server import ServerRunner
from tests.refdata.refdata_server import RefDataVenue

NOW = 1723200000 * 10**9


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


class Setup:
    def __init__(self, market: MarketData, bus: MemoryBus, http: httpx.AsyncClient, clock: Clock) -> None:
        self.market, self.bus, self.http, self.clock = market, bus, http, clock

    async def tick(self, exchange: str, symbol: str, last: str, age: float = 1.0) -> None:
        message = Ticker(exchange, symbol, self.clock.now - int(age * 1e9), last=Decimal(last))
        await self.bus.publish(subject_for(message), message)

    async def settle(self) -> None:
        for _ in range(100):
            await asyncio.sleep(0.002)
            if all(s.inbox.pending == 0 for s in self.bus._subscriptions):
                break
        await self.market.tickers.flush()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    venue = RefDataVenue()
    runner = ServerRunner(venue)
    await runner.start()
    base = f"http://127.0.0.1:{runner.port}"
    cfg = MarketDataConfig(fx_source="ecb", fx_url=f"{base}/ecb/eurofxref-daily.xml", coin_source="coingecko",
                           coin_url=f"{base}/cg/api/v3", top=3, ticker_max_age=600)
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    await store.start()
    bus, cache, clock = MemoryBus(), MemoryCache(), Clock()
    await bus.start()
    market = MarketData(cfg, bus, cache, store, clock=clock, refdata=build_refdata(cfg, store))
    await market.start()
    assert market.refdata is not None
    market.refdata._clock = clock  # the fixed clock of this test (fetch times, ages)
    await market.refdata.refresh_fx()
    await market.refdata.refresh_coins()
    app = FastAPI()
    add_market_routes(app, market)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield Setup(market, bus, http, clock)
    await market.close()
    await bus.close()
    await store.close()
    await runner.stop()


async def test_tickers_filtered_by_exchange_and_quote_with_their_age(setup: Setup) -> None:
    await setup.tick("binance", "BTC/USDT", "61000.5", age=2)
    await setup.tick("binance", "ETH/BTC", "0.0426")
    await setup.tick("kraken", "BTC/EUR", "55800")
    await setup.settle()
    body = (await setup.http.get("/api/v1/tickers", params={"exchange": "binance", "quote": "usdt"})).json()
    assert [(t["symbol"], t["price"], t["age"], t["source"]) for t in body] == [("BTC/USDT", "61000.5", 2.0, "ticker")]
    assert len((await setup.http.get("/api/v1/tickers")).json()) == 3
    assert [t["exchange"] for t in (await setup.http.get("/api/v1/tickers?base=btc")).json()] == ["binance", "kraken"]
    bad = await setup.http.get("/api/v1/tickers?quote=us.dt")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_filter"


async def test_convert_through_tickers_pegs_and_fx(setup: Setup) -> None:
    await setup.tick("binance", "SOL/BTC", "0.0025")
    await setup.tick("binance", "BTC/USDT", "60000")
    await setup.settle()
    # ETH is in CoinGecko's top list: ETH -> USD (2600.12) -> EUR (ECB: 1 EUR = 1.0922 USD)
    body = (await setup.http.get("/api/v1/convert", params={"amount": "2", "from": "eth", "to": "EUR"})).json()
    assert [(s["from"], s["to"], s["source"]) for s in body["route"]] == [("ETH", "USD", "coins:coingecko"), ("USD", "EUR", "fx:ecb")]
    assert abs(Decimal(body["result"]) - Decimal(2) * Decimal("2600.12") / Decimal("1.0922")) < Decimal("1e-20")
    assert body["age"] == round((NOW - setup.market.refdata.fx.ts) / 1e9, 3)  # type: ignore[union-attr]  # the oldest step
    # SOL is not: SOL -> BTC (ticker) -> USD (CoinGecko's 61000.5, fresher than BTC/USDT + peg? one step fewer) -> EUR
    body = (await setup.http.get("/api/v1/convert", params={"amount": "10", "from": "SOL", "to": "EUR"})).json()
    assert [(s["from"], s["to"], s["source"]) for s in body["route"]] == [
        ("SOL", "BTC", "ticker:binance"), ("BTC", "USD", "coins:coingecko"), ("USD", "EUR", "fx:ecb")]
    expected = Decimal(10) * Decimal("0.0025") * Decimal("61000.5") / Decimal("1.0922")
    assert abs(Decimal(body["result"]) - expected) < Decimal("1e-20")
    # USDT is pegged to USD, so BTC -> USDT -> USD -> JPY: tickers, peg, FX (USD -> EUR -> JPY is ECB's cross)
    body = (await setup.http.get("/api/v1/convert", params={"amount": "1", "from": "USDT", "to": "JPY"})).json()
    assert [s["source"] for s in body["route"]] == ["peg", "fx:ecb", "fx:ecb"]
    assert abs(Decimal(body["result"]) - Decimal("160.64") / Decimal("1.0922")) < Decimal("1e-20")


async def test_convert_errors_have_stable_codes(setup: Setup) -> None:
    cases = [
        ({"amount": "1", "from": "DOGE", "to": "EUR"}, 404, "unknown_currency"),
        ({"amount": "x", "from": "BTC", "to": "EUR"}, 400, "invalid_amount"),
        ({"amount": "-1", "from": "BTC", "to": "EUR"}, 400, "invalid_amount"),
        ({"amount": "1", "from": "B/TC", "to": "EUR"}, 400, "invalid_currency"),
        ({"amount": "1", "to": "EUR"}, 400, "missing_parameter"),
    ]
    for params, status, code in cases:
        answer = await setup.http.get("/api/v1/convert", params=params)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), params
    await setup.tick("dex", "FOO/BAR", "2")
    await setup.settle()
    answer = await setup.http.get("/api/v1/convert", params={"amount": "1", "from": "FOO", "to": "EUR"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "no_route")


async def test_stale_tickers_are_not_used_to_convert(setup: Setup) -> None:
    await setup.tick("dex", "FOO/USDT", "2", age=601)
    await setup.settle()
    answer = await setup.http.get("/api/v1/convert", params={"amount": "1", "from": "FOO", "to": "USD"})
    assert answer.json()["error"]["code"] == "unknown_currency"
    await setup.tick("dex", "FOO/USDT", "2", age=599)
    await setup.settle()
    assert (await setup.http.get("/api/v1/convert", params={"amount": "3", "from": "FOO", "to": "USD"})).json()["result"] == "6"


async def test_refdata_status(setup: Setup) -> None:
    body = (await setup.http.get("/api/v1/refdata")).json()
    assert body["fx"]["base"] == "EUR" and body["fx"]["rates"]["USD"] == "1.0922"
    assert [c["symbol"] for c in body["coins"]] == ["BTC", "ETH", "USDT"]
    assert {s["source"]: s["error"] for s in body["sources"]} == {"ecb": None, "coingecko": None}


async def test_ticker_push_channel_with_patterns(setup: Setup) -> None:
    notifier = Notifier(setup.bus)
    setup.market.tickers.listeners.append(notifier.on_ticker)
    received: list[dict[str, object]] = []

    async def send(data: bytes) -> None:
        received.append(msgspec.json.decode(data))

    viewer = Principal(2, "vera", "viewer", "free")  # subscribing to `ticker` needs a signed-in reader
    usdt, everything, silent = (CallContext("rpc", send, viewer) for _ in range(3))
    for ctx in (usdt, everything, silent):
        notifier.add(ctx)
    api = Api(None, notifier, None)  # type: ignore[arg-type]  # `subscribe` needs only the notifier
    answer = await subscribe(api, P.SubscribeParams(channels=["ticker"], tickers=["binance.usdt.*"]), usdt)
    assert answer == {"channels": ["echo_ret", "exchstatus", "order", "ticker", "trade"], "tickers": ["ticker.binance.usdt.*"]}
    await subscribe(api, P.SubscribeParams(channels=["ticker"]), everything)
    with pytest.raises(InvalidInput):
        await subscribe(api, P.SubscribeParams(channels=["ticker"], tickers=["binance..*"]), silent)
    await setup.tick("binance", "BTC/USDT", "61000")
    await setup.tick("binance", "ETH/BTC", "0.04")
    await setup.settle()
    params = [r["params"] for r in received]
    assert all(r["method"] == "ticker" for r in received)
    assert [p["symbol"] for p in params] == ["BTC/USDT", "BTC/USDT", "ETH/BTC"]  # type: ignore[index]


def test_ticker_pattern() -> None:
    assert ticker_pattern() == "ticker.*.*.*"
    assert ticker_pattern("binance", "USDT") == "ticker.binance.usdt.*"
    with pytest.raises(InvalidInput):
        ticker_pattern(base="b tc")
