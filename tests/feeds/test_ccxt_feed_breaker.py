"""The CCXT feed's `feed:<exchange>` breaker, against the local recorded Binance server answering 503.

Book and trade polls share the exchange's breaker: when every poll fails it opens, no request
reaches the server while it is open, and once a probe succeeds the book syncs again.
"""

from __future__ import annotations

import asyncio
import time

from coinwire.core.breaker import BreakerState
from coinwire.services.breakers import Breakers
from tests.feeds.binance_server import RecordedBinance, ServerRunner
from tests.feeds.test_ccxt_feed import PaperConsumer, make_feed, server, stop, synced_at, until, venue  # noqa: F401

RESET = 0.6


def polls(venue: RecordedBinance) -> int:  # noqa: F811 - the fixture's name
    return sum(r in ("depth", "aggTrades", "trades") for r in venue.requests)


async def test_failing_polls_open_the_feed_breaker_which_stops_requests_until_a_probe_succeeds(
    server: ServerRunner, venue: RecordedBinance  # noqa: F811 - the fixtures
) -> None:
    breakers = Breakers(failures=3, reset_seconds=RESET, clock=time.monotonic)
    guard = breakers.get("feed:binance")
    feed = make_feed(server, breaker=guard)
    consumer = PaperConsumer(feed)
    task = asyncio.create_task(feed.run(consumer.publish))
    try:
        await until(lambda: synced_at(consumer, venue.last_update_id))
        venue.fail("depth", *[503] * 4)
        venue.fail("aggTrades", *[503] * 4)
        venue.fail("trades", *[503] * 4)
        await until(lambda: guard.breaker.state is BreakerState.OPEN)
        opened, seen = guard.breaker.opened_at, polls(venue)
        await asyncio.sleep(RESET / 2)
        assert guard.breaker.state_at(time.monotonic()) is BreakerState.OPEN and guard.breaker.opened_at == opened
        assert polls(venue) == seen  # nothing reached the exchange while open
        assert feed.errors  # the loops know they are failing (the exchange's symbols report unhealthy)
        venue.advance(200)
        await until(lambda: synced_at(consumer, venue.last_update_id) and guard.breaker.state is BreakerState.CLOSED, 15)
        assert not feed.stopped and breakers.reasons() == []
    finally:
        await stop(feed, task)
