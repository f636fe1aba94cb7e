"""The ccxt feed against a real ccxt.binance talking to a local server that answers from recorded Binance data.

Nothing here mocks CCXT or coinwire: `tests/feeds/binance_server.py` speaks Binance's REST
and WebSocket protocols from the recorded BTCUSDT capture, the feed's real CCXT client is
pointed at it through `urls` overrides, and what the feed publishes goes into a real
PaperMarket (BookSync + MatchingEngine) or, at the end, a whole coinwire Platform.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coinwire.core.book_sync import SYNCED
from coinwire.core.ids import IdSequence
from coinwire.core.numbers import to_units
from coinwire.core.orders import Side
from coinwire.feeds.base import Feed, SnapshotSource
from coinwire.feeds.ccxt_feed import POLLING, WEBSOCKET, CcxtFeed
from coinwire.history.binance_capture import BINANCE_BTCUSDT
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, Markets, Message, TradeTick
from coinwire.venues.ccxt_client import make_client
from coinwire.venues.ccxt_errors import Backoff, CcxtError, ErrorGroup, translate
from coinwire.venues.paper import PaperMarket
from tests.conftest import shared_data
from tests.feeds.binance_server import MALFORMED, TIMEOUT, RecordedBinance, ServerRunner, load_capture

SYMBOL = "BTC/USDT"
SPOT_ONLY = {"fetchMarkets": {"types": ["spot"]}}  # load spot markets only (the server has no futures API)
_CAPTURE: list[dict[str, Any]] = []


def capture() -> list[dict[str, Any]]:
    """The first 3,000 recorded messages (about 40 s of Binance BTCUSDT), read once per session."""
    if not _CAPTURE:
        _CAPTURE.extend(load_capture(shared_data("binance-spot-l2", "btcusdt_20240808.gz"), 3000))
    return _CAPTURE


@pytest.fixture
async def venue() -> AsyncIterator[RecordedBinance]:
    yield RecordedBinance(capture())


@pytest.fixture
async def server(venue: RecordedBinance) -> AsyncIterator[ServerRunner]:
    runner = ServerRunner(venue)
    await runner.start()
    yield runner
    await runner.stop()


def fast_backoff() -> Backoff:
    return Backoff(base=0.01, cap=0.05, rate_limit_factor=2.0, jitter=0.0)


def make_feed(server: ServerRunner, **kwargs: Any) -> CcxtFeed:
    options: dict[str, Any] = {
        "poll_interval": 0.02,
        "depth": 1000,
        "websocket": False,
        "urls": server.urls(),
        "options": SPOT_ONLY,
        "rate_limit": False,  # CCXT's throttle is for real venues; this one is local
        "backoff": fast_backoff,
    }
    options.update(kwargs)
    return CcxtFeed("binance", "binance", [SYMBOL], **options)


class PaperConsumer:
    """Routes the feed's messages into a real PaperMarket the way the gateway does (resync from the feed on a gap)."""

    def __init__(self, feed: CcxtFeed, drop: Callable[[Message], bool] = lambda m: False) -> None:
        self.feed = feed
        self.drop = drop
        self.market: PaperMarket | None = None
        self.messages: list[Message] = []
        self.resyncs = 0

    async def publish(self, subject: str, message: Message) -> None:
        self.messages.append(message)
        if self.drop(message):
            return
        if isinstance(message, Markets):
            self.market = PaperMarket(message.instruments[0], IdSequence())
            return
        market = self.market
        assert market is not None, "market data before the Markets message"
        if isinstance(message, (BookSnapshot, BookDelta)):
            market.on_book(message)
            if market.sync.needs_snapshot:
                snapshot = self.feed.snapshot(message.exchange, message.symbol)
                assert snapshot is not None
                self.resyncs += 1
                market.on_book(snapshot)
        elif isinstance(message, TradeTick):
            market.on_trade(message)

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    def book(self, depth: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        assert self.market is not None
        book = self.market.engine.book
        return book.levels(Side.BUY, depth), book.levels(Side.SELL, depth)


class HealthLog(list[tuple[str, bool]]):
    """What the feed reported through its health hook, in order."""

    async def report(self, symbol: str, healthy: bool) -> None:
        self.append((symbol, healthy))


def served_book(venue: RecordedBinance, depth: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The venue's book at its cursor in integer units (price 2 decimals, size 8), from its decimal strings."""
    raw = venue.book(depth)
    return (
        [(to_units(p, 2), to_units(q, 8)) for p, q in raw["bids"]],
        [(to_units(p, 2), to_units(q, 8)) for p, q in raw["asks"]],
    )


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def stop(feed: CcxtFeed, task: asyncio.Task[None]) -> None:
    await feed.close()
    await asyncio.wait_for(task, 5)


def published_id(feed: CcxtFeed) -> int:
    snapshot = feed.snapshot("binance", SYMBOL)
    return 0 if snapshot is None else snapshot.last_update_id


def synced_at(consumer: PaperConsumer, update_id: int) -> bool:
    market = consumer.market
    return market is not None and market.sync.state == SYNCED and market.sync.last_update_id == update_id


# --- markets -------------------------------------------------------------------------------------
async def test_load_markets_gives_binance_btcusdt_exactly(server: ServerRunner) -> None:
    feed = make_feed(server)
    consumer = PaperConsumer(feed)
    task = asyncio.create_task(feed.run(consumer.publish))
    await until(lambda: consumer.of(Markets))
    await stop(feed, task)
    (markets,) = consumer.of(Markets)
    # exchangeInfo's tickSize 0.01, stepSize 0.00001 (sizes kept at baseAssetPrecision 8), minQty,
    # maxQty 9000, NOTIONAL 5 and CCXT's 0.1% fees, as integers: the hand-made instrument plus maxQty
    assert markets.instruments == [msgspec.structs.replace(BINANCE_BTCUSDT, max_size=9000 * 10**8)]
    assert feed.instruments() == markets.instruments
    assert isinstance(feed, Feed) and isinstance(feed, SnapshotSource)


async def test_unknown_symbol_stops_the_feed_with_an_operational_error(server: ServerRunner) -> None:
    feed = CcxtFeed("binance", "binance", ["ETH/USDT"], urls=server.urls(), options=SPOT_ONLY, rate_limit=False)
    with pytest.raises(CcxtError) as raised:
        await asyncio.wait_for(feed.run(PaperConsumer(feed).publish), 10)
    assert raised.value.code == "exchange_bad_symbol" and raised.value.group is ErrorGroup.OPERATIONAL
    assert feed.client is None  # connections closed on the way out


async def test_load_markets_retries_temporary_errors(server: ServerRunner, venue: RecordedBinance) -> None:
    venue.fail("exchangeInfo", 500, 429, MALFORMED)
    feed = make_feed(server)
    consumer = PaperConsumer(feed)
    task = asyncio.create_task(feed.run(consumer.publish))
    await until(lambda: consumer.of(Markets))
    await stop(feed, task)
    assert venue.requests.count("exchangeInfo") == 4


# --- polling -------------------------------------------------------------------------------------
async def test_polling_mirrors_the_served_book_and_delivers_new_trades(
    server: ServerRunner, venue: RecordedBinance
) -> None:
    feed = make_feed(server)
    consumer = PaperConsumer(feed)
    task = asyncio.create_task(feed.run(consumer.publish))
    try:
        await until(lambda: synced_at(consumer, venue.last_update_id))
        assert consumer.book(1000) == served_book(venue, 1000)
        first_id = venue.last_update_id
        await until(lambda: venue.requests.count("aggTrades") >= 2)
        assert consumer.of(TradeTick) == []  # trades from before the feed started are history

        traded_before = {t["t"] for t in venue.trades(10_000)}
        venue.advance(400)  # about 6 s of Binance: depth diffs and trades happen at the venue
        await until(lambda: synced_at(consumer, venue.last_update_id))
        assert venue.last_update_id > first_id
        assert consumer.book(1000) == served_book(venue, 1000)
        new_trades = [t for t in venue.trades(10_000) if t["t"] not in traded_before]
        await until(lambda: len(consumer.of(TradeTick)) == len(new_trades))
    finally:
        await stop(feed, task)
    ticks = consumer.of(TradeTick)
    assert [t.trade_id for t in ticks] == [str(t["t"]) for t in new_trades]
    assert [(t.price, t.size) for t in ticks] == [(to_units(t["p"], 2), to_units(t["q"], 8)) for t in new_trades]
    assert [t.aggressor for t in ticks] == ["sell" if t["m"] else "buy" for t in new_trades]
    # one snapshot, then id-chained deltas: consumption in the matching engine survives updates
    books = [m for m in consumer.messages if isinstance(m, (BookSnapshot, BookDelta))]
    assert isinstance(books[0], BookSnapshot) and books[0].last_update_id == first_id
    assert all(isinstance(m, BookDelta) for m in books[1:]) and len(books) >= 2
    assert all(b.first_update_id == a.last_update_id + 1 for a, b in zip(books, books[1:], strict=False))
    ticker = consumer.of(BookTicker)[-1]
    bids, asks = served_book(venue, 1)
    assert (ticker.bid, ticker.bid_size, ticker.ask, ticker.ask_size) == (*bids[0], *asks[0])
    assert feed.transport == {(SYMBOL, "book"): POLLING, (SYMBOL, "trades"): POLLING}


async def test_a_lost_delta_resyncs_from_the_feeds_snapshot(server: ServerRunner, venue: RecordedBinance) -> None:
    dropped: list[BookDelta] = []

    def drop_first_delta(message: Message) -> bool:
        if isinstance(message, BookDelta) and not dropped:
            dropped.append(message)
            return True
        return False

    feed = make_feed(server)
    consumer = PaperConsumer(feed, drop=drop_first_delta)
    task = asyncio.create_task(feed.run(consumer.publish))
    try:
        await until(lambda: synced_at(consumer, venue.last_update_id))
        for _ in range(3):  # the gap shows when the delta after the lost one arrives
            venue.advance(150)
            await until(lambda: published_id(feed) == venue.last_update_id)
        assert synced_at(consumer, venue.last_update_id)
    finally:
        await stop(feed, task)
    assert dropped and consumer.resyncs == 1 and consumer.market is not None and consumer.market.sync.gaps == 1
    assert consumer.book(1000) == served_book(venue, 1000)


# --- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "group", "code"),
    [
        (429, ErrorGroup.RATE_LIMITED, "exchange_rate_limited"),
        (418, ErrorGroup.RATE_LIMITED, "exchange_rate_limited"),  # Binance's IP ban
        (500, ErrorGroup.TEMPORARY, "exchange_operation_failed"),
        (503, ErrorGroup.TEMPORARY, "exchange_busy"),  # Binance -1008, a bare ExchangeError in CCXT
        (TIMEOUT, ErrorGroup.TEMPORARY, "exchange_timeout"),
        (400, ErrorGroup.OPERATIONAL, "exchange_bad_symbol"),  # Binance -1121 Invalid symbol
    ],
)
async def test_ccxt_errors_translate_by_what_the_caller_must_do(
    server: ServerRunner, venue: RecordedBinance, fault: int | str, group: ErrorGroup, code: str
) -> None:
    venue.timeout_delay = 1.0
    client = make_client("binance", urls=server.urls(), options=SPOT_ONLY, timeout=0.3, rate_limit=False)
    try:
        await client.load_markets()
        venue.fail("depth", fault)
        with pytest.raises(Exception) as raised:
            await client.fetch_order_book(SYMBOL, 5)
    finally:
        await client.close()
    error = translate(raised.value, exchange="binance", operation="fetch_order_book")
    assert (error.group, error.code) == (group, code)
    assert error.retryable == (group in (ErrorGroup.TEMPORARY, ErrorGroup.RATE_LIMITED))
    assert error.to_dict()["group"] == group.value and error.message.startswith("binance fetch_order_book: ")


def test_translate_refuses_what_is_not_a_venue_error() -> None:
    with pytest.raises(TypeError):
        translate(KeyError("bids"))  # a bug in our code must not be retried as if the venue failed


def test_backoff_grows_caps_and_waits_longer_when_rate_limited() -> None:
    backoff = Backoff(base=0.5, cap=4.0, rate_limit_factor=8.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    limited = CcxtError(ErrorGroup.RATE_LIMITED, "exchange_rate_limited", "429")
    assert backoff.next_delay(limited) == 4.0
    jittered = Backoff(base=1.0, cap=1.0, jitter=0.5)
    assert all(0.5 < jittered.next_delay() <= 1.0 for _ in range(50))


async def test_polling_retries_temporary_failures_and_reports_health(
    server: ServerRunner, venue: RecordedBinance
) -> None:
    health = HealthLog()
    feed = make_feed(server)
    feed.on_health = health.report
    consumer = PaperConsumer(feed)
    task = asyncio.create_task(feed.run(consumer.publish))
    try:
        await until(lambda: synced_at(consumer, venue.last_update_id))
        venue.fail("depth", 500, 429, 418, MALFORMED, 503)
        venue.advance(200)
        await until(lambda: synced_at(consumer, venue.last_update_id))
    finally:
        await stop(feed, task)
    assert health == [(SYMBOL, False), (SYMBOL, True)]  # one report per change, not one per failure
    assert consumer.book(1000) == served_book(venue, 1000)  # the malformed answer did not wipe the book
    assert not feed.errors and not feed.stopped


async def test_an_operational_error_stops_the_loop_and_stays_reported(
    server: ServerRunner, venue: RecordedBinance
) -> None:
    health = HealthLog()
    feed = make_feed(server)
    feed.on_health = health.report
    consumer = PaperConsumer(feed)
    task = asyncio.create_task(feed.run(consumer.publish))
    await until(lambda: synced_at(consumer, venue.last_update_id))
    venue.fail("depth", 400)  # the venue says the symbol is invalid: retrying cannot help
    await until(lambda: (SYMBOL, "book") in feed.stopped)
    polls = venue.requests.count("depth")
    await asyncio.sleep(0.1)
    assert venue.requests.count("depth") == polls  # the book loop gave up
    assert not task.done()  # the trade loop still runs
    await stop(feed, task)
    assert feed.stopped[(SYMBOL, "book")].code == "exchange_bad_symbol"
    assert health == [(SYMBOL, False)]


# --- WebSocket -----------------------------------------------------------------------------------
def last_depth_id(venue: RecordedBinance, end: int) -> int:
    return max(m["u"] for m in venue.messages[:end] if m["stream"].endswith("@depth@100ms"))


async def test_websocket_book_follows_the_recorded_diff_stream(server: ServerRunner, venue: RecordedBinance) -> None:
    venue.ws_until = 1500  # the venue pushes the first 1,500 recorded messages' depth diffs and trades
    feed = make_feed(server, websocket=True, depth=100)
    consumer = PaperConsumer(feed)
    task = asyncio.create_task(feed.run(consumer.publish))
    try:
        await until(lambda: synced_at(consumer, last_depth_id(venue, 1500)))
        streamed_trades = [m for m in venue.messages[:1500] if m["stream"].endswith("@trade")]
        await until(lambda: len(consumer.of(TradeTick)) == len(streamed_trades))
    finally:
        await stop(feed, task)
    # ccxt.pro synced the diffs onto the REST snapshot (Binance's procedure); the reference applies
    # the same recorded diffs to the same snapshot with plain decimal strings
    reference = RecordedBinance(venue.messages)
    reference.advance(1500 - reference.cursor)
    assert reference.last_update_id == last_depth_id(venue, 1500)
    assert consumer.book(1000) == served_book(reference, 100)
    assert [t.trade_id for t in consumer.of(TradeTick)] == [str(t["t"]) for t in streamed_trades]
    assert feed.transport == {(SYMBOL, "book"): WEBSOCKET, (SYMBOL, "trades"): WEBSOCKET}
    assert venue.requests.count("depth") == 1  # the one snapshot ccxt.pro syncs onto; no polling


async def test_websocket_failure_falls_back_to_polling_then_returns(
    server: ServerRunner, venue: RecordedBinance
) -> None:
    health = HealthLog()
    venue.ws_refuse = 503  # the stream endpoint refuses the upgrade
    venue.ws_until = 0  # once it accepts, it streams nothing: the book then comes from the snapshot only
    feed = make_feed(server, websocket=True, ws_retry=0.3)
    feed.on_health = health.report
    consumer = PaperConsumer(feed)
    task = asyncio.create_task(feed.run(consumer.publish))
    try:
        # polling between WebSocket retries (each retry shows `websocket` while it is tried, and on a
        # busy machine one may start before this test looks): the book synced, seen while polling
        await until(lambda: synced_at(consumer, venue.last_update_id) and health[-1:] == [(SYMBOL, True)]
                    and feed.transport[(SYMBOL, "book")] == POLLING)
        assert consumer.book(1000) == served_book(venue, 1000)
        retries = venue.requests.count("ws")
        await until(lambda: venue.requests.count("ws") >= retries + 2)  # WebSocket retried (and refused) again
        assert health == [(SYMBOL, False), (SYMBOL, True)]  # failed retries while polling works are not news
        assert feed.errors == {}
        venue.ws_refuse = 0
        await until(lambda: feed.transport[(SYMBOL, "book")] == WEBSOCKET and venue.ws_connections >= 1)
    finally:
        await stop(feed, task)



# --- the whole platform ----------------------------------------------------------------------------
async def test_platform_mirrors_binance_and_degrades_while_the_venue_fails(
    tmp_path: Path, server: ServerRunner, venue: RecordedBinance
) -> None:
    from coinwire.app import Platform
    from coinwire.config import load_settings
    from coinwire.messages import ExchangeStatusChanged

    exchange_config = {
        "name": "binance",
        "feed": "ccxt",
        "symbols": [SYMBOL],
        "poll_interval": 0.05,
        "ccxt_websocket": False,
        "ccxt_urls": server.urls(),
        "ccxt_options": SPOT_ONLY,
        "paper_funds": {"USDT": "1000"},
    }
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [exchange_config]})
    platform = Platform(settings)
    statuses: list[str] = []

    async def on_status(subject: str, message: Message) -> None:
        if isinstance(message, ExchangeStatusChanged):
            statuses.append(message.to_status)

    await platform.start()
    try:
        await platform.bus.subscribe("exchstatus.>", on_status)
        exchange = platform.gateway.venues["binance"]
        await until(lambda: exchange.status == "ready")
        market = exchange.market(SYMBOL)
        assert market is not None and market.instrument == msgspec.structs.replace(BINANCE_BTCUSDT, max_size=9000 * 10**8)
        book = market.engine.book
        assert (book.levels(Side.BUY), book.levels(Side.SELL)) == served_book(venue, 100)

        venue.fail("depth", 500, 503)  # two failed polls: about 1.5 s of backoff at the default 0.5 s base
        await until(lambda: exchange.status == "degraded")
        venue.advance(300)
        await until(lambda: exchange.status == "ready" and market.sync.last_update_id == venue.last_update_id)
        assert (book.levels(Side.BUY), book.levels(Side.SELL)) == served_book(venue, 100)
    finally:
        await platform.stop()
    assert statuses[-3:] == ["degraded", "ready", "stopped"]
