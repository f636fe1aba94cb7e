"""The message bus port: `Bus`, its in-process default and NATS JetStream adapter, chosen by URL."""

from __future__ import annotations

from coinwire.bus.base import Bus, Handler, Subscription
from coinwire.bus.memory import DEFAULT_MAX_LOG, MemoryBus
from coinwire.core.errors import InvalidInput

__all__ = ["Bus", "Handler", "Subscription", "MemoryBus", "bus_from_url"]


def bus_from_url(url: str | None, namespace: str = "coinwire", max_log: int = DEFAULT_MAX_LOG, *, max_age: float = 0.0,
                 max_bytes: int = 0) -> Bus:
    """`None` or `memory://` -> MemoryBus (keeping `max_log` durable messages); `nats://host:port` (or `tls://`) -> NatsBus,
    its JetStream stream keeping durable messages `max_age` seconds and `max_bytes` bytes at most (0: no limit).

    The NatsBus is not started yet."""
    if url is None or url in ("", "memory://", "memory"):
        return MemoryBus(namespace, max_log=max_log)
    if url.startswith(("nats://", "tls://")):
        from coinwire.bus.nats import NatsBus  # imported on demand: the embedded setup never loads nats-py

        return NatsBus(url, namespace, max_age=max_age, max_bytes=max_bytes)
    raise InvalidInput("unsupported_bus_url", f"bus URL must be memory:// or nats://host:port, got {url!r}", url=url)
