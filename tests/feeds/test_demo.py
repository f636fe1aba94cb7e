"""The demo market: deterministic for a seed, realistic books, deltas that BookSync accepts."""

from __future__ import annotations

import asyncio

import pytest

from coinwire.core.book_sync import SYNCED, BookSync
from coinwire.core.orders import Side
from coinwire.feeds.base import Feed, SnapshotSource
from coinwire.feeds.demo import DemoFeed, DemoMarket
from coinwire.messages import BookDelta, BookSnapshot, BookTicker, Markets, Message, TradeTick

TICK_NS = 250_000_000


def run_ticks(market: DemoMarket, ticks: int) -> list[Message]:
    out: list[Message] = []
    for n in range(ticks):
        out.extend(market.step(n * TICK_NS))
    return out


def test_same_seed_same_messages_other_seed_other_market() -> None:
    first = run_ticks(DemoMarket(seed=11), 200)
    assert first == run_ticks(DemoMarket(seed=11), 200)
    assert first != run_ticks(DemoMarket(seed=12), 200)


def test_instruments_and_starting_prices() -> None:
    market = DemoMarket()
    instruments = {i.symbol: i for i in market.instruments()}
    assert list(instruments) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert [(i.price_decimals, i.size_decimals, i.tick, i.step) for i in instruments.values()] == [
        (2, 5, 1, 1),
        (2, 4, 1, 1),
        (2, 3, 1, 1),
    ]
    assert all(i.taker_fee == i.maker_fee == 100_000 and i.exchange == "demo" for i in instruments.values())
    for symbol, start in (("BTC/USDT", 60_000), ("ETH/USDT", 3_000), ("SOL/USDT", 150)):
        bid = market.book(symbol).best_bid()
        assert bid is not None and abs(bid / 100 - start) / start < 0.001


def test_books_are_deep_uncrossed_and_grow_away_from_the_mid() -> None:
    market = DemoMarket()
    for n in range(300):
        market.step(n * TICK_NS)
        for instrument in market.instruments():
            book = market.book(instrument.symbol)
            assert not book.is_crossed()
            assert book.depth(Side.BUY) >= 100 and book.depth(Side.SELL) >= 100
    for instrument in market.instruments():
        book = market.book(instrument.symbol)
        for side in (Side.BUY, Side.SELL):
            sizes = [size for _, size in book.levels(side)]
            assert sum(sizes[-20:]) > 2 * sum(sizes[:20])


def test_deltas_chain_without_gaps_and_tickers_match_the_synced_book() -> None:
    market = DemoMarket(seed=3)
    syncs = {}
    for instrument in market.instruments():
        sync = BookSync()
        sync.on_snapshot(market.snapshot(instrument.symbol))
        syncs[instrument.symbol] = sync
    applied = trades = tickers = 0
    taken: dict[tuple[Side, int], int] = {}
    for message in run_ticks(market, 1500):
        assert not isinstance(message, (BookSnapshot, Markets))
        sync = syncs[message.symbol]
        if isinstance(message, BookDelta):
            assert sync.on_delta(message)
            assert not sync.book.is_crossed()
            applied += 1
            taken.clear()
        elif isinstance(message, TradeTick):
            # the trade takes liquidity the consumer's book shows at its touch, after what
            # earlier trades of the same tick took
            side = Side.BUY if message.aggressor == "sell" else Side.SELL
            price, size = next(
                (p, s - taken.get((side, p), 0)) for p, s in sync.book.levels(side) if s > taken.get((side, p), 0)
            )
            assert message.price == price and 0 < message.size <= size
            taken[side, price] = taken.get((side, price), 0) + message.size
            trades += 1
        else:
            assert isinstance(message, BookTicker) and message.update_id == sync.last_update_id
            assert sync.book.levels(Side.BUY, 1)[0] == (message.bid, message.bid_size)
            assert sync.book.levels(Side.SELL, 1)[0] == (message.ask, message.ask_size)
            tickers += 1
    assert applied == tickers == 3 * 1500 and trades > 1000
    for symbol, sync in syncs.items():
        assert sync.state == SYNCED and sync.gaps == 0
        book = market.book(symbol)
        assert sync.book.bids == book.bids and sync.book.asks == book.asks


