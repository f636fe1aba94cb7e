"""Latest prices in the cache, on the in-process cache and on a real Redis, fed through a real MemoryBus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from coinwire.bus import MemoryBus
from coinwire.cache import MemoryCache
from coinwire.cache.base import Cache
from coinwire.cache.redis import RedisCache
from coinwire.feeds.base import subject_for
from coinwire.feeds.demo import DemoMarket
from coinwire.messages import BookTicker, Markets, Message, Ticker, subject
from coinwire.services.tickers import TickerReader, TickerService, TickerView
from tests.conftest import REDIS_URL, require_service

NOW = 1_700_000_000 * 10**9


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    namespace = f"t{uuid.uuid4().hex[:16]}"
    if request.param == "redis":
        url = urlsplit(REDIS_URL)
        require_service("Redis", url.hostname or "127.0.0.1", url.port or 6379)
        made: Cache = RedisCache(REDIS_URL, namespace)
    else:
        made = MemoryCache(namespace)
    yield made
    await made.clear()
    await made.close()


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    made = MemoryBus()
    await made.start()
    yield made
    await made.close()


def ticker(exchange: str, symbol: str, last: str, ts: int = NOW - 2 * 10**9, **kw: str) -> Ticker:
    return Ticker(exchange, symbol, ts, last=Decimal(last), **{k: Decimal(v) for k, v in kw.items()})


async def publish_all(bus: MemoryBus, messages: list[Message]) -> None:
    for message in messages:
        await bus.publish(subject_for(message), message)


async def settle(service: TickerService, bus: MemoryBus) -> None:
    """Let every subscription drain, then flush what arrived."""
    for _ in range(50):
        await asyncio.sleep(0.005)
        if all(s.inbox.pending == 0 for s in bus._subscriptions):
            break
    await service.flush()


async def test_demo_book_tickers_become_mid_prices_with_their_age(bus: MemoryBus, cache: Cache) -> None:
    clock = Clock()
    service = TickerService(bus, cache, clock=clock, flush_interval=60)
    await service.start()
    market = DemoMarket("demo")
    await publish_all(bus, [Markets("demo", market.instruments()), *market.step(NOW - 3 * 10**9)])
    await settle(service, bus)
    reader = TickerReader(cache, clock)
    views = await reader.tickers("ticker.demo.usdt.*")
    assert [v.symbol for v in views] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    btc_book = market.book("BTC/USDT")
    bid, ask = Decimal(btc_book.best_bid()) / 100, Decimal(btc_book.best_ask()) / 100
    btc = views[0]
    assert (btc.bid, btc.ask, btc.price, btc.last, btc.source) == (bid, ask, (bid + ask) / 2, None, "book")
    clock.now += 10**9
    public = btc.to_public(clock.now)
    assert public["age"] == 4.0 and public["price"] == str((bid + ask) / 2) and public["pair"] == "BTC_USDT"
    await service.close()


async def test_wildcard_reads_and_the_latest_ticker_wins(bus: MemoryBus, cache: Cache) -> None:
    service = TickerService(bus, cache, clock=Clock(), flush_interval=60)
    seen: list[tuple[str, TickerView]] = []

    async def listener(subject_: str, view: TickerView) -> None:
        seen.append((subject_, view))

    service.listeners.append(listener)
    await service.start()
    await publish_all(bus, [
        ticker("binance", "BTC/USDT", "61000.5"),
        ticker("binance", "ETH/USDT", "2600.1"),
        ticker("binance", "ETH/BTC", "0.04262"),
        ticker("kraken", "BTC/EUR", "55800", bid="55799.9", ask="55800.1"),
        ticker("binance", "BTC/USDT", "61001.25"),
    ])
    await settle(service, bus)
    reader = TickerReader(cache, Clock())
    usdt = await reader.tickers("ticker.binance.usdt.*")
    assert [(v.symbol, v.price) for v in usdt] == [("BTC/USDT", Decimal("61001.25")), ("ETH/USDT", Decimal("2600.1"))]
    assert [v.exchange for v in await reader.tickers("ticker.*.*.btc")] == ["binance", "kraken"]
    assert len(await reader.tickers()) == 4
    assert await reader.exchanges() == ["binance", "kraken"]
    kraken = await reader.get("kraken", "BTC_EUR")
    assert kraken is not None and kraken.bid == Decimal("55799.9") and kraken.price == Decimal("55800")
    assert await reader.get("kraken", "ETH/EUR") is None
    assert [s for s, _ in seen][:2] == ["ticker.binance.usdt.btc", "ticker.binance.usdt.eth"] and len(seen) == 5
    await service.close()


async def test_two_writers_share_one_index(bus: MemoryBus, cache: Cache) -> None:
    """Two gateway processes writing one cache (Redis, scale-out) each add their symbols to the index."""
    other_bus = MemoryBus()
    await other_bus.start()
    first = TickerService(bus, cache, flush_interval=60)
    second = TickerService(other_bus, cache, flush_interval=60)
    await first.start()
    await second.start()
    await publish_all(bus, [ticker("binance", "BTC/USDT", "1")])
    await settle(first, bus)
    await publish_all(other_bus, [ticker("binance", "SOL/USDT", "2"), ticker("okx", "BTC/USDT", "3")])
    await settle(second, other_bus)
    views = await TickerReader(cache).tickers()
    assert [(v.exchange, v.symbol) for v in views] == [("binance", "BTC/USDT"), ("binance", "SOL/USDT"), ("okx", "BTC/USDT")]
    await first.close()
    await second.close()
    await other_bus.close()


async def test_book_tickers_of_unannounced_markets_are_skipped(bus: MemoryBus, cache: Cache) -> None:
    service = TickerService(bus, cache, flush_interval=60)
    await service.start()
    await bus.publish(subject("ticker", "demo", "BTC/USDT"), BookTicker("demo", "BTC/USDT", NOW, 1, 100, 1, 101, 1))
    await settle(service, bus)
    assert service.skipped == 1 and await TickerReader(cache).tickers() == []
    await service.close()


async def test_the_flush_loop_writes_on_its_own(bus: MemoryBus, cache: Cache) -> None:
    service = TickerService(bus, cache, flush_interval=0.01)
    await service.start()
    await publish_all(bus, [ticker("binance", "BTC/USDT", "61000")])
    async with asyncio.timeout(5):
        while not await TickerReader(cache).tickers():
            await asyncio.sleep(0.01)
    await service.close()
