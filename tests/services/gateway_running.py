"""A real gateway for service tests and benchmarks: a store at a URL, the in-process bus, the demo feed ticking until its
exchange is ready (and on, unless the caller holds the book from there)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from coinwire.app import build_feed
from coinwire.bus.memory import MemoryBus
from coinwire.config import load_settings
from coinwire.services.gateway import Gateway
from coinwire.store import Store

__all__ = ["running_gateway"]


@asynccontextmanager
async def running_gateway(
    tmp_path: Path, url: str, schema: str | None, exchange: dict[str, Any], *, clock: Callable[[], int] = time.time_ns,
    hold_book: bool = False, **overrides: Any
) -> AsyncIterator[Gateway]:
    """A gateway on the store at `url` (`schema`: PostgreSQL's), its exchange ready; closed (and checkpointed) after.

    `clock`: the gateway's (a test drives it); `hold_book`: the feed stops once the exchange is ready, so the
    book stays as loaded until the caller moves it (`gateway.apply_market`).
    """
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [exchange], **overrides})
    store = Store(url, schema=schema)
    await store.start()
    bus = MemoryBus()
    await bus.start()
    gateway = Gateway(settings, store, bus, clock=clock)
    feed = build_feed(settings.exchanges[0])
    feeding: asyncio.Task[None] | None = None
    name = settings.exchanges[0].name
    try:
        await gateway.start()
        gateway.snapshot_sources[name] = feed
        feeding = asyncio.create_task(feed.run(bus.publish))
        for _ in range(200):
            if gateway.venues[name].status == "ready":
                break
            await asyncio.sleep(0.05)
        assert gateway.venues[name].status == "ready"
        if hold_book:
            await feed.close()
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
        yield gateway
    finally:
        await feed.close()
        if feeding is not None:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
        await gateway.close()
        await bus.close()
        await store.close()
