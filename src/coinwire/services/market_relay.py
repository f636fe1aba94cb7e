"""Market data between processes: the marketdata role answers requests and says it is alive; a gateway apart from it asks.

A feed announces its markets (`Markets`) and first books once, when it starts, and in one
process the gateway asks the feed itself for a fresh book when one loses its sync (the feed is its
`SnapshotSource`). When the feeds run in a `marketdata` process, both go over the bus:

- `MarketAnswers` (marketdata role) publishes `MarketDataAlive` for each running feed once a
  second, and answers a `MarketDataRequest` by publishing the feed's `Markets` and current books
  on their usual subjects (every listener gets them; a book snapshot is the whole book, so a
  listener whose book is synced just loads it again).
- `RemoteMarketData` (a gateway without the marketdata role) is the gateway's snapshot source:
  it asks for markets while a venue has none and for the books that are not synced, at most once
  a second each, and marks an exchange's markets stale (orders refused, the exchange `degraded`)
  while no `MarketDataAlive` came for `silence` seconds; `waits()` says so for /readyz.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog

from coinwire.bus.base import Bus, Subscription
from coinwire.feeds.base import subject_for
from coinwire.messages import MarketDataAlive, MarketDataRequest, Markets, Message, subject
from coinwire.services.listening import stop_listening

__all__ = ["MarketAnswers", "RemoteMarketData", "ALIVE_INTERVAL", "SILENCE"]

log = structlog.get_logger("coinwire.market_relay")

ALIVE_INTERVAL = 1.0  # seconds between two MarketDataAlive of one feed
SILENCE = 3.0  # seconds without MarketDataAlive before a gateway counts the exchange's market data as gone
_ASK_EVERY = 1.0  # seconds between two requests for one exchange's markets or one book (and two answers to them)


class _Feed(Protocol):
    def instruments(self) -> list[Any]: ...

    def snapshot(self, exchange: str, symbol: str) -> Any: ...


class MarketAnswers:
    """The marketdata role's side: `MarketDataAlive` per running feed, and `MarketDataRequest`s answered."""

    def __init__(self, bus: Bus, feeds: Mapping[str, _Feed], *, interval: float = ALIVE_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.feeds = feeds  # exchange name -> its feed (the feed's SnapshotSource too)
        self.interval = interval
        self.clock = clock
        self.answered = 0  # requests answered (markets or books published)
        self._last: dict[tuple[str, str | None], float] = {}  # (exchange, symbol or None for markets) -> last answered
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subs.append(await self.bus.subscribe("mdrequest.>", self._on_request, types=frozenset({MarketDataRequest})))
        self._task = asyncio.create_task(self._alive_loop(), name="marketdata-alive")

    async def close(self) -> None:
        await stop_listening(self._subs, self._task)
        self._task = None

    async def _alive_loop(self) -> None:
        while True:
            for exchange in self.feeds:
                try:
                    await self.bus.publish(subject("mdalive", exchange), MarketDataAlive(exchange, time.time_ns()))
                except Exception:  # noqa: BLE001 - the bus is down: said by /readyz; the next turn tries again
                    log.debug("marketdata alive not sent", exchange=exchange)
            await asyncio.sleep(self.interval)

    async def _on_request(self, subj: str, message: Message) -> None:
        if not isinstance(message, MarketDataRequest) or message.exchange not in self.feeds:
            return
        await self.answer(message)

    async def answer(self, request: MarketDataRequest) -> int:
        """Publish the exchange's markets and the books asked for (each at most once per `_ASK_EVERY`); returns messages sent."""
        feed = self.feeds[request.exchange]
        instruments = feed.instruments()
        if not instruments:  # the feed has not loaded its markets yet: its own first Markets message will come
            return 0
        now, sent = self.clock(), 0
        if self._due((request.exchange, None), now):
            await self.bus.publish(subject("markets", request.exchange), Markets(request.exchange, instruments))
            sent += 1
        if request.books:
            symbols = [request.market] if request.market else [i.symbol for i in instruments]
            for symbol in symbols:
                if not self._due((request.exchange, symbol), now):
                    continue
                snapshot = feed.snapshot(request.exchange, symbol)
                if snapshot is not None:
                    await self.bus.publish(subject_for(snapshot), snapshot)
                    sent += 1
        self.answered += sent > 0
        return sent

    def _due(self, key: tuple[str, str | None], now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < _ASK_EVERY:
            return False
        self._last[key] = now
        return True


HealthHook = Callable[[str, bool], Awaitable[object]]


class RemoteMarketData:
    """A gateway's market data when its feeds run in another process: the snapshot source, the requests, the silence."""

    def __init__(self, bus: Bus, venues: Callable[[], Mapping[str, Any]], exchanges: list[str],
                 hooks: Mapping[str, HealthHook], *, silence: float = SILENCE, tick: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.venues = venues
        self.exchanges = exchanges
        self.hooks = hooks  # exchange -> marks a symbol stale (False) or flowing again (True): Platform._health_hook
        self.silence = silence
        self.tick = tick
        self.clock = clock
        self.started_at = clock()
        self.alive_at: dict[str, float] = {}  # exchange -> when its last MarketDataAlive came
        self.silent: set[str] = set()  # exchanges whose market data is counted as gone (their markets marked stale)
        self._asked: dict[tuple[str, str | None], float] = {}
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.started_at = self.clock()
        self._subs.append(await self.bus.subscribe("mdalive.>", self._on_alive, types=frozenset({MarketDataAlive})))
        self._task = asyncio.create_task(self._loop(), name="remote-marketdata")

    async def close(self) -> None:
        await stop_listening(self._subs, self._task)
        self._task = None

    def snapshot(self, exchange: str, symbol: str) -> None:
        """The SnapshotSource the gateway calls for a book that lost its sync: asks over the bus; the book comes later."""
        self._ask(exchange, symbol)

    async def _on_alive(self, subj: str, message: Message) -> None:
        if isinstance(message, MarketDataAlive) and message.exchange in self.exchanges:
            self.alive_at[message.exchange] = self.clock()

    async def _loop(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # one turn's failure (the bus down) must not end the watch
                log.exception("remote market data check failed")
            await asyncio.sleep(self.tick)

    async def check(self) -> None:
        """One turn: silence marked and lifted, markets and unsynced books asked for."""
        now, venues = self.clock(), self.venues()
        for exchange in self.exchanges:
            venue = venues.get(exchange)
            if venue is None:
                continue
            alive = self.alive_at.get(exchange)  # never heard of: gone once a start's grace of `silence` has passed
            gone = now - (self.started_at if alive is None else alive) > self.silence
            if gone and exchange not in self.silent:
                self.silent.add(exchange)
                log.warning("no market data from the marketdata role", exchange=exchange)
                for symbol in list(venue.markets):
                    await self.hooks[exchange](symbol, False)
            elif not gone:
                if exchange in self.silent:
                    self.silent.discard(exchange)
                    log.info("market data from the marketdata role again", exchange=exchange)
                    for symbol in list(venue.markets):
                        await self.hooks[exchange](symbol, True)
                if not venue.markets:
                    self._ask(exchange, None)
                else:
                    for symbol, market in list(venue.markets.items()):
                        if not market.synced:
                            self._ask(exchange, symbol)

    def _ask(self, exchange: str, symbol: str | None) -> None:
        now = self.clock()
        last = self._asked.get((exchange, symbol))
        if last is not None and now - last < _ASK_EVERY:
            return
        self._asked[(exchange, symbol)] = now
        request = MarketDataRequest(exchange, symbol)
        task = asyncio.get_running_loop().create_task(self.bus.publish(subject("mdrequest", exchange), request))
        task.add_done_callback(_quiet)

    def waits(self) -> list[dict[str, Any]]:
        """What the gateway waits for, per exchange: market data from the marketdata role (gone, or its markets not yet in)."""
        out: list[dict[str, Any]] = []
        venues = self.venues()
        for exchange in self.exchanges:
            venue = venues.get(exchange)
            if exchange in self.silent or exchange not in self.alive_at:
                out.append({"code": "market_data_missing", "exchange": exchange,
                            "message": f"no market data for exchange {exchange} from a marketdata process for more than "
                                       f"{self.silence:g} s: start one (coinwire serve --roles marketdata)"})
            elif venue is not None and not venue.markets:
                out.append({"code": "markets_missing", "exchange": exchange,
                            "message": f"exchange {exchange} has no markets yet: asked the marketdata process for them"})
        return out


def _quiet(task: asyncio.Task[Any]) -> None:
    """A request the bus could not send is asked again on the next turn; the failure is only logged."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("market data request not sent", error=str(task.exception()))
