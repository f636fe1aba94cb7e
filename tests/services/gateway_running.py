"""A real gateway for service tests: a store at a URL, the in-process bus, the demo feed ticking until its exchange is ready."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
    tmp_path: Path, url: str, schema: str | None, exchange: dict[str, Any], **overrides: Any
) -> AsyncIterator[Gateway]:
    """A gateway on the store at `url` (`schema`: PostgreSQL's), its exchange ready; closed (and checkpointed) after."""
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [exchange], **overrides})
    store = Store(url, schema=schema)
    await store.start()
    bus = MemoryBus()
    await bus.start()
    gateway = Gateway(settings, store, bus)
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
        yield gateway
    finally:
        await feed.close()
        if feeding is not None:
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
        await gateway.close()
        await bus.close()
        await store.close()
