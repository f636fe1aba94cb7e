"""Token buckets in process and in the real Redis: a burst, then refusals with the wait, then refills."""

from __future__ import annotations

import uuid

import pytest

from coinwire.auth.ratelimit import MemoryBuckets, RedisBuckets, bucket_step, limiter_from_url
from tests.conftest import require_service
from tests.server import free_port


def test_bucket_step_refills_at_the_rate_up_to_the_burst() -> None:
    assert bucket_step(3.0, 0.0, 0.0, 1.0, 3.0) == (2.0, 0.0)
    tokens, wait = bucket_step(0.5, 0.0, 0.0, 2.0, 3.0)
    assert tokens == 0.5 and wait == pytest.approx(0.25)
    assert bucket_step(0.0, 0.0, 100.0, 1.0, 3.0) == (2.0, 0.0)  # capped at the burst, then one taken


async def test_memory_buckets_per_key() -> None:
    now = [0.0]
    buckets = MemoryBuckets(clock=lambda: now[0])
    assert [await buckets.take("ip:a", 1.0, 3.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await buckets.take("ip:a", 1.0, 3.0) == pytest.approx(1.0)
    assert await buckets.take("ip:b", 1.0, 3.0) == 0.0  # another key has its own bucket
    now[0] = 1.0
    assert await buckets.take("ip:a", 1.0, 3.0) == 0.0


@pytest.mark.services
async def test_redis_buckets_share_one_budget_across_clients() -> None:
    require_service("Redis", "127.0.0.1", 6379)
    url = "redis://127.0.0.1:6379/0"
    assert isinstance(limiter_from_url(url), RedisBuckets) and isinstance(limiter_from_url("memory://"), MemoryBuckets)
    one, two = RedisBuckets(url, namespace=f"test-{uuid.uuid4().hex[:8]}"), None
    two = RedisBuckets(url, namespace=one._prefix[:-4])  # a second process with the same namespace
    try:
        key = "user:7"
        waits = [await (one if i % 2 else two).take(key, 0.5, 4.0) for i in range(5)]
        assert waits[:4] == [0.0] * 4 and 0 < waits[4] <= 2.0
        await one.clear(key)
        assert await two.take(key, 0.5, 4.0) == 0.0
        await one.clear(key)
    finally:
        await one.close()
        await two.close()


async def test_redis_buckets_that_cannot_reach_redis_keep_limiting_in_process() -> None:
    """A Redis that does not answer (a closed local port): the limits still hold, in this process, instead of failing every request."""
    buckets = RedisBuckets(f"redis://127.0.0.1:{free_port()}/0")
    try:
        waits = [await buckets.take("ip:a", 1.0, 3.0) for _ in range(4)]
        assert waits[:3] == [0.0] * 3 and 0 < waits[3] <= 1.0
        assert buckets.unreachable
        assert await buckets.take("ip:b", 1.0, 3.0) == 0.0  # still one bucket per key
    finally:
        await buckets.close()
