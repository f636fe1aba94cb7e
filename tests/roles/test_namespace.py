"""The `namespace` setting keeps deployments apart on one NATS and one Redis; `bus_max_age`/`bus_max_bytes` set the stream's limits.

Each test builds the platform's ports from settings, as `coinwire serve` does, against the real
NATS JetStream and Redis of the machine, under namespaces of its own (prefix `t28roles`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from coinwire.app import Platform
from coinwire.auth.ratelimit import RedisBuckets, limiter_from_url
from coinwire.bus.nats import NatsBus
from coinwire.config import load_settings
from coinwire.messages import OrderUpdate, TradeTick
from tests.conftest import NATS_URL, REDIS_URL, require_service
from tests.events import order_view

pytestmark = pytest.mark.services


def _namespace() -> str:
    return f"t28roles{uuid.uuid4().hex[:12]}"


@pytest.fixture
def services() -> None:
    for url in (NATS_URL, REDIS_URL):
        parts = urlsplit(url)
        require_service(parts.scheme, parts.hostname or "127.0.0.1", parts.port or 0)


@pytest.fixture
async def platforms(tmp_path: Path, services: None) -> AsyncIterator[list[Platform]]:
    made: list[Platform] = []
    yield made
    for platform in made:
        if isinstance(platform.bus, NatsBus):
            await platform.bus.delete_stream()
        await platform.cache.clear()
        await platform.bus.close()
        await platform.cache.close()


async def _stream_config(stream: str) -> Any:
    """The stream's configuration as the NATS server holds it (asked on a connection of the test's own)."""
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        return await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()


def _platform(tmp_path: Path, name: str, **env: str) -> Platform:
    settings = load_settings(env={"COINWIRE_DATA_DIR": str(tmp_path / name), "COINWIRE_BUS_URL": NATS_URL,
                                  "COINWIRE_CACHE_URL": REDIS_URL, **env})
    return Platform(settings)


async def test_two_namespaces_share_one_nats_and_one_redis_without_seeing_each_other(tmp_path: Path,
                                                                                     platforms: list[Platform]) -> None:
    one, two = _namespace(), _namespace()
    a = _platform(tmp_path, "a", COINWIRE_NAMESPACE=one)
    b = _platform(tmp_path, "b", COINWIRE_BUS_NAMESPACE=two)  # the former name of the setting, still read
    platforms += [a, b]
    for p in (a, b):
        await p.bus.start()
    assert (a.bus.namespace, b.bus.namespace, a.cache.namespace, b.cache.namespace) == (one, two, one, two)
    got: dict[str, list[str]] = {"a": [], "b": []}

    async def on_a(subject: str, message: object) -> None:
        got["a"].append(subject)

    async def on_b(subject: str, message: object) -> None:
        got["b"].append(subject)

    await a.bus.subscribe(">", on_a)
    await b.bus.subscribe(">", on_b)
    trade = TradeTick("demo", "BTC/USDT", 1, "t1", 100, 2, "buy")
    await a.bus.publish("trade.demo.usdt.btc", trade)
    await a.bus.publish("order.1.demo.usdt.btc", OrderUpdate(order_view(id=1)))  # durable: into a's stream only
    await b.bus.publish("trade.demo.usdt.eth", trade)
    for _ in range(100):
        if len(got["a"]) == 2 and len(got["b"]) == 1:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # what would cross over has had time to
    assert got == {"a": ["trade.demo.usdt.btc", "order.1.demo.usdt.btc"], "b": ["trade.demo.usdt.eth"]}
    assert [s for _, s, _ in await a.bus.replay(">")] == ["order.1.demo.usdt.btc"] and await b.bus.replay(">") == []
    # the cache: one key name, two values, each namespace its own (and the rate limiter's buckets under the namespace)
    await a.cache.set("price:demo:BTC/USDT", b"1")
    await b.cache.set("price:demo:BTC/USDT", b"2")
    assert (await a.cache.get("price:demo:BTC/USDT"), await b.cache.get("price:demo:BTC/USDT")) == (b"1", b"2")
    assert await b.cache.clear() == 1 and await a.cache.get("price:demo:BTC/USDT") == b"1"
    limiter = limiter_from_url(REDIS_URL, one)
    assert isinstance(limiter, RedisBuckets)
    try:
        await limiter.take("ip:1", 1.0, 5.0)
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            assert await client.exists(f"{one}:rl:ip:1") == 1 and await client.exists(f"{two}:rl:ip:1") == 0
            await client.delete(f"{one}:rl:ip:1")
        finally:
            await client.aclose()
    finally:
        await limiter.close()


async def test_the_stream_takes_the_configured_retention_and_a_changed_one(tmp_path: Path, platforms: list[Platform]) -> None:
    namespace = _namespace()
    first = _platform(tmp_path, "a", COINWIRE_NAMESPACE=namespace, COINWIRE_BUS_MAX_AGE="3600", COINWIRE_BUS_MAX_BYTES="1048576")
    platforms.append(first)
    await first.bus.start()
    assert isinstance(first.bus, NatsBus)
    info = await _stream_config(first.bus.stream)
    assert (info.config.name, info.config.max_age, info.config.max_bytes) == (f"{namespace}_durable", 3600.0, 1 << 20)
    # a process started later with other limits updates the stream (a deployment changing its retention)
    second = _platform(tmp_path, "b", COINWIRE_NAMESPACE=namespace, COINWIRE_BUS_MAX_AGE="60")
    platforms.append(second)
    await second.bus.start()
    assert isinstance(second.bus, NatsBus)
    info = await _stream_config(second.bus.stream)
    assert (info.config.max_age, info.config.max_bytes) == (60.0, -1)
    # and the default keeps what the limits keep: nothing of age or size
    default = _platform(tmp_path, "c", COINWIRE_NAMESPACE=_namespace())
    platforms.append(default)
    await default.bus.start()
    assert isinstance(default.bus, NatsBus)
    info = await _stream_config(default.bus.stream)
    assert (info.config.max_age or 0, info.config.max_bytes) == (0, -1)
