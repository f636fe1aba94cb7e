"""The ticker streamer against a real ccxt.binance talking to a local server in Binance's ticker formats.

`tests/feeds/ticker_server.py` speaks Binance's `/api/v3/ticker/24hr` and mini-ticker
WebSocket streams; the fallback tests make it refuse the WebSocket upgrade or drop the
connection, and check that prices keep flowing by polling and that the WebSocket returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from coinwire.feeds.ccxt_tickers import POLLING, WEBSOCKET, TickerStreamer, ticker_from_ccxt
from coinwire.messages import Message, Ticker
from coinwire.venues.ccxt_errors import Backoff, CcxtError
from tests.feeds.binance_server import ServerRunner
from tests.feeds.ticker_server import TickerVenue

SPOT_ONLY = {"fetchMarkets": {"types": ["spot"]}}


@pytest.fixture
async def venue() -> TickerVenue:
    return TickerVenue()


@pytest.fixture
async def server(venue: TickerVenue) -> AsyncIterator[ServerRunner]:
    runner = ServerRunner(venue)
    await runner.start()
    yield runner
    await runner.stop()


def fast(base: float = 0.01, cap: float = 0.05, jitter: float = 0.0) -> Callable[[], Backoff]:
    return lambda: Backoff(base=base, cap=cap, rate_limit_factor=2.0, jitter=jitter)


def make_streamer(server: ServerRunner, symbols: list[str] | None = None, **kwargs: Any) -> TickerStreamer:
    options: dict[str, Any] = {
        "poll_interval": 0.02,
        "urls": server.urls(),
        "options": SPOT_ONLY,
        "rate_limit": False,
        "backoff": fast(),
        "ws_backoff": fast(0.05, 0.2),
    }
    options.update(kwargs)
    return TickerStreamer("binance", "binance", symbols, **options)


class Published:
    def __init__(self) -> None:
        self.got: list[tuple[str, Message]] = []

    async def __call__(self, subject: str, message: Message) -> None:
        self.got.append((subject, message))

    @property
    def tickers(self) -> list[Ticker]:
        return [m for _, m in self.got if isinstance(m, Ticker)]

    def has(self, symbol: str, last: str) -> bool:
        return any(t.symbol == symbol and t.last == Decimal(last) for t in self.tickers)

    async def wait(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.005)


async def _running(streamer: TickerStreamer, published: Published) -> asyncio.Task[None]:
    return asyncio.create_task(streamer.run(published))


async def _stop(streamer: TickerStreamer, task: asyncio.Task[None]) -> None:
    await streamer.close()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)


async def test_websocket_tickers_are_published_on_their_subjects(server: ServerRunner, venue: TickerVenue) -> None:
    streamer, published = make_streamer(server, ["BTC/USDT", "ETH/BTC"]), Published()
    task = await _running(streamer, published)
    try:
        await published.wait(lambda: {t.symbol for t in published.tickers} == {"BTC/USDT", "ETH/BTC"})
        assert streamer.mode == WEBSOCKET and venue.ws_connections >= 1 and "ticker" not in venue.requests
        subjects = {s for s, _ in published.got}
        assert subjects == {"ticker.binance.usdt.btc", "ticker.binance.btc.eth"}
        btc = next(t for t in published.tickers if t.symbol == "BTC/USDT")
        assert btc.last == Decimal("61000.50") and btc.ts == venue.time * 1_000_000 and btc.bid is None  # a mini ticker
        venue.set_price("BTCUSDT", "61001.25")
        await published.wait(lambda: published.has("BTC/USDT", "61001.25"))
        # set_price moved the venue's clock: ETH/BTC comes once more with the new time, then
        # the same figures pushed again are not published again
        now = venue.time * 1_000_000
        await published.wait(lambda: any(t.symbol == "ETH/BTC" and t.ts == now for t in published.tickers))
        count = len(published.tickers)
        await asyncio.sleep(0.1)
        assert len(published.tickers) == count
    finally:
        await _stop(streamer, task)


async def test_a_refused_websocket_falls_back_to_polling_and_comes_back(server: ServerRunner, venue: TickerVenue) -> None:
    venue.ws_refuse = 503
    streamer, published = make_streamer(server, ["BTC/USDT", "ETH/USDT"]), Published()
    task = await _running(streamer, published)
    try:
        await published.wait(lambda: len(published.tickers) >= 2)
        assert streamer.mode == POLLING and "ticker" in venue.requests
        polled = published.tickers[0]
        assert polled.bid is not None and polled.ask is not None  # REST 24 h tickers carry the touch
        venue.set_price("ETHUSDT", "2610.00")
        await published.wait(lambda: published.has("ETH/USDT", "2610.00"))
        # retried, with growing pauses (the server counts a request before the streamer has read its refusal)
        await published.wait(lambda: venue.requests.count("ws") >= 3 and streamer.ws_failures >= 3)
        assert venue.ws_connections == 0
        venue.ws_refuse = 0
        await published.wait(lambda: streamer.mode == WEBSOCKET and venue.ws_connections >= 1)
        polls = venue.requests.count("ticker")
        venue.set_price("BTCUSDT", "62000.00")
        await published.wait(lambda: published.has("BTC/USDT", "62000.00"))
        assert venue.requests.count("ticker") == polls  # back on the WebSocket: no more polling
    finally:
        await _stop(streamer, task)


async def test_a_dropped_websocket_polls_meanwhile_then_reconnects(server: ServerRunner, venue: TickerVenue) -> None:
    venue.ws_drop_after = 3
    streamer, published = make_streamer(server, ["BTC/USDT"], ws_backoff=fast(0.3, 0.6)), Published()
    task = await _running(streamer, published)
    try:
        await published.wait(lambda: venue.ws_connections >= 1 and streamer.ws_failures >= 1)
        await published.wait(lambda: "ticker" in venue.requests)
        assert streamer.mode == POLLING  # inside the 0.3 s pause: polling
        first_ws = venue.requests.index("ws")
        assert venue.requests.index("ticker") > first_ws  # polled only after the WebSocket dropped
        venue.set_price("BTCUSDT", "60500.00")
        await published.wait(lambda: published.has("BTC/USDT", "60500.00"))
        await published.wait(lambda: venue.ws_connections >= 2)  # the WebSocket is tried again
    finally:
        await _stop(streamer, task)


async def test_every_market_of_one_quote_over_the_all_market_stream(server: ServerRunner, venue: TickerVenue) -> None:
    streamer, published = make_streamer(server, None, quotes=["usdt"]), Published()
    task = await _running(streamer, published)
    try:
        await published.wait(lambda: len(published.tickers) >= 2)
        await asyncio.sleep(0.1)
        assert {t.symbol for t in published.tickers} == {"BTC/USDT", "ETH/USDT"}
        assert streamer.mode == WEBSOCKET
    finally:
        await _stop(streamer, task)


async def test_polling_only_and_garbage_answers(server: ServerRunner, venue: TickerVenue) -> None:
    venue.fail("ticker", 503, '[{"symbol": "BTCUSDT", "lastPr', 429)
    streamer, published = make_streamer(server, ["BTC/USDT", "BTC/EUR"], websocket=False), Published()
    task = await _running(streamer, published)
    try:
        await published.wait(lambda: len(published.tickers) >= 2)
        assert venue.requests.count("ticker") >= 4 and "ws" not in venue.requests
        assert streamer.error is None
        venue.set_price("BTCEUR", "-1")  # an impossible figure: dropped and counted, the other ticker still flows
        venue.set_price("BTCUSDT", "61111.00")
        await published.wait(lambda: published.has("BTC/USDT", "61111.00"))
        assert streamer.rejected >= 1
        assert all(t.last is None or t.last > 0 for t in published.tickers)
    finally:
        await _stop(streamer, task)


async def test_an_unknown_symbol_stops_the_streamer(server: ServerRunner) -> None:
    streamer = make_streamer(server, ["DOGE/USDT"])
    with pytest.raises(CcxtError) as caught:
        await asyncio.wait_for(streamer.run(Published()), 10)
    assert caught.value.code == "exchange_bad_symbol"


def test_ticker_from_ccxt_is_exact_and_refuses_the_impossible() -> None:
    ticker = ticker_from_ccxt("x", {"symbol": "BTC/USDT", "last": 0.1 + 0.2, "bid": "0", "ask": 61000.5, "timestamp": 5}, 9)
    assert ticker.last == Decimal("0.30000000000000004") and ticker.bid is None and ticker.ask == Decimal("61000.5")
    assert ticker.ts == 5_000_000
    assert ticker_from_ccxt("x", {"symbol": "BTC/USDT", "last": "1"}, 9).ts == 9
    for bad in ({"symbol": None, "last": 1}, {"symbol": "BTC/USDT"}, {"symbol": "BTC/USDT", "last": "nan"},
                {"symbol": "BTC/USDT", "last": -1}, {"symbol": "BTC/USDT", "last": 0}, {"symbol": "BTC/USDT", "last": True}):
        with pytest.raises(ValueError):
            ticker_from_ccxt("x", bad, 9)


async def test_a_configured_streamer_fills_the_latest_prices(server: ServerRunner, venue: TickerVenue, tmp_path: Any) -> None:
    """`[[market_data.tickers]]` as the platform builds it: streamer -> bus -> cache, read back with ages."""
    from coinwire.bus import MemoryBus
    from coinwire.cache import MemoryCache
    from coinwire.config.market_data import MarketDataConfig, TickerConfig
    from coinwire.services.market_data import MarketData
    from coinwire.store import Store

    venue.ws_refuse = 503  # and through the polling fallback
    venue.time = time.time_ns() // 1_000_000  # fresh prices: convert ignores tickers older than ticker_max_age
    cfg = MarketDataConfig(tickers=[TickerConfig(exchange="binance", quotes=["USDT"], poll_interval=0.05,
                                                 urls=server.urls(), options=SPOT_ONLY)])
    bus, store = MemoryBus(), Store(f"sqlite:///{tmp_path / 'm.db'}")
    await bus.start()
    await store.start()
    market = MarketData(cfg, bus, MemoryCache(), store)
    market.tickers.flush_interval = 0.02
    await market.start()
    try:
        async with asyncio.timeout(10):
            while len(await market.reader.tickers()) < 2:
                await asyncio.sleep(0.02)
        views = await market.reader.tickers("ticker.binance.usdt.*")
        assert [(v.symbol, v.last) for v in views] == [("BTC/USDT", Decimal("61000.5")), ("ETH/USDT", Decimal("2600.1"))]
        assert market.streamer_status()[0]["mode"] == POLLING
        conversion = await market.convert("2", "eth", "usd")  # ETH/USDT ticker, then the USDT peg
        assert conversion.result == Decimal("5200.2")
    finally:
        await market.close()
        await bus.close()
        await store.close()


async def test_polled_tickers_pass_the_feed_breaker_which_stops_requests_while_open(
    server: ServerRunner, venue: TickerVenue
) -> None:
    import time

    from coinwire.core.breaker import BreakerState
    from coinwire.services.breakers import Breakers

    breakers = Breakers(failures=3, reset_seconds=0.6, clock=time.monotonic)
    guard = breakers.get("feed:binance")
    streamer, published = make_streamer(server, ["BTC/USDT"], websocket=False, breaker=guard), Published()
    task = await _running(streamer, published)
    try:
        await published.wait(lambda: len(published.tickers) >= 1)
        venue.fail("ticker", 503, 503, 503, 503)
        await published.wait(lambda: guard.breaker.state is BreakerState.OPEN)
        asked = venue.requests.count("ticker")
        await asyncio.sleep(0.3)
        assert guard.breaker.state_at(time.monotonic()) is BreakerState.OPEN
        assert venue.requests.count("ticker") == asked  # nothing while open
        assert streamer.error is not None and streamer.error.code == "dependency_unavailable"
        venue.set_price("BTCUSDT", "61222.00")
        await published.wait(lambda: published.has("BTC/USDT", "61222.00"))
        assert guard.breaker.state is BreakerState.CLOSED and streamer.error is None
    finally:
        await _stop(streamer, task)
