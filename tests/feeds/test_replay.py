"""Binance capture parsing and replay: the synced book matches the recorded bookTicker exactly."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import pytest

from coinwire.core.book_sync import RESYNC, SYNCED, BookSync
from coinwire.core.errors import InvalidInput
from coinwire.feeds.base import Feed, SnapshotSource
from coinwire.feeds.replay import ReplayFeed
from coinwire.history.binance_capture import (
    BINANCE_BTCUSDT,
    BINANCE_USDM_BTCUSDT,
    CaptureParser,
    decimal_parser,
    iter_capture,
)
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, Markets, Message, TradeTick
from tests.conftest import shared_data


def spot_files() -> list[Path]:
    return sorted(shared_data("binance-spot-l2").glob("*.gz"))


class TickerCheck:
    """Feeds a BookSync and compares its top of book with every bookTicker of the same update id.

    A bookTicker usually arrives before the 100 ms diff that ends at its id, so tickers wait
    until a diff with that `u` is applied (or compare at once if the book is already there).
    """

    def __init__(self, sync: BookSync) -> None:
        self.sync = sync
        self.matches = 0
        self.mismatches: list[tuple[BookTicker, tuple[int, int, int, int]]] = []
        self.crossed = 0
        self.applied = 0
        self._waiting: dict[int, BookTicker] = {}

    def feed(self, message: Message) -> None:
        sync = self.sync
        if isinstance(message, BookSnapshot):
            sync.on_snapshot(message)
        elif isinstance(message, BookDelta):
            if sync.on_delta(message):
                self.applied += 1
                self.crossed += sync.book.is_crossed()
                ticker = self._waiting.pop(message.last_update_id, None)
                if ticker is not None:
                    self._compare(ticker)
                self._waiting = {u: t for u, t in self._waiting.items() if u > message.last_update_id}
        elif isinstance(message, BookTicker):
            if sync.state == SYNCED and message.update_id == sync.last_update_id:
                self._compare(message)
            elif message.update_id > sync.last_update_id:
                self._waiting[message.update_id] = message

    def _compare(self, ticker: BookTicker) -> None:
        book = self.sync.book
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is not None and ask is not None
        top = (bid, book.bids[bid], ask, book.asks[ask])
        if top == (ticker.bid, ticker.bid_size, ticker.ask, ticker.ask_size):
            self.matches += 1
        else:
            self.mismatches.append((ticker, top))


FIRST_FILE_LINES = 41249  # btcusdt_20240808.gz; every line is a message coinwire models


@pytest.fixture(scope="module")
def spot_capture() -> list[tuple[int, Message]]:
    return list(iter_capture(spot_files(), BINANCE_BTCUSDT))


@pytest.fixture(scope="module")
def first_file(spot_capture: list[tuple[int, Message]]) -> list[tuple[int, Message]]:
    """The messages of the first spot file (the second starts at midnight UTC)."""
    midnight = 1723161600 * 10**9
    assert spot_capture[FIRST_FILE_LINES - 1][0] < midnight <= spot_capture[FIRST_FILE_LINES][0]
    return spot_capture[:FIRST_FILE_LINES]


# --- the recorded capture -------------------------------------------------------------------
def test_both_spot_files_replay_to_the_recorded_top_of_book(spot_capture: list[tuple[int, Message]]) -> None:
    check = TickerCheck(BookSync())
    for _, message in spot_capture:
        check.feed(message)
    assert check.sync.state == SYNCED and check.sync.gaps == 0
    assert check.applied > 6000  # ids chain across the two files
    assert check.crossed == 0
    assert check.mismatches == []
    assert check.matches > 1000


def test_capture_parses_every_kind_exactly(spot_capture: list[tuple[int, Message]]) -> None:
    kinds = {type(m) for _, m in spot_capture}
    assert kinds == {BookSnapshot, BookDelta, TradeTick, BookTicker}
    receive_times = [ts for ts, _ in spot_capture]
    assert receive_times == sorted(receive_times)
    snapshot = next(m for _, m in spot_capture if isinstance(m, BookSnapshot))
    assert snapshot.last_update_id == 50093239218 and len(snapshot.bids) == len(snapshot.asks) == 1000
    assert snapshot.bids[0] == (6183763, 378826000)  # "61837.63000000", "3.78826000"
    first = spot_capture[0][1]
    assert isinstance(first, BookDelta) and first.ts == 1723161255208 * 1_000_000
    assert (first.first_update_id, first.last_update_id, first.prev_update_id) == (50093239189, 50093239202, 0)
    assert first.asks[0] == (6183764, 154698000)
    trade = next(m for _, m in spot_capture if isinstance(m, TradeTick))
    assert (trade.trade_id, trade.price, trade.size, trade.aggressor) == ("3735683259", 6183763, 2000000, "sell")
    assert {m.aggressor for _, m in spot_capture if isinstance(m, TradeTick)} == {"buy", "sell"}


def test_a_dropped_diff_is_detected_and_a_replay_snapshot_resyncs() -> None:
    feed = ReplayFeed(spot_files(), BINANCE_BTCUSDT, speed=None)
    check = TickerCheck(BookSync())
    deltas = 0
    matches_before_gap = -1
    for _, message in feed.messages():
        if isinstance(message, BookDelta):
            deltas += 1
            if deltas == 2000:
                continue  # lost on the way
        check.feed(message)
        if check.sync.needs_snapshot and matches_before_gap < 0 and deltas > 2000:
            assert check.sync.state == RESYNC and check.sync.gaps == 1
            matches_before_gap = check.matches
            snapshot = feed.snapshot("binance", "BTC/USDT")
            assert snapshot is not None and snapshot.last_update_id >= check.sync.last_update_id
            check.sync.on_snapshot(snapshot)
            assert check.sync.state == SYNCED
    assert matches_before_gap > 0
    assert check.sync.gaps == 1 and check.sync.state == SYNCED
    assert check.mismatches == [] and check.crossed == 0
    assert check.matches - matches_before_gap > 500


def test_replay_snapshot_is_unknown_before_the_recorded_snapshot() -> None:
    feed = ReplayFeed(spot_files()[0], BINANCE_BTCUSDT, speed=None)
    messages = feed.messages()
    _, first = next(messages)
    assert isinstance(first, BookDelta)
    assert feed.snapshot("binance", "BTC/USDT") is None
    for _, message in messages:
        if isinstance(message, BookSnapshot):
            break
    snapshot = feed.snapshot("binance", "BTC/USDT")
    assert snapshot is not None and snapshot.last_update_id >= message.last_update_id  # + buffered diffs
    assert feed.snapshot("binance", "ETH/USDT") is None


def test_usdm_futures_capture_syncs_on_pu() -> None:
    files = sorted(shared_data("binance-usdm-l2").glob("*.gz"))
    check = TickerCheck(BookSync())
    chained = 0
    for _, message in iter_capture(files, BINANCE_USDM_BTCUSDT):
        if isinstance(message, BookDelta):
            assert message.prev_update_id > 0
            chained += 1
        check.feed(message)
    assert check.sync.gaps == 0 and check.sync.state == SYNCED
    assert check.applied > 6000 and chained == check.applied + 6  # 6 buffered diffs predate the snapshot
    assert check.crossed == 0 and check.mismatches == []
    assert check.matches > 500


# --- the feed on the event loop ---------------------------------------------------------------
async def test_replay_feed_publishes_markets_then_the_capture(first_file: list[tuple[int, Message]]) -> None:
    path = spot_files()[0]
    feed = ReplayFeed(path, BINANCE_BTCUSDT, speed=None)
    assert isinstance(feed, Feed) and isinstance(feed, SnapshotSource)
    published: list[tuple[str, Message]] = []

    async def publish(subject: str, message: Message) -> None:
        published.append((subject, message))

    await feed.run(publish)
    assert published[0] == ("markets.binance", Markets("binance", [BINANCE_BTCUSDT]))
    assert [m for _, m in published[1:]] == [m for _, m in first_file]
    subjects = {type(m): s for s, m in published[1:]}
    assert subjects == {
        BookDelta: "book.binance.usdt.btc",
        BookSnapshot: "book.binance.usdt.btc",
        TradeTick: "trade.binance.usdt.btc",
        BookTicker: "ticker.binance.usdt.btc",
    }
    await feed.close()


async def test_replay_paces_by_receive_time(first_file: list[tuple[int, Message]]) -> None:
    path = spot_files()[0]
    times = [ts for ts, _ in first_file]
    span = (times[-1] - times[0]) / 1e9
    speed = span / 0.3  # the whole file in about 0.3 s
    feed = ReplayFeed(path, BINANCE_BTCUSDT, speed=speed)
    count = 0

    async def publish(subject: str, message: Message) -> None:
        nonlocal count
        count += 1

    loop = asyncio.get_running_loop()
    started = loop.time()
    await feed.run(publish)
    assert loop.time() - started >= 0.9 * span / speed
    assert count == len(times) + 1


async def test_looping_replay_keeps_time_moving_forward(first_file: list[tuple[int, Message]]) -> None:
    feed = ReplayFeed(spot_files()[0], BINANCE_BTCUSDT, speed=None, loop=True)
    per_pass = sum(isinstance(m, BookDelta) for _, m in first_file)
    deltas: list[BookDelta] = []
    snapshots = 0

    async def publish(subject: str, message: Message) -> None:
        nonlocal snapshots
        if isinstance(message, BookDelta):
            deltas.append(message)
        snapshots += isinstance(message, BookSnapshot)
        if snapshots == 2 and len(deltas) > per_pass + 100:
            await feed.close()

    await asyncio.wait_for(feed.run(publish), timeout=60)
    assert snapshots == 2
    assert min(d.ts for d in deltas[per_pass:]) > max(d.ts for d in deltas[:per_pass])
    assert deltas[per_pass].first_update_id == deltas[0].first_update_id  # ids repeat; the snapshot resyncs


# --- the parser on its own --------------------------------------------------------------------
def test_decimal_parser_is_exact_and_refuses_hidden_precision() -> None:
    price = decimal_parser(2, "price")
    assert price("61737.63000000") == 6173763
    assert price("0.5") == 50 and price("7") == 700 and price("0.00000000") == 0
    assert decimal_parser(0, "size")("12.000") == 12 and decimal_parser(3, "size")("12") == 12000
    with pytest.raises(InvalidInput) as info:
        price("61737.63100000")
    assert info.value.code == "too_precise"
    for bad in ("", ".", "1.2.3", "-1.00", "1_000", " 1", "1e5", "١٢"):
        with pytest.raises(InvalidInput) as info:
            price(bad)
        assert info.value.code == "invalid_number", bad


def test_parser_handles_other_key_orders_and_skips_unknown_streams() -> None:
    parser = CaptureParser(BINANCE_BTCUSDT)
    reordered = b'{"data":{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"100.01","q":"0.5","T":2,"m":false},"stream":"btcusdt@trade"}'
    trade = parser.parse(reordered, 99)
    assert trade == TradeTick("binance", "BTC/USDT", 2_000_000, "7", 10001, 50000000, "buy")
    ticker = parser.parse(b'{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":"1.00","B":"2","a":"1.01","A":"3"}}', 42)
    assert ticker == BookTicker("binance", "BTC/USDT", 42, 5, 100, 200000000, 101, 300000000)
    assert parser.parse(b'{"stream":"btcusdt@kline_1m","data":{}}', 1) is None
    with pytest.raises(InvalidInput) as info:
        parser.parse(b'{"stream":"ethusdt@trade","data":{}}', 1)
    assert info.value.code == "symbol_mismatch"


def test_malformed_lines_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as out:
        out.write(b'1 {"lastUpdateId":3,"bids":[["1.00","1"]],"asks":[["2.00","1"]]}\n\n2 {"stream":"btcusdt@trade",\n')
    messages = iter_capture(path, BINANCE_BTCUSDT)
    assert next(messages) == (1, BookSnapshot("binance", "BTC/USDT", 1, 3, [(100, 100000000)], [(200, 100000000)]))
    with pytest.raises(InvalidInput) as info:
        next(messages)
    assert info.value.code == "invalid_capture" and info.value.data["line"] == 3 and "bad.gz:3" in info.value.message
