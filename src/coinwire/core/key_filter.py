"""A fixed-size filter of idempotency keys (a Bloom filter): "surely new" or "maybe seen, look it up".

Pure. The gateway cannot keep every client_oid ever used in memory (that grows with history),
nor read the store for every new order (a round trip per order). This answers most new keys
at once and sends only keys it may have seen to the store (the unique (owner, client_oid)
index): never a false "new", so a repeat is always found; a false "maybe" costs one lookup.
Its size is fixed whatever the history: with `k` hashes over `m` bits and `n` keys the share
of false "maybe"s is about (1 - e^(-k n / m))^k, 1% at n = m / 9.6 with k = 7. The hashes are
stable across processes (BLAKE2b), so a filter stored with a checkpoint is valid on restart.
"""

from __future__ import annotations

import hashlib

__all__ = ["KeyFilter"]

_HASHES = 7
_ROUNDS = range(_HASHES)


class KeyFilter:
    """`add(owner, key)` and `may_contain(owner, key)` over a bit array of `size_bytes` bytes."""

    __slots__ = ("bits", "_m", "_last")

    def __init__(self, size_bytes: int, data: bytes | None = None) -> None:
        if size_bytes < 1:
            raise ValueError("a key filter needs at least one byte")
        if data is not None and len(data) != size_bytes:
            raise ValueError(f"stored filter has {len(data)} bytes, not {size_bytes}")
        self.bits = bytearray(data) if data is not None else bytearray(size_bytes)
        self._m = size_bytes * 8
        self._last: tuple[int | None, str, list[int]] = (None, "", [])  # a new key is asked about, then added: hashed once

    @property
    def size_bytes(self) -> int:
        return len(self.bits)

    def _positions(self, owner: int | None, key: str) -> list[int]:
        last_owner, last_key, positions = self._last
        if last_key == key and last_owner == owner and positions:
            return positions
        digest = hashlib.blake2b(f"{'' if owner is None else owner}\x00{key}".encode(), digest_size=16).digest()
        h1, h2 = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little") | 1
        m = self._m
        positions = [(h1 + i * h2) % m for i in _ROUNDS]
        self._last = (owner, key, positions)
        return positions

    def add(self, owner: int | None, key: str) -> None:
        bits = self.bits
        for position in self._positions(owner, key):
            bits[position >> 3] |= 1 << (position & 7)

    def may_contain(self, owner: int | None, key: str) -> bool:
        """False: the key was never added. True: it may have been (look it up)."""
        bits = self.bits
        for p in self._positions(owner, key):
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    def to_bytes(self) -> bytes:
        return bytes(self.bits)