def test_deltas_change_a_handful_of_levels() -> None:
    deltas = [m for m in run_ticks(DemoMarket(), 500) if isinstance(m, BookDelta)]
    sizes = [len(d.bids) + len(d.asks) for d in deltas]
    assert min(sizes) >= 1 and sum(sizes) / len(sizes) < 30


def test_prices_wander_like_a_random_walk() -> None:
    market = DemoMarket(symbols=("BTC/USDT",))
    mids = []
    for n in range(2000):
        market.step(n * TICK_NS)
        mids.append(market.book("BTC/USDT").best_bid())
    assert len(set(mids)) > 500  # it moves
    assert max(mids) / min(mids) < 1.05  # but not absurdly within ~8 minutes


def test_a_premium_quotes_the_same_market_dearer_and_another_exchange_walks_its_own_way() -> None:
    plain, dear = DemoMarket("demo"), DemoMarket("demo2", premium_bp=80)
    for symbol, start in (("BTC/USDT", 60_000), ("SOL/USDT", 150)):
        mid = (plain.book(symbol).best_bid() + plain.book(symbol).best_ask()) / 2  # type: ignore[operator]
        premium = (dear.book(symbol).best_bid() + dear.book(symbol).best_ask()) / 2  # type: ignore[operator]
        assert mid == pytest.approx(start * 100, abs=1) and premium / mid == pytest.approx(1.008, abs=1e-4)
    sides = [[(m.symbol, m.aggressor) for m in run_ticks(market, 200) if isinstance(m, TradeTick)] for market in (plain, dear)]
    assert sides[0] != sides[1]  # each exchange's market takes its own random walk, not a copy of the other's
    below = DemoMarket("demo3", symbols=("BTC/USDT",), premium_bp=-100)
    assert below.book("BTC/USDT").best_ask() < 60_000 * 100 * 0.991  # type: ignore[operator]
    with pytest.raises(ValueError, match="between -5000 and 5000"):
        DemoMarket(premium_bp=6000)


def test_unknown_symbols_get_a_generic_profile() -> None:
    market = DemoMarket(symbols=("DOGE/USDT",), levels=120)
    run_ticks(market, 50)
    book = market.book("DOGE/USDT")
    assert book.depth(Side.BUY) == book.depth(Side.SELL) == 120 and not book.is_crossed()


async def test_demo_feed_publishes_markets_snapshots_then_ticks() -> None:
    feed = DemoFeed(interval=0.0, seed=5)
    assert isinstance(feed, Feed) and isinstance(feed, SnapshotSource)
    published: list[tuple[str, Message]] = []

    async def publish(subject: str, message: Message) -> None:
        published.append((subject, message))
        if sum(isinstance(m, BookTicker) for _, m in published) == 30:
            await feed.close()

    await asyncio.wait_for(feed.run(publish), timeout=10)
    assert published[0] == ("markets.demo", Markets("demo", feed.instruments()))
    snapshots = [(s, m) for s, m in published[1:4]]
    assert [s for s, _ in snapshots] == ["book.demo.usdt.btc", "book.demo.usdt.eth", "book.demo.usdt.sol"]
    assert all(isinstance(m, BookSnapshot) and len(m.bids) == 150 for _, m in snapshots)
    subjects = {s.split(".")[0] for s, _ in published}
    assert subjects == {"markets", "book", "trade", "ticker"}
    current = feed.snapshot("demo", "ETH/USDT")
    assert current is not None and current.last_update_id == feed.market.snapshot("ETH/USDT").last_update_id
    assert feed.snapshot("demo", "XRP/USDT") is None and feed.snapshot("binance", "ETH/USDT") is None


def test_demo_market_refuses_a_book_without_depth() -> None:
    with pytest.raises(ValueError):
        DemoMarket(levels=1)
