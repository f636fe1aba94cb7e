"""BookSync: Binance's buffer / snapshot / first-diff / chaining procedure, gaps and recovery."""

from __future__ import annotations

from coinwire.core.book import L2Book
from coinwire.core.book_sync import RESYNC, SYNCED, WAITING_SNAPSHOT, BookSync
from coinwire.core.orders import Side
from coinwire.messages import BookDelta, BookSnapshot

Levels = list[tuple[int, int]]


def snap(last: int, bids: Levels | None = None, asks: Levels | None = None) -> BookSnapshot:
    return BookSnapshot("binance", "BTC/USDT", 0, last, bids or [(100, 1)], asks or [(110, 1)])


def delta(first: int, last: int, bids: Levels | None = None, asks: Levels | None = None, pu: int = 0) -> BookDelta:
    return BookDelta("binance", "BTC/USDT", 0, first, last, bids or [], asks or [], pu)


def test_diffs_are_buffered_until_the_snapshot() -> None:
    sync = BookSync()
    assert sync.state == WAITING_SNAPSHOT and sync.needs_snapshot
    assert sync.on_delta(delta(8, 10, bids=[(101, 2)])) is False
    assert sync.on_delta(delta(11, 12, asks=[(109, 3)])) is False
    assert sync.buffered == 2 and sync.book.best_bid() is None
    sync.on_snapshot(snap(9))
    assert sync.state == SYNCED and not sync.needs_snapshot
    assert sync.book.levels(Side.BUY) == [(101, 2), (100, 1)]
    assert sync.book.best_ask() == 109
    assert sync.last_update_id == 12 and sync.buffered == 0 and sync.gaps == 0


def test_buffered_diffs_already_in_the_snapshot_are_dropped() -> None:
    sync = BookSync()
    sync.on_delta(delta(1, 5, bids=[(100, 99)]))  # stale: the snapshot (id 7) includes it
    sync.on_delta(delta(6, 7, bids=[(100, 98)]))  # stale too: u == lastUpdateId
    sync.on_delta(delta(8, 9, asks=[(110, 4)]))
    sync.on_snapshot(snap(7))
    assert sync.book.bids == {100: 1}
    assert sync.book.asks == {110: 4}
    assert sync.last_update_id == 9 and sync.gaps == 0


def test_first_diff_must_straddle_the_snapshot() -> None:
    sync = BookSync()
    sync.on_snapshot(snap(10))
    assert sync.on_delta(delta(5, 10)) is False  # entirely old: ignored, not a gap
    assert sync.state == SYNCED and sync.gaps == 0
    assert sync.on_delta(delta(9, 13, bids=[(105, 1)])) is True  # U <= 11 <= u
    assert sync.last_update_id == 13 and sync.book.best_bid() == 105


def test_snapshot_older_than_the_buffered_diffs_is_a_gap() -> None:
    sync = BookSync()
    sync.on_delta(delta(20, 25))
    sync.on_snapshot(snap(10))  # ids 11..19 are missing
    assert sync.state == RESYNC and sync.gaps == 1 and sync.needs_snapshot
    assert sync.buffered == 1  # kept for the next snapshot
    sync.on_snapshot(snap(22))
    assert sync.state == SYNCED and sync.last_update_id == 25


def test_chained_diffs_apply_and_a_gap_forces_a_resync() -> None:
    sync = BookSync()
    sync.on_snapshot(snap(10))
    assert sync.on_delta(delta(11, 12, bids=[(101, 1)]))
    assert sync.on_delta(delta(13, 15, bids=[(101, 0), (102, 2)]))
    assert sync.book.levels(Side.BUY) == [(102, 2), (100, 1)]
    assert sync.on_delta(delta(17, 18, asks=[(108, 1)])) is False  # 16 is missing
    assert sync.state == RESYNC and sync.gaps == 1 and sync.last_update_id == 15
    assert sync.book.best_ask() == 110  # the gap diff did not touch the book
    assert sync.on_delta(delta(19, 20, asks=[(107, 1)])) is False  # buffered while resyncing
    assert sync.buffered == 2


def test_resync_recovers_with_a_new_snapshot() -> None:
    sync = BookSync()
    sync.on_snapshot(snap(10))
    sync.on_delta(delta(12, 13))  # gap
    sync.on_delta(delta(14, 16, bids=[(103, 5)]))
    sync.on_delta(delta(17, 17, asks=[(104, 6)]))
    sync.on_snapshot(snap(15, bids=[(102, 1)], asks=[(106, 1)]))
    assert sync.state == SYNCED and sync.gaps == 1
    assert sync.book.levels(Side.BUY) == [(103, 5), (102, 1)]
    assert sync.book.levels(Side.SELL) == [(104, 6), (106, 1)]
    assert sync.on_delta(delta(18, 18))
    assert sync.last_update_id == 18


def test_duplicates_after_sync_are_ignored_and_overlaps_apply() -> None:
    sync = BookSync()
    sync.on_snapshot(snap(10))
    sync.on_delta(delta(11, 14))
    assert sync.on_delta(delta(11, 14, bids=[(109, 1)])) is False  # a duplicate
    assert sync.on_delta(delta(13, 16, bids=[(104, 1)])) is True  # overlaps 13..14: sizes are absolute
    assert sync.gaps == 0 and sync.last_update_id == 16 and 109 not in sync.book.bids


def test_futures_chain_on_prev_update_id() -> None:
    sync = BookSync()
    sync.on_delta(delta(90, 100, pu=80))  # buffered, then stale: u < lastUpdateId
    sync.on_delta(delta(101, 130, bids=[(101, 1)], pu=100))  # straddles 120
    sync.on_snapshot(snap(120))
    assert sync.state == SYNCED and sync.last_update_id == 130
    # futures ids are not contiguous: U jumps, but pu names the previous u
    assert sync.on_delta(delta(150, 160, bids=[(102, 1)], pu=130))
    assert sync.on_delta(delta(170, 171, pu=160))
    assert sync.book.best_bid() == 102 and sync.gaps == 0
    assert sync.on_delta(delta(180, 190, pu=175)) is False  # pu != 171: a message was lost
    assert sync.state == RESYNC and sync.gaps == 1


def test_futures_first_diff_may_chain_through_pu() -> None:
    sync = BookSync()
    sync.on_snapshot(snap(120))
    assert sync.on_delta(delta(125, 130, pu=120))  # U > lastUpdateId + 1 but pu == lastUpdateId
    assert sync.on_delta(delta(140, 150, pu=129)) is False
    assert sync.state == RESYNC


def test_hooks_receive_levels_instead_of_the_book() -> None:
    seen: list[tuple[str, Levels, Levels]] = []
    book = L2Book()
    sync = BookSync(
        book,
        apply_levels=lambda bids, asks: seen.append(("apply", bids, asks)),
        load_levels=lambda bids, asks: seen.append(("load", bids, asks)),
    )
    sync.on_snapshot(snap(1, bids=[(100, 1)], asks=[(110, 1)]))
    assert sync.on_delta(delta(2, 2, bids=[(101, 1)]))
    assert seen == [("load", [(100, 1)], [(110, 1)]), ("apply", [(101, 1)], [])]
    assert sync.book is book and book.best_bid() is None  # the hooks own the changes


def test_buffer_is_bounded_keeping_the_newest() -> None:
    sync = BookSync(max_buffer=3)
    for first in range(1, 11):
        sync.on_delta(delta(first, first, bids=[(100 + first, 1)]))
    assert sync.buffered == 3
    sync.on_snapshot(snap(7))
    assert sync.state == SYNCED and sync.last_update_id == 10 and sync.book.best_bid() == 110
