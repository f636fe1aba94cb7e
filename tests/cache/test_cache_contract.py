"""One Cache contract, run against MemoryCache (fake clock) and RedisCache on a real Redis (DB 15)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import redis.asyncio

from coinwire.cache import MemoryCache, cache_from_url
from coinwire.cache.base import Cache
from coinwire.cache.redis import RedisCache
from coinwire.core.errors import InvalidInput
from tests.conftest import REDIS_URL, require_service


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """Makes caches of one kind in fresh namespaces, and moves time forward for them."""

    kind: str
    clock: FakeClock = field(default_factory=FakeClock)
    made: list[Cache] = field(default_factory=list)

    def make(self, namespace: str | None = None) -> Cache:
        namespace = namespace or f"t{uuid.uuid4().hex[:16]}"
        cache: Cache = MemoryCache(namespace, clock=self.clock) if self.kind == "memory" else RedisCache(REDIS_URL, namespace)
        self.made.append(cache)
        return cache

    async def advance(self, seconds: float) -> None:
        if self.kind == "memory":
            self.clock.now += seconds
        else:
            await asyncio.sleep(seconds)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "redis":
        url = urlsplit(REDIS_URL)
        require_service("Redis", url.hostname or "127.0.0.1", url.port or 6379)
    made = Backend(request.param)
    yield made
    for cache in made.made:
        await cache.clear()
        await cache.close()


@pytest.fixture
def cache(backend: Backend) -> Cache:
    return backend.make()


async def test_get_set_overwrite_delete(cache: Cache) -> None:
    assert await cache.get("price:btc") is None
    await cache.set("price:btc", b"60000.5")
    assert await cache.get("price:btc") == b"60000.5"
    await cache.set("price:btc", b"\x00\xff binary")
    assert await cache.get("price:btc") == b"\x00\xff binary"
    assert await cache.delete("price:btc") is True
    assert await cache.delete("price:btc") is False
    assert await cache.get("price:btc") is None


async def test_ttl_expiry(cache: Cache, backend: Backend) -> None:
    await cache.set("short", b"1", ttl=0.1)
    await cache.set("long", b"2", ttl=60)
    await cache.set("forever", b"3")
    assert await cache.get("short") == b"1"
    await backend.advance(0.25)
    assert await cache.get("short") is None
    assert await cache.get("long") == b"2"
    assert await cache.get("forever") == b"3"
    assert await cache.delete("short") is False
    await cache.set("long", b"4")  # a plain set drops the old ttl
    await backend.advance(0.25)
    assert await cache.get("long") == b"4"


async def test_get_many_and_set_many(cache: Cache, backend: Backend) -> None:
    assert await cache.get_many([]) == {}
    await cache.set_many({})
    await cache.set_many({"a": b"1", "b": b"2"})
    await cache.set_many({"c": b"3"}, ttl=0.1)
    assert await cache.get_many(["a", "missing", "c", "b"]) == {"a": b"1", "c": b"3", "b": b"2"}
    await backend.advance(0.25)
    assert await cache.get_many(iter(["a", "c"])) == {"a": b"1"}


async def test_set_many_is_all_or_nothing_on_bad_input(cache: Cache) -> None:
    with pytest.raises(InvalidInput):
        await cache.set_many({"a": b"1", "b": "not bytes"})  # type: ignore[dict-item]
    assert await cache.get("a") is None


async def test_incr(cache: Cache, backend: Backend) -> None:
    assert await cache.incr("hits") == 1
    assert await cache.incr("hits", 41) == 42
    assert await cache.incr("hits", -50) == -8
    assert await cache.get("hits") == b"-8"
    await cache.set("preset", b"10", ttl=0.1)
    assert await cache.incr("preset") == 11  # keeps the ttl it had
    await backend.advance(0.25)
    assert await cache.get("preset") is None
    assert await cache.incr("preset") == 1


async def test_incr_refuses_non_integers(cache: Cache) -> None:
    await cache.set("name", b"btc")
    with pytest.raises(InvalidInput) as error:
        await cache.incr("name")
    assert error.value.code == "cache_not_integer"
    await cache.set("big", str(2**63 - 1).encode())
    with pytest.raises(InvalidInput) as error:
        await cache.incr("big")
    assert error.value.code == "cache_overflow"
    for amount in (1.5, True, 2**64):
        with pytest.raises(InvalidInput):
            await cache.incr("hits", amount)  # type: ignore[arg-type]


async def test_bad_keys_values_and_ttls_are_refused(cache: Cache) -> None:
    for ttl in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(InvalidInput) as error:
            await cache.set("k", b"v", ttl=ttl)
        assert error.value.code == "invalid_ttl"
    with pytest.raises(InvalidInput):
        await cache.set("k", "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await cache.get("")
    assert await cache.get("k") is None


async def test_namespaces_are_isolated(backend: Backend) -> None:
    one, two = backend.make(), backend.make()
    await one.set("shared-name", b"one")
    await two.set("shared-name", b"two")
    await one.incr("count")
    assert await one.get("shared-name") == b"one"
    assert await two.get("shared-name") == b"two"
    assert await two.get("count") is None
    assert await one.clear() == 2
    assert await one.get("shared-name") is None
    assert await two.get("shared-name") == b"two"


async def test_ping_and_close(cache: Cache) -> None:
    assert await cache.ping() is True


@pytest.mark.services
async def test_redis_keys_carry_the_namespace_prefix() -> None:
    url = urlsplit(REDIS_URL)
    require_service("Redis", url.hostname or "127.0.0.1", url.port or 6379)
    cache = RedisCache(REDIS_URL, f"t{uuid.uuid4().hex[:16]}")
    raw = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await cache.set("price:btc", b"1", ttl=30)
        assert await raw.get(f"{cache.namespace}:price:btc") == b"1"
        assert 0 < await raw.pttl(f"{cache.namespace}:price:btc") <= 30_000
    finally:
        await cache.clear()
        await cache.close()
        await raw.aclose()


async def test_redis_ping_is_false_when_unreachable() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0", "unreachable")
    try:
        assert await cache.ping() is False
    finally:
        await cache.close()


async def test_memory_cache_sweeps_expired_keys_nobody_reads() -> None:
    clock = FakeClock()
    cache = MemoryCache("sweep", clock=clock)
    for n in range(2000):
        await cache.set(f"k{n}", b"x", ttl=1)
    clock.now += 2
    for _ in range(2001):
        await cache.set("fresh", b"y")
    assert await cache.clear() == 1  # entries counted before clearing: the 2000 expired ones were swept


def test_cache_from_url_picks_the_adapter() -> None:
    assert isinstance(cache_from_url(None), MemoryCache)
    assert isinstance(cache_from_url("memory://"), MemoryCache)
    assert isinstance(cache_from_url("redis://127.0.0.1:6379/15", namespace="x"), RedisCache)
    with pytest.raises(InvalidInput) as error:
        cache_from_url("memcached://somewhere")
    assert error.value.code == "unsupported_cache_url"
