"""The cache port: `Cache`, its in-process default and Redis adapter, chosen by URL."""

from __future__ import annotations

from coinwire.cache.base import Cache
from coinwire.cache.memory import MemoryCache
from coinwire.core.errors import InvalidInput

__all__ = ["Cache", "MemoryCache", "cache_from_url"]


def cache_from_url(url: str | None, namespace: str = "coinwire") -> Cache:
    """`None` or `memory://` -> MemoryCache; `redis://...` (or `rediss://`, `unix://`) -> RedisCache."""
    if url is None or url in ("", "memory://", "memory"):
        return MemoryCache(namespace)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from coinwire.cache.redis import RedisCache  # imported on demand: the embedded setup never loads redis-py

        return RedisCache(url, namespace)
    raise InvalidInput("unsupported_cache_url", f"cache URL must be memory:// or redis://host:port/db, got {url!r}", url=url)
