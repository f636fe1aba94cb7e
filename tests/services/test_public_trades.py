"""PublicTrades: public trades on a real bus (in process, and NATS) kept newest first in a bounded ring per market."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from coinwire.bus import MemoryBus
from coinwire.bus.base import Bus
from coinwire.bus.nats import NatsBus
from coinwire.core.errors import InvalidInput, NotFound
from coinwire.core.instruments import Instrument
from coinwire.messages import Markets, TradeTick, subject
from coinwire.services.public_trades import PublicTrades
from tests.conftest import NATS_URL, require_service

BTC = Instrument(exchange="demo", symbol="BTC/USDT", base="BTC", quote="USDT", price_decimals=2, size_decimals=5)
ETH = Instrument(exchange="demo", symbol="ETH/USDT", base="ETH", quote="USDT", price_decimals=2, size_decimals=4)
T0 = 1_723_200_000 * 10**9


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.services)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "nats":
        url = urlsplit(NATS_URL)
        require_service("NATS", url.hostname or "127.0.0.1", url.port or 4222)
    namespace = f"t{uuid.uuid4().hex[:16]}"
    made: Bus = MemoryBus(namespace) if request.param == "memory" else NatsBus(NATS_URL, namespace)
    await made.start()
    yield made
    if isinstance(made, NatsBus):
        await made.delete_stream()
    await made.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Buses deliver from their own tasks (or over the network): wait for what was published to arrive."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


def trade(n: int, inst: Instrument = BTC, side: str = "buy") -> TradeTick:
    return TradeTick(inst.exchange, inst.symbol, T0 + n * 10**6, str(n), 6_100_050 + n, 1234 + n, side)


async def publish(bus: Bus, *messages: TradeTick | Markets) -> None:
    for m in messages:
        kind, name = ("markets", None) if isinstance(m, Markets) else ("trade", m.symbol)
        await bus.publish(subject(kind, m.exchange, name), m)


async def test_the_ring_keeps_the_newest_trades_newest_first(bus: Bus) -> None:
    trades = PublicTrades(bus, size=5)
    heard: list[tuple[str, dict[str, Any]]] = []

    async def listener(subject_: str, view: dict[str, Any]) -> None:
        heard.append((subject_, view))

    trades.listeners.append(listener)
    await trades.start()
    await publish(bus, trade(0))  # before the feed announced its markets: no precision, dropped
    await until(lambda: trades.unknown == 1)
    await publish(bus, Markets("demo", [BTC, ETH]))
    await until(lambda: ("demo", "ETH/USDT") in trades.rings)
    assert trades.recent("demo", "ETH/USDT") == []  # an announced market without trades yet
    await publish(bus, *(trade(n, side="sell" if n % 2 else "buy") for n in range(1, 8)), trade(9, ETH))
    await until(lambda: len(heard) == 8)
    newest = trades.recent("demo", "BTC_USDT", limit=3)
    assert newest == [
        {"exchange": "demo", "symbol": "BTC/USDT", "pair": "BTC_USDT", "id": "7", "time": (T0 + 7 * 10**6) / 1e9,
         "price": "61000.57", "amount": "0.01241", "side": "sell"},
        {"exchange": "demo", "symbol": "BTC/USDT", "pair": "BTC_USDT", "id": "6", "time": (T0 + 6 * 10**6) / 1e9,
         "price": "61000.56", "amount": "0.0124", "side": "buy"},
        {"exchange": "demo", "symbol": "BTC/USDT", "pair": "BTC_USDT", "id": "5", "time": (T0 + 5 * 10**6) / 1e9,
         "price": "61000.55", "amount": "0.01239", "side": "sell"},
    ]
    assert [t["id"] for t in trades.recent("demo", "BTC/USDT", limit=5)] == ["7", "6", "5", "4", "3"]  # bounded: 1, 2 gone
    assert [t["id"] for t in trades.recent("demo", "ETH/USDT")] == ["9"]
    assert heard[0][0] == "trade.demo.usdt.btc" and heard[-1] == ("trade.demo.usdt.eth", trades.recent("demo", "ETH/USDT")[0])
    await trades.close()


async def test_bad_limits_and_unknown_markets_are_refused(bus: Bus) -> None:
    trades = PublicTrades(bus, size=5)
    await trades.start()
    await publish(bus, Markets("demo", [BTC]))
    await until(lambda: bool(trades.rings))
    for limit in (0, 6, -1, True, "3"):
        with pytest.raises(InvalidInput) as bad:
            trades.recent("demo", "BTC/USDT", limit=limit)  # type: ignore[arg-type]
        assert bad.value.code == "invalid_limit"
    with pytest.raises(InvalidInput) as malformed:
        trades.recent("demo", "BTC-USDT")
    assert malformed.value.code == "invalid_symbol"
    for exchange, symbol, code in (("nope", "BTC/USDT", "unknown_exchange"), ("demo", "DOGE/USDT", "unknown_symbol")):
        with pytest.raises(NotFound) as missing:
            trades.recent(exchange, symbol)
        assert missing.value.code == code
    await trades.close()
