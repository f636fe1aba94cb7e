"""services/market_relay: the marketdata role's answers and liveness, a gateway apart asking and noticing silence (MemoryBus)."""

from __future__ import annotations

import asyncio
from typing import Any

from coinwire.bus import MemoryBus
from coinwire.feeds.demo import DemoFeed
from coinwire.messages import BookSnapshot, MarketDataAlive, MarketDataRequest, Markets, Message
from coinwire.services.market_relay import MarketAnswers, RemoteMarketData


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Seen:
    def __init__(self) -> None:
        self.got: list[Message] = []

    async def __call__(self, subject: str, message: Message) -> None:
        self.got.append(message)


async def _settle(bus: MemoryBus) -> None:
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)


async def test_a_request_is_answered_with_the_markets_and_books_at_most_once_a_second() -> None:
    bus, clock = MemoryBus("t28roles"), Clock()
    await bus.start()
    feed = DemoFeed("demo", seed=3, interval=0.05)
    answers = MarketAnswers(bus, {"demo": feed}, interval=3600, clock=clock)
    seen = Seen()
    await bus.subscribe(">", seen, types=frozenset({Markets, BookSnapshot}))
    await answers.start()
    await bus.publish("mdrequest.demo", MarketDataRequest("demo"))
    await bus.publish("mdrequest.other", MarketDataRequest("other"))  # no feed of that exchange here: not answered
    await _settle(bus)
    symbols = [i.symbol for i in feed.instruments()]
    assert [type(m).__name__ for m in seen.got] == ["Markets"] + ["BookSnapshot"] * len(symbols)
    assert [m.symbol for m in seen.got[1:]] == symbols  # type: ignore[union-attr]
    await bus.publish("mdrequest.demo", MarketDataRequest("demo", "BTC/USDT"))  # the same second: nothing again
    await _settle(bus)
    assert len(seen.got) == 1 + len(symbols)
    clock.now += 1.5
    await bus.publish("mdrequest.demo", MarketDataRequest("demo", "BTC/USDT", books=True))
    await _settle(bus)
    assert [type(m).__name__ for m in seen.got[1 + len(symbols):]] == ["Markets", "BookSnapshot"]
    await answers.close()
    await bus.close()


async def test_the_answers_say_their_feeds_run() -> None:
    bus = MemoryBus("t28roles")
    await bus.start()
    seen = Seen()
    await bus.subscribe("mdalive.>", seen)
    answers = MarketAnswers(bus, {"demo": DemoFeed("demo"), "demo2": DemoFeed("demo2")}, interval=0.02)
    await answers.start()
    await asyncio.sleep(0.1)
    await answers.close()
    exchanges = {m.exchange for m in seen.got if isinstance(m, MarketDataAlive)}
    assert exchanges == {"demo", "demo2"} and len(seen.got) >= 4
    await bus.close()


class Venue:
    def __init__(self, markets: dict[str, Any]) -> None:
        self.markets = markets


class Market:
    def __init__(self, synced: bool) -> None:
        self.synced = synced


async def test_a_gateway_apart_asks_for_what_it_lacks_and_marks_the_markets_stale_while_no_feed_says_it_runs() -> None:
    bus, clock = MemoryBus("t28roles"), Clock()
    await bus.start()
    requests = Seen()
    await bus.subscribe("mdrequest.>", requests)
    venues: dict[str, Venue] = {"demo": Venue({})}
    marks: list[tuple[str, bool]] = []

    async def hook(symbol: str, healthy: bool) -> None:
        marks.append((symbol, healthy))

    remote = RemoteMarketData(bus, lambda: venues, ["demo"], {"demo": hook}, silence=3.0, tick=3600, clock=clock)
    await remote.start()
    await remote.check()  # within the start's grace: no markets yet, so it asks for them
    await _settle(bus)
    assert requests.got == [MarketDataRequest("demo", None)]
    assert [w["code"] for w in remote.waits()] == ["market_data_missing"]  # nothing heard yet
    await bus.publish("mdalive.demo", MarketDataAlive("demo", 1))
    await _settle(bus)
    venues["demo"].markets.update({"BTC/USDT": Market(True), "ETH/USDT": Market(False)})
    clock.now += 1.1
    await remote.check()  # alive, markets in: it asks for the book that is not synced, only that one
    await _settle(bus)
    assert requests.got[1:] == [MarketDataRequest("demo", "ETH/USDT")] and remote.waits() == []
    clock.now += 3.5  # no MarketDataAlive for longer than the silence: every market stale, the wait says so
    await remote.check()
    assert sorted(marks) == [("BTC/USDT", False), ("ETH/USDT", False)]
    assert [w["code"] for w in remote.waits()] == ["market_data_missing"]
    await bus.publish("mdalive.demo", MarketDataAlive("demo", 2))  # a marketdata process again
    await _settle(bus)
    await remote.check()
    assert sorted(marks[2:]) == [("BTC/USDT", True), ("ETH/USDT", True)] and remote.waits() == []
    remote.snapshot("demo", "BTC/USDT")  # the gateway's snapshot source: asks over the bus, answers nothing itself
    await _settle(bus)
    assert requests.got[-1] == MarketDataRequest("demo", "BTC/USDT")
    await remote.close()
    await bus.close()
