"""RedisCache: the Cache over Redis, every key stored as `<namespace>:<key>`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

import redis.asyncio
import redis.exceptions

from coinwire.cache.base import check_amount, check_key, check_namespace, check_value, ttl_ms
from coinwire.core.errors import InvalidInput

__all__ = ["RedisCache"]

_CLEAR_BATCH = 500


class RedisCache:
    """Cache on the Redis at `url` (e.g. `redis://127.0.0.1:6379/0`); connects on first use."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", namespace: str = "coinwire") -> None:
        self.url = url
        self.namespace = check_namespace(namespace)
        self._prefix = f"{namespace}:"
        self._client = redis.asyncio.Redis.from_url(url)

    async def get(self, key: str) -> bytes | None:
        value = cast("bytes | None", await self._client.get(self._key(key)))  # no decode_responses: bytes
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._client.set(self._key(key), check_value(value), px=ttl_ms(ttl))

    async def delete(self, key: str) -> bool:
        return bool(await self._client.delete(self._key(key)))

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        names = list(keys)
        if not names:
            return {}
        values = cast("list[bytes | None]", await self._client.mget([self._key(k) for k in names]))
        return {k: v for k, v in zip(names, values, strict=True) if v is not None}

    async def set_many(self, mapping: Mapping[str, bytes], ttl: float | None = None) -> None:
        px = ttl_ms(ttl)
        if not mapping:
            return
        async with self._client.pipeline(transaction=True) as pipe:
            for key, value in mapping.items():
                pipe.set(self._key(key), check_value(value), px=px)
            await pipe.execute()

    async def incr(self, key: str, amount: int = 1) -> int:
        try:
            return int(await self._client.incrby(self._key(key), check_amount(amount)))
        except redis.exceptions.ResponseError as exc:
            message = str(exc)
            if "overflow" in message:
                raise InvalidInput("cache_overflow", f"cache counter {key!r} would leave the 64-bit range", key=key) from None
            raise InvalidInput("cache_not_integer", f"cache key {key!r} does not hold an integer", key=key) from None

    async def clear(self) -> int:
        count = 0
        batch: list[bytes] = []
        async for name in self._client.scan_iter(match=f"{self._prefix}*", count=_CLEAR_BATCH):
            batch.append(name)
            if len(batch) >= _CLEAR_BATCH:
                count += await self._client.unlink(*batch)
                batch.clear()
        if batch:
            count += await self._client.unlink(*batch)
        return count

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (redis.exceptions.RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._client.aclose()

    def _key(self, key: str) -> str:
        return self._prefix + check_key(key)
