"""Keeps an L2 book in step with a depth-diff stream, following Binance's book-sync procedure.

A venue publishes a REST snapshot (`lastUpdateId`) and a stream of diffs covering update
ids `U..u`. The book is only trusted while the diffs chain without a hole:

1. Buffer diffs until a snapshot arrives.
2. On the snapshot, load the book and drop buffered diffs already contained in it
   (`u <= lastUpdateId`).
3. The first applied diff must straddle the snapshot: `U <= lastUpdateId + 1 <= u`
   (futures: `pu == lastUpdateId` also chains, as its ids are not contiguous).
4. Afterwards each diff must continue the previous one: `U <= previous u + 1` (normally
   equal; an overlap is harmless since sizes are absolute), or for futures feeds
   (non-zero `prev_update_id`) `pu == previous u`. A diff entirely at or below the
   current id is a duplicate and is ignored.

Anything else is a gap: the book is no longer trusted, `state` becomes "resync", `gaps`
counts it, and diffs are buffered again until the caller supplies a new snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

from coinwire.core.book import L2Book, Level

__all__ = ["BookSync", "WAITING_SNAPSHOT", "SYNCED", "RESYNC", "LevelsHook", "SnapshotLike", "DeltaLike"]

WAITING_SNAPSHOT: Final = "waiting_snapshot"
SYNCED: Final = "synced"
RESYNC: Final = "resync"

Levels = list[Level]
LevelsHook = Callable[[Levels, Levels], object]  # (bids, asks) -> ignored


# The shapes of coinwire.messages.BookSnapshot / BookDelta, stated here because the core
# imports nothing outside itself.
class SnapshotLike(Protocol):
    @property
    def last_update_id(self) -> int: ...
    @property
    def bids(self) -> Levels: ...
    @property
    def asks(self) -> Levels: ...


class DeltaLike(SnapshotLike, Protocol):
    @property
    def first_update_id(self) -> int: ...
    @property
    def prev_update_id(self) -> int: ...


class BookSync:
    """One book, one diff stream: applies diffs that chain, detects those that do not.

    `apply_levels` replaces `book.apply` for diffs and `load_levels` replaces `book.load`
    for snapshots, so a component that must see every level change (a matching engine
    with resting orders) can sit in the path; by default both act on `book`.
    `max_buffer` bounds the diffs kept while no snapshot is available (oldest dropped:
    a later snapshot supersedes them anyway).
    """

    __slots__ = ("book", "state", "last_update_id", "gaps", "_apply", "_load", "_buffer", "_steady")

    def __init__(
        self,
        book: L2Book | None = None,
        apply_levels: LevelsHook | None = None,
        load_levels: LevelsHook | None = None,
        max_buffer: int = 100_000,
    ) -> None:
        self.book = book if book is not None else L2Book()
        self.state: str = WAITING_SNAPSHOT
        self.last_update_id = 0
        self.gaps = 0
        self._apply: LevelsHook = apply_levels if apply_levels is not None else self.book.apply
        self._load: LevelsHook = load_levels if load_levels is not None else self.book.load
        self._buffer: deque[DeltaLike] = deque(maxlen=max_buffer)
        self._steady = False  # synced and past the first diff: the hot path applies

    @property
    def needs_snapshot(self) -> bool:
        """True while the book cannot be trusted and only a fresh snapshot can fix that."""
        return self.state != SYNCED

    @property
    def buffered(self) -> int:
        """How many diffs are waiting for a snapshot."""
        return len(self._buffer)

    def on_snapshot(self, msg: SnapshotLike) -> None:
        """Load a full book, then replay the buffered diffs that come after it."""
        self._load(msg.bids, msg.asks)
        self.last_update_id = msg.last_update_id
        self.state = SYNCED
        self._steady = False
        pending, self._buffer = self._buffer, deque(maxlen=self._buffer.maxlen)
        for delta in pending:
            self.on_delta(delta)

    def on_delta(self, msg: DeltaLike) -> bool:
        """Apply a diff if it chains; returns True when the book changed.

        False means the diff was buffered (no trusted book), ignored as stale, or revealed
        a gap (then `state` is "resync" and the diff is kept for the next snapshot).
        """
        if self._steady:
            pu = msg.prev_update_id
            if (msg.first_update_id == self.last_update_id + 1) if pu == 0 else (pu == self.last_update_id):
                self._apply(msg.bids, msg.asks)
                self.last_update_id = msg.last_update_id
                return True
        return self._on_delta_slow(msg)

    def _on_delta_slow(self, msg: DeltaLike) -> bool:
        if self.state != SYNCED:
            self._buffer.append(msg)
            return False
        last = self.last_update_id
        if msg.last_update_id <= last:
            return False  # already contained in the book
        if msg.prev_update_id == 0:
            ok = msg.first_update_id <= last + 1  # an overlap is harmless: sizes are absolute
        else:
            ok = msg.prev_update_id == last or (not self._steady and msg.first_update_id <= last + 1)
        if not ok:
            self.gaps += 1
            self.state = RESYNC
            self._steady = False
            self._buffer.append(msg)
            return False
        self._apply(msg.bids, msg.asks)
        self.last_update_id = msg.last_update_id
        self._steady = True
        return True
