"""A demo market on an epoch: every process that starts a feed with the same settings watches one market."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from coinwire.app import build_feed
from coinwire.config import MAX_CATCH_UP, ConfigError, load_settings
from coinwire.feeds.demo import DemoFeed, DemoMarket
from coinwire.messages import BookSnapshot, Message, encode

INTERVAL_NS = 250_000_000


def test_two_markets_stepped_to_the_same_tick_agree_bit_for_bit() -> None:
    one, other = DemoMarket(seed=3), DemoMarket(seed=3)
    for n in range(1, 401):
        one.step(n * INTERVAL_NS)
    for n in range(1, 401):  # the other is looked at on the way (snapshots and candles read, never change, a market)
        other.step(n * INTERVAL_NS)
        if n % 100 == 0:
            other.snapshot("BTC/USDT")
            other.candles("ETH/USDT", 0, 120)
    assert [encode(one.snapshot(s.symbol)) for s in one.instruments()] == [
        encode(other.snapshot(s.symbol)) for s in other.instruments()]
    assert [encode(m) for m in one.step(401 * INTERVAL_NS)] == [encode(m) for m in other.step(401 * INTERVAL_NS)]


async def _watch(feed: DemoFeed, until: Callable[[], int | None]) -> list[Message]:
    """What the feed publishes up to and including the tick stamped `until()` (unix ns; None: not known yet)."""
    seen: list[Message] = []

    async def publish(subject: str, message: Message) -> None:
        seen.append(message)
        limit = until()
        if limit is not None and not isinstance(message, BookSnapshot) and getattr(message, "ts", 0) >= limit:
            await feed.close()

    await asyncio.wait_for(feed.run(publish), timeout=60)
    return seen


async def test_a_feed_started_later_catches_up_silently_and_publishes_what_the_first_one_does() -> None:
    interval = 0.02
    epoch = int(time.time()) - 3  # ~150 ticks already due when the first feed starts
    settings = {"exchange": "demo", "symbols": ("BTC/USDT", "ETH/USDT"), "seed": 9, "interval": interval, "epoch": epoch}
    first, later = DemoFeed(**settings), DemoFeed(**settings)  # type: ignore[arg-type]
    # the later feed watches a second of live ticks after the tick it caught up to, whenever that is on a busy
    # machine; the first watches as far
    limit: list[int] = []

    def later_until() -> int | None:
        if not limit and later.market.ticks:
            limit.append(later.tick_time(later.market.ticks) + 1_000_000_000)
        return limit[0] if limit else None

    watching = asyncio.create_task(_watch(first, lambda: limit[0] if limit else None))
    await asyncio.sleep(1.0)  # the later feed starts a second after the first: more ticks to catch up with
    late_seen = await _watch(later, later_until)
    seen = await watching
    until = limit[0]
    books = [m for m in late_seen if isinstance(m, BookSnapshot)]
    assert len(books) == 2
    start = books[0].ts  # the later feed's books are those of the tick it caught up to, stamped with its time
    n = (start - epoch * 1_000_000_000) // 20_000_000
    assert start == epoch * 1_000_000_000 + n * 20_000_000 and n > 150
    ticks = [m for m in late_seen[3:] if m.ts <= until]  # type: ignore[attr-defined]
    assert ticks and ticks == [m for m in seen[3:] if start < m.ts <= until]  # type: ignore[attr-defined]
    assert {m.ts % 20_000_000 for m in seen[3:]} == {0}  # type: ignore[attr-defined]  # every tick on its due time exactly
    market = DemoMarket("demo", ("BTC/USDT", "ETH/USDT"), seed=9, tick_seconds=interval)
    for k in range(1, n + 1):
        market.step(epoch * 1_000_000_000 + k * 20_000_000)
    assert books == [market.snapshot(s, start) for s in ("BTC/USDT", "ETH/USDT")]


def test_a_stale_epoch_is_refused_and_a_demo_epoch_only_fits_a_demo_feed() -> None:
    hours = MAX_CATCH_UP * 0.25 / 3600  # one market at 4 ticks a second
    DemoFeed(symbols=("BTC/USDT",), epoch=int(time.time() - (hours - 0.1) * 3600))
    stale = int(time.time() - (hours + 0.1) * 3600)
    with pytest.raises(ValueError, match=r"catching up would step its 1 market\(s\)"):
        DemoFeed(symbols=("BTC/USDT",), epoch=stale)
    # the settings load (commands that run no feed keep working); building the feed refuses it, for the demo's three markets
    settings = load_settings(env={}, overrides={"exchanges": [{"name": "a", "demo_epoch": stale}]})
    with pytest.raises(ConfigError, match=r"exchange a: demo_epoch \d+ is [\d,]+ ticks ago; catching up would step its 3 market"):
        build_feed(settings.exchanges[0])
    with pytest.raises(ValueError, match="interval above 0"):
        DemoFeed(interval=0, epoch=int(time.time()))
    with pytest.raises(ConfigError, match="demo_epoch is unix seconds >= 0 for a demo feed"):
        load_settings(env={}, overrides={"exchanges": [{"name": "a", "feed": "replay", "replay_paths": ["x"], "demo_epoch": 1}]})
    with pytest.raises(ConfigError, match="demo_epoch is unix seconds >= 0"):
        load_settings(env={}, overrides={"exchanges": [{"name": "a", "demo_epoch": -1}]})
