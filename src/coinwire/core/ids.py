"""Deterministic id sequences, owned by whoever composes the core (restored from the store)."""

from __future__ import annotations

__all__ = ["IdSequence"]


class IdSequence:
    """Hands out increasing integer ids starting after `last`; no clock, no randomness."""

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def next(self) -> int:
        self.last += 1
        return self.last

    def advance_to(self, seen: int) -> None:
        """Make sure future ids exceed `seen` (used when restoring from storage)."""
        if seen > self.last:
            self.last = seen
