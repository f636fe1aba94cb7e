"""MemoryCache: the in-process default Cache, with expiry checked on read against an injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from coinwire.cache.base import INT64_MAX, INT64_MIN, check_amount, check_key, check_namespace, check_ttl, check_value
from coinwire.core.errors import InvalidInput

__all__ = ["MemoryCache"]

_SWEEP_MIN = 1024


class MemoryCache:
    """A dict of key -> (value, expires_at). `clock` returns seconds (monotonic by default; tests pass a fake).

    Expired entries are invisible at once and removed lazily: on the read that finds them, and
    by a sweep after as many writes as there are entries (amortised O(1) per write), so keys
    written once with a ttl and never read again cannot pile up.
    """

    def __init__(self, namespace: str = "coinwire", *, clock: Callable[[], float] = time.monotonic) -> None:
        self.namespace = check_namespace(namespace)
        self._clock = clock
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._writes = 0
        self._closed = False

    async def get(self, key: str) -> bytes | None:
        entry = self._live(check_key(key))
        return None if entry is None else entry[0]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        check_key(key)
        self._write(key, check_value(value), self._expiry(ttl))

    async def delete(self, key: str) -> bool:
        return self._live(check_key(key)) is not None and self._data.pop(key, None) is not None

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for key in keys:
            entry = self._live(check_key(key))
            if entry is not None:
                found[key] = entry[0]
        return found

    async def set_many(self, mapping: Mapping[str, bytes], ttl: float | None = None) -> None:
        expires = self._expiry(ttl)
        for key, value in mapping.items():  # check everything first: all or nothing, as in Redis MULTI
            check_key(key)
            check_value(value)
        for key, value in mapping.items():
            self._write(key, value, expires)

    async def incr(self, key: str, amount: int = 1) -> int:
        entry = self._live(check_key(key))
        current, expires = (0, None) if entry is None else (_as_int(key, entry[0]), entry[1])
        total = current + check_amount(amount)
        if not INT64_MIN <= total <= INT64_MAX:
            raise InvalidInput("cache_overflow", f"cache counter {key!r} would leave the 64-bit range", key=key)
        self._write(key, str(total).encode(), expires)
        return total

    async def clear(self) -> int:
        count = len(self._data)
        self._data.clear()
        return count

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True

    def _expiry(self, ttl: float | None) -> float | None:
        checked = check_ttl(ttl)
        return None if checked is None else self._clock() + checked

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        entry = self._data.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= self._clock():
            del self._data[key]
            return None
        return entry

    def _write(self, key: str, value: bytes, expires: float | None) -> None:
        self._data[key] = (value, expires)
        self._writes += 1
        if self._writes >= max(_SWEEP_MIN, len(self._data)):
            self._writes = 0
            now = self._clock()
            for stale in [k for k, (_, at) in self._data.items() if at is not None and at <= now]:
                del self._data[stale]


def _as_int(key: str, value: bytes) -> int:
    try:
        return int(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("cache_not_integer", f"cache key {key!r} does not hold an integer", key=key) from None
