"""A portfolio tracker over a real gateway whose demo book is loaded once and then only moved by its caller, on a driven clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coinwire.cache.memory import MemoryCache
from coinwire.services.gateway import Gateway
from coinwire.services.market_data import MarketData
from coinwire.services.portfolio_tracker import PortfolioTracker
from coinwire.store import Store
from coinwire.store.portfolio_candles import PortfolioCandleWriter
from tests.services.gateway_running import running_gateway

__all__ = ["Clock", "Rig", "portfolio_rig"]


@dataclass
class Clock:
    """The time every part of the rig reads (ns), moved by the caller."""

    now: int

    def __call__(self) -> int:
        return self.now


@dataclass
class Rig:
    gateway: Gateway
    tracker: PortfolioTracker
    writer: PortfolioCandleWriter
    store: Store
    clock: Clock


@asynccontextmanager
async def portfolio_rig(tmp_path: Path, url: str, schema: str | None, clock: Clock, exchange: dict[str, Any]) -> AsyncIterator[Rig]:
    """The gateway (its book held from the moment it is ready), the candle writer and the tracker, all on `clock`; the tracker is
    not started (the caller steps it). Prices in the display currency come through MarketData's pegs (USDT = USD)."""
    async with running_gateway(tmp_path, url, schema, exchange, clock=clock, hold_book=True) as gateway:
        market = MarketData(gateway.settings.market_data, gateway.bus, MemoryCache(), gateway.store, streamers=[])
        async with tracking(gateway, market, clock) as rig:
            yield rig


@asynccontextmanager
async def tracking(gateway: Gateway, market: MarketData, clock: Clock) -> AsyncIterator[Rig]:
    """The candle writer and a tracker (not started) over a running gateway and its market data, on `clock`."""
    writer = PortfolioCandleWriter(gateway.store)
    await writer.start()
    tracker = PortfolioTracker(gateway, market, gateway.store, writer, clock=clock)
    try:
        yield Rig(gateway, tracker, writer, gateway.store, clock)
    finally:
        await tracker.close()
        await writer.close()
