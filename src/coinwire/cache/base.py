"""The Cache port: namespaced bytes under string keys with optional expiry, plus checks both adapters share.

Values are opaque bytes (callers choose msgspec JSON or msgpack); counters made by `incr` are
stored as ASCII decimal bytes, as Redis stores them, so `get` reads the same on either adapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from coinwire.core.errors import InvalidInput

__all__ = ["Cache", "check_key", "check_value", "check_amount", "check_ttl", "check_namespace", "ttl_ms", "INT64_MIN", "INT64_MAX"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the range Redis counters hold; the memory cache enforces it too
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+")


@runtime_checkable
class Cache(Protocol):
    """Short-lived shared state (last prices, sessions, rate counters); in-process or Redis."""

    namespace: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value`; with `ttl` (seconds, > 0) it disappears after that long."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when it existed."""
        ...

    async def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The keys that exist, with their values (missing keys are left out)."""
        ...

    async def set_many(self, mapping: Mapping[str, bytes], ttl: float | None = None) -> None: ...

    async def incr(self, key: str, amount: int = 1) -> int:
        """Add `amount` to the integer at `key` (0 when absent) and return it; a TTL already set is kept."""
        ...

    async def clear(self) -> int:
        """Delete every key of this namespace (tests, resets); returns how many went."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInput("invalid_cache_key", f"cache keys are non-empty strings, got {key!r}")
    return key


def check_value(value: bytes) -> bytes:
    """Values are bytes on both adapters (Redis would silently turn an int or str into bytes)."""
    if not isinstance(value, bytes):
        raise InvalidInput("invalid_cache_value", f"cache values are bytes, got {type(value).__name__}")
    return value


def check_amount(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or not INT64_MIN <= amount <= INT64_MAX:
        raise InvalidInput("invalid_amount", f"incr amounts are 64-bit integers, got {amount!r}")
    return amount


def check_ttl(ttl: float | None) -> float | None:
    """A ttl is None (keep forever) or a positive, finite number of seconds."""
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < math.inf):
        raise InvalidInput("invalid_ttl", f"ttl must be a positive number of seconds or None, got {ttl!r}")
    return ttl


def ttl_ms(ttl: float | None) -> int | None:
    """Seconds to whole milliseconds, rounded up so a tiny ttl never becomes 'forever' or an error."""
    checked = check_ttl(ttl)
    return None if checked is None else max(1, math.ceil(checked * 1000))


def check_namespace(namespace: str) -> str:
    """Letters, digits, `_`, `-`, `.`: nothing a Redis key pattern would read as a wildcard."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise InvalidInput("invalid_namespace", f"namespace must be letters, digits, '_', '-' or '.', got {namespace!r}")
    return namespace
