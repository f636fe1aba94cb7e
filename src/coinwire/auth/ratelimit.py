"""Token-bucket rate limits per key (client address, user): in-process, or in Redis shared by every process.

A bucket holds up to `burst` tokens and refills at `rate` per second; a request takes one.
`take()` answers 0 when the request may go, else the seconds until a token is back (the
`Retry-After`). The Redis bucket runs the same arithmetic in one Lua script, so processes
behind a load balancer share one budget per key. While Redis does not answer, the buckets
are this process's own (as in the embedded setup) until it answers again: the limits still
hold, per process, and an outage of the cache does not refuse every request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import structlog

__all__ = ["RateLimiter", "MemoryBuckets", "RedisBuckets", "limiter_from_url", "bucket_step"]

log = structlog.get_logger("coinwire.auth")


def bucket_step(tokens: float, stamp: float, now: float, rate: float, burst: float) -> tuple[float, float]:
    """Refill since `stamp`, then take one token: (tokens left, or negative when refused; wait seconds)."""
    tokens = min(burst, tokens + max(0.0, now - stamp) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class RateLimiter(Protocol):
    async def take(self, key: str, rate: float, burst: float) -> float: ...
    async def close(self) -> None: ...


class MemoryBuckets:
    """Buckets in this process (the embedded default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, rate: float, burst: float) -> float:
        now = self.clock()
        tokens, stamp = self._buckets.get(key, (burst, now))
        tokens, wait = bucket_step(tokens, stamp, now, rate, burst)
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._buckets.clear()  # an address flood must not grow memory without bound
        self._buckets[key] = (tokens, now)
        return wait

    async def close(self) -> None:
        return None


_LUA = """
local rate = tonumber(ARGV[1]); local burst = tonumber(ARGV[2])
local t = redis.call('TIME'); local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(b[1]) or burst; local stamp = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    """Buckets in Redis (`<namespace>:rl:<key>`), timed by the Redis server's clock."""

    def __init__(self, url: str, namespace: str = "coinwire") -> None:
        import redis.asyncio  # here, not at the top: the embedded setup never loads redis-py (as coinwire.cache)
        import redis.exceptions

        self._unanswered = (redis.exceptions.RedisError, OSError)
        self._client = redis.asyncio.Redis.from_url(url)
        self._prefix = f"{namespace}:rl:"
        self._script = self._client.register_script(_LUA)
        self._local = MemoryBuckets()  # while Redis does not answer
        self.unreachable = False

    async def take(self, key: str, rate: float, burst: float) -> float:
        try:
            wait = float(await self._script(keys=[self._prefix + key], args=[rate, burst]))
        except self._unanswered:
            if not self.unreachable:  # logged once an outage, not once a request
                self.unreachable = True
                log.warning("rate limits: Redis does not answer; this process keeps its own buckets until it does")
            return await self._local.take(key, rate, burst)
        if self.unreachable:
            self.unreachable = False
            log.warning("rate limits: Redis answers again; buckets are shared again")
        return wait

    async def clear(self, key: str) -> None:
        await self._client.delete(self._prefix + key)

    async def close(self) -> None:
        await self._client.aclose()


def limiter_from_url(cache_url: str, namespace: str = "coinwire") -> RateLimiter:
    """Redis buckets (keys `<namespace>:rl:...`) when the cache is Redis (scaled out), else in-process ones."""
    if cache_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBuckets(cache_url, namespace)
    return MemoryBuckets()


def retry_after(wait: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, math.ceil(wait))
