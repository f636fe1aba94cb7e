"""The rate retriever on real parts: the demo market's ticks through the bus and the ticker service into the cache
(in process and on Redis), a store (SQLite and PostgreSQL), and a real ccxt.binance against the local Binance
ticker server for markets no feed runs for.

One rate a minute per market; a repeat of a minute writes and publishes nothing; a ticker from a later
minute or older than the bound is no rate; CCXT failures are retried when retryable and cost only
their exchange's rates.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coinwire.bus import MemoryBus
from coinwire.cache import Cache, cache_from_url
from coinwire.core.errors import InvalidInput
from coinwire.feeds.base import subject_for
from coinwire.feeds.demo import DemoMarket
from coinwire.messages import BookTicker, Markets, Message, Rate, subject
from coinwire.services.rates import CcxtPrices, Rates
from coinwire.services.tickers import TickerReader, TickerService
from coinwire.store import Store
from coinwire.store.rates import load_rates
from coinwire.venues.ccxt_client import make_client
from coinwire.venues.ccxt_errors import Backoff
from tests.conftest import REDIS_URL, require_service
from tests.feeds.binance_server import ServerRunner
from tests.feeds.ticker_server import EVENT_TIME, TickerVenue

T0 = 1_764_000_000_000  # a minute's start (unix ms) for the demo market's test clock
MINUTE = 60_000
SPOT_ONLY = {"fetchMarkets": {"types": ["spot"]}}
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        made = cache_from_url("memory://")
    else:
        require_service("Redis", "127.0.0.1", 6379)
        made = cache_from_url(REDIS_URL, f"t{uuid.uuid4().hex[:12]}")
    yield made
    if request.param == "redis":
        await made.clear()  # type: ignore[attr-defined]
    await made.close()


@dataclass
class DemoClock:
    """The demo market stepped on a test clock, its messages published on a real bus to the ticker service."""

    bus: MemoryBus
    tickers: TickerService
    reader: TickerReader
    market: DemoMarket = field(default_factory=lambda: DemoMarket("demo", SYMBOLS, seed=5, levels=20))
    touch: dict[str, BookTicker] = field(default_factory=dict)  # the last best bid/ask sent per symbol

    async def tick(self, at_ms: int) -> None:
        """One tick of the market stamped `at_ms`, in the cache once this returns."""
        for message in self.market.step(at_ms * 1_000_000):
            if isinstance(message, BookTicker):
                self.touch[message.symbol] = message
            await self.bus.publish(subject_for(message), message)
        async with asyncio.timeout(10):
            while True:
                await self.tickers.flush()
                views = [await self.reader.get("demo", s) for s in SYMBOLS]
                if all(v is not None and v.ts == at_ms * 1_000_000 for v in views):
                    return
                await asyncio.sleep(0.002)

    def mid(self, symbol: str) -> Decimal:
        """The mid of the last touch sent, computed here from the integers on the wire (price decimals 2)."""
        touch = self.touch[symbol]
        return (Decimal(touch.bid) + Decimal(touch.ask)) / 2 / 100


class Published:
    """Every `Rate` on the bus, as a subscriber of `rate.>` receives it."""

    def __init__(self) -> None:
        self.rates: list[tuple[str, Rate]] = []

    async def __call__(self, subject_: str, message: Message) -> None:
        assert isinstance(message, Rate)
        self.rates.append((subject_, message))


async def _delivered(bus: MemoryBus) -> None:
    await asyncio.sleep(0.05)  # the rate subscriber's inbox task runs (the bus delivers in order, off the publisher)


@pytest.fixture
async def demo(cache: Cache) -> AsyncIterator[DemoClock]:
    bus = MemoryBus()
    await bus.start()
    tickers = TickerService(bus, cache, flush_interval=3600)
    await tickers.start()
    clock = DemoClock(bus, tickers, TickerReader(cache))
    await bus.publish(subject("markets", "demo"), Markets("demo", clock.market.instruments()))
    yield clock
    await tickers.close()
    await bus.close()


def feed_markets() -> list[tuple[str, str]]:
    return [("demo", s) for s in SYMBOLS]


async def test_one_rate_a_minute_per_market_across_minutes_of_the_demo_market(demo: DemoClock, store: Store) -> None:
    published = Published()
    await demo.bus.subscribe("rate.>", published)
    rates = Rates(store, demo.bus, demo.reader, None, feed_markets, clock=lambda: (T0 + 10 * MINUTE) * 1_000_000)
    expected: dict[str, list[tuple[int, Decimal]]] = {s: [] for s in SYMBOLS}
    for minute in range(5):
        start = T0 + minute * MINUTE
        await demo.tick(start + 7_000)  # the market moves inside the minute ...
        await demo.tick(start + 31_000)
        assert await rates.retrieve(start + 32_000) == 3  # ... and the retriever runs in it: one rate per market
        for symbol in SYMBOLS:
            expected[symbol].append((start, demo.mid(symbol)))
        await demo.tick(start + 50_000)  # a later tick in the same minute changes nothing stored
        assert await rates.retrieve(start + 55_000) == 0
    for symbol in SYMBOLS:
        stored = await load_rates(store, "demo", symbol, T0 - MINUTE, T0 + 10 * MINUTE, 100)
        assert [(r.minute_ms, r.price) for r in stored] == expected[symbol]
        assert {r.source for r in stored} == {"ticker"} and {r.received_ms for r in stored} == {T0 + 10 * MINUTE}
    await _delivered(demo.bus)
    assert len(published.rates) == 15
    assert sorted((r.exchange, r.symbol, r.time, r.price, r.source) for _, r in published.rates) == sorted(
        ("demo", s, t, p, "ticker") for s in SYMBOLS for t, p in expected[s]
    )
    assert {s for s, _ in published.rates} == {"rate.demo.usdt.btc", "rate.demo.usdt.eth", "rate.demo.usdt.sol"}
    # a repeat of a minute already stored writes nothing and publishes nothing, whatever the price is now
    assert await rates.retrieve(T0 + 2 * MINUTE) == 0
    await _delivered(demo.bus)
    assert len(published.rates) == 15


async def test_a_ticker_from_a_later_minute_or_older_than_the_bound_is_no_rate(demo: DemoClock, store: Store) -> None:
    rates = Rates(store, demo.bus, demo.reader, None, feed_markets, max_age=90)
    await demo.tick(T0 + 10 * MINUTE + 5_000)
    assert await rates.retrieve(T0 + 3 * MINUTE) == 0  # catching up an old minute: today's price is not its rate
    assert await rates.retrieve(T0 + 10 * MINUTE + 5_000 + 91_000) == 0  # 91 s since the last tick: stale
    assert rates.missed == 6
    assert await rates.retrieve(T0 + 10 * MINUTE + 5_000 + 89_000) == 3  # 89 s: still within the bound
    assert await load_rates(store, "demo", "BTC/USDT", 0, 2**62, 100) != []
    assert [r.minute_ms for r in await load_rates(store, "demo", "BTC/USDT", 0, 2**62, 100)] == [T0 + 11 * MINUTE]


async def test_only_the_markets_asked_for_and_a_malformed_one_refuses_the_call(demo: DemoClock, store: Store) -> None:
    rates = Rates(store, demo.bus, demo.reader, None, feed_markets)
    await demo.tick(T0 + 1_000)
    assert await rates.retrieve(T0 + 2_000, [("demo", "btc_usdt"), ("demo", "BTC/USDT")]) == 1  # one market, named twice
    with pytest.raises(InvalidInput) as refused:
        await rates.retrieve(T0 + 2_000, [("demo", "ETH/USDT"), ("demo", "not a symbol")])
    assert refused.value.code == "invalid_symbol"
    assert await load_rates(store, "demo", "ETH/USDT", 0, 2**62, 100) == []  # nothing of the refused call was written
    assert await rates.retrieve(T0 + 2_000, [("demo", "DOGE/USDT")]) == 0  # a market nothing quotes: no rate


# --- CCXT, for markets no feed runs for ---------------------------------------------------------------------------


@pytest.fixture
async def venue() -> AsyncIterator[tuple[TickerVenue, ServerRunner]]:
    served = TickerVenue()
    runner = ServerRunner(served)
    await runner.start()
    yield served, runner
    await runner.stop()


def ccxt_prices(runner: ServerRunner, attempts: int = 3) -> CcxtPrices:
    def client(exchange: str) -> Any:
        return make_client(exchange, urls=runner.urls(), options=SPOT_ONLY, rate_limit=False)

    return CcxtPrices(client, attempts=attempts, backoff=lambda: Backoff(base=0.01, cap=0.05, jitter=0.0))


def no_feeds() -> list[tuple[str, str]]:
    return []


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    started = MemoryBus()
    await started.start()
    yield started
    await started.close()


BINANCE = [("binance", "BTC/USDT"), ("binance", "ETH/BTC")]


async def test_markets_no_feed_runs_for_are_fetched_through_ccxt(
    venue: tuple[TickerVenue, ServerRunner], store: Store, bus: MemoryBus
) -> None:
    served, runner = venue
    fetch = ccxt_prices(runner)
    published = Published()
    await bus.subscribe("rate.>", published)
    rates = Rates(store, bus, TickerReader(cache_from_url("memory://")), fetch, no_feeds)
    try:
        assert await rates.retrieve(EVENT_TIME, BINANCE) == 2
        assert await rates.retrieve(EVENT_TIME, BINANCE) == 0  # the same minute again: nothing new
        served.set_price("BTCUSDT", "61111.25")
        served.set_price("ETHBTC", "0.05")
        assert await rates.retrieve(EVENT_TIME + MINUTE, BINANCE) == 2
        assert served.requests.count("ticker") == 3  # one request per exchange and minute, both markets in it
    finally:
        await fetch.close()
    minute = EVENT_TIME - EVENT_TIME % MINUTE
    btc = await load_rates(store, "binance", "BTC/USDT", 0, 2**62, 10)
    assert [(r.minute_ms, r.price, r.source) for r in btc] == [
        (minute, Decimal("61000.50"), "ccxt"), (minute + MINUTE, Decimal("61111.25"), "ccxt")]
    eth = await load_rates(store, "binance", "ETH/BTC", 0, 2**62, 10)
    assert [r.price for r in eth] == [Decimal("0.04262"), Decimal("0.05")]
    await _delivered(bus)
    assert len(published.rates) == 4 and {r.source for _, r in published.rates} == {"ccxt"}


async def test_ccxt_failures_are_retried_when_retryable_and_cost_only_that_minute(
    venue: tuple[TickerVenue, ServerRunner], store: Store, bus: MemoryBus
) -> None:
    served, runner = venue
    fetch = ccxt_prices(runner, attempts=3)
    rates = Rates(store, bus, TickerReader(cache_from_url("memory://")), fetch, no_feeds)
    try:
        served.fail("ticker", 503, "not json")  # the venue is unavailable, then answers garbage, then recovers
        assert await rates.retrieve(EVENT_TIME, BINANCE) == 2
        served.fail("ticker", 503, 503, 503)  # down for every try of the next minute: that minute has no rates
        assert await rates.retrieve(EVENT_TIME + MINUTE, BINANCE) == 0
        assert rates.missed == 2
        served.fail("ticker", 400)  # refused (operational): not retried
        before = served.requests.count("ticker")
        assert await rates.retrieve(EVENT_TIME + 2 * MINUTE, BINANCE) == 0
        assert served.requests.count("ticker") == before + 1
        served.set_price("BTCUSDT", "61000.75")
        assert await rates.retrieve(EVENT_TIME + 2 * MINUTE, BINANCE) == 2  # the venue answers again: the minute is taken
    finally:
        await fetch.close()
    btc = await load_rates(store, "binance", "BTC/USDT", 0, 2**62, 10)
    assert [r.price for r in btc] == [Decimal("61000.50"), Decimal("61000.75")]


async def test_a_market_whose_feed_runs_is_never_fetched(venue: tuple[TickerVenue, ServerRunner], store: Store, bus: MemoryBus) -> None:
    served, runner = venue
    fetch = ccxt_prices(runner)
    running: Callable[[], list[tuple[str, str]]] = lambda: [("binance", "BTC/USDT")]  # noqa: E731
    rates = Rates(store, bus, TickerReader(cache_from_url("memory://")), fetch, running)
    try:
        assert await rates.retrieve(EVENT_TIME) == 0  # its feed runs but the cache has no ticker: no rate, no request
        assert "ticker" not in served.requests
    finally:
        await fetch.close()


# --- as the platform wires it ---------------------------------------------------------------------------------------------


async def test_the_platform_records_every_market_whose_feed_runs_and_reads_its_settings(tmp_path: Path) -> None:
    """`Platform.rates` with no markets named takes the running feeds' markets; `rates_max_age` bounds a ticker's age."""
    import time

    from coinwire.app import Platform
    from coinwire.config import load_settings

    settings = load_settings(overrides={"data_dir": str(tmp_path), "exchanges": [
        {"name": "demo", "tick_interval": 0.05, "symbols": ["BTC/USDT", "ETH/USDT"]}]},
        env={"COINWIRE_RATES_MAX_AGE": "30", "COINWIRE_RATES_MAX_POINTS": "7"})
    assert (settings.rates_max_age, settings.rates_max_points) == (30.0, 7)
    platform = Platform(settings)
    assert platform.rate_history.max_points == 7
    await platform.start()
    try:
        async with asyncio.timeout(20):
            while len(await platform.market.reader.tickers("ticker.demo.>")) < 2:
                await asyncio.sleep(0.05)
        if time.time_ns() // 1_000_000 % MINUTE > 50_000:  # a ticker of the next minute is no rate of this one: not near its end
            await asyncio.sleep(11)
        now = time.time_ns() // 1_000_000
        assert await platform.rates.retrieve(now + 40_000) == 0  # 40 s after every ticker: older than rates_max_age (30 s)
        assert await platform.rates.retrieve(now) == 2
        assert await platform.rates.retrieve(now) == 0
        answer = await platform.rate_history.read("demo", "ETH_USDT", "1h")
        assert [r["time"] for r in answer["rates"]] == [now - now % MINUTE] and answer["rates"][0]["source"] == "ticker"
    finally:
        await platform.stop()


async def test_the_rate_source_breaker_opens_on_503s_and_refuses_without_a_request(
    venue: tuple[TickerVenue, ServerRunner]
) -> None:
    from coinwire.core.breaker import BreakerState, DependencyUnavailable
    from coinwire.services.breakers import Breakers

    served, runner = venue
    now = [0.0]
    breakers = Breakers(failures=3, reset_seconds=60.0, clock=lambda: now[0])

    def client(exchange: str) -> Any:
        return make_client(exchange, urls=runner.urls(), options=SPOT_ONLY, rate_limit=False)

    fetch = CcxtPrices(client, attempts=3, backoff=lambda: Backoff(base=0.01, cap=0.05, jitter=0.0), breakers=breakers)
    try:
        assert set(await fetch("binance", ["BTC/USDT"])) == {"BTC/USDT"}
        served.fail("ticker", 503, 503, 503)
        with pytest.raises(Exception) as failed:  # three attempts, three 503s: the third opens the breaker
            await fetch("binance", ["BTC/USDT"])
        assert getattr(failed.value, "code", "") in ("exchange_unavailable", "exchange_busy")
        assert breakers.get("rates:binance").breaker.state is BreakerState.OPEN
        asked = served.requests.count("ticker")
        with pytest.raises(DependencyUnavailable):
            await fetch("binance", ["BTC/USDT"])
        assert served.requests.count("ticker") == asked  # refused at once: no request, no retries
        now[0] += 60.0
        assert set(await fetch("binance", ["BTC/USDT"])) == {"BTC/USDT"}  # the probe closes it
        assert breakers.get("rates:binance").breaker.state is BreakerState.CLOSED
    finally:
        await fetch.close()
