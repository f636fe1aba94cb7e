"""The SQLite write path: commits on the loop, lock waits and checkpoints off it, against real database files."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coinwire.core.errors import Conflict
from coinwire.store import ChangeSet, Store
from coinwire.store.candles import upsert_statement
from coinwire.store.sqlite_writer import SqliteWriter
from tests.store.test_store_contract import BTC_USDT, count, ledger, order


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[tuple[Store, Path]]:
    path = tmp_path / "store.db"
    async with Store(f"sqlite:///{path}") as store:
        await store.apply(ledger())
        yield store, path


def _writer(store: Store) -> SqliteWriter:
    writer = store._sqlite
    assert writer is not None
    return writer


async def test_a_locked_database_is_waited_for_in_a_thread_while_the_loop_runs(sqlite_store: tuple[Store, Path]) -> None:
    store, path = sqlite_store
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
        write = asyncio.ensure_future(store.apply(ChangeSet().add_order(order(1), BTC_USDT)))
        ticks = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.3:  # the loop keeps turning while the write waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks >= 10 and not write.done()
        other.execute("COMMIT")
        await asyncio.wait_for(write, 5)
    finally:
        other.close()
    assert _writer(store).locked_waits == 1
    assert await count(store, "orders") == 1
    await store.apply(ChangeSet().add_order(order(2), BTC_USDT))  # and the next write is back on the loop
    assert _writer(store).locked_waits == 1
    assert await count(store, "orders") == 2


async def test_a_write_made_while_another_waits_in_the_thread_queues_behind_it(sqlite_store: tuple[Store, Path]) -> None:
    """One connection, one transaction at a time: a write on the loop never begins inside the thread's.

    Bulk rows (an owner, an audit line) and the group commit share the connection; when one
    found the database locked and moved to the thread, the next one must not start a
    transaction on the loop while the thread's is open ("cannot start a transaction within a
    transaction", which an order's request answered as internal_error).
    """
    store, path = sqlite_store
    writer = _writer(store)
    rows = [_candle(i) for i in range(60_000)]  # a transaction long enough to be caught open
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        bulk = asyncio.ensure_future(store.write_many(upsert_statement("sqlite"), rows))
        await asyncio.sleep(0.05)
        assert writer.locked_waits == 1 and not bulk.done()
        other.execute("COMMIT")
        deadline = time.monotonic() + 5
        while not (writer._con is not None and writer._con.in_transaction) and time.monotonic() < deadline:
            await asyncio.sleep(0)
        assert not bulk.done()  # the thread's transaction is open now
        await asyncio.wait_for(store.apply(ChangeSet().add_order(order(1), BTC_USDT)), 10)
        assert bulk.done()  # it waited its turn behind the bulk write
        await bulk
    finally:
        other.close()
    assert await count(store, "orders") == 1
    assert await count(store, "candles") == len(rows)
    await store.apply(ChangeSet().add_order(order(2), BTC_USDT))  # with the thread idle again, writes are back on the loop
    assert writer.locked_waits == 1 + 1  # the order above queued behind the bulk write; this one did not


def _candle(i: int) -> dict[str, object]:
    return {
        "exchange": "binance", "symbol": "BTC/USDT", "interval_s": 60, "open_time": 60 * i, "close_time": 60 * i + 60,
        "price_decimals": 2, "size_decimals": 8, "open": 1, "high": 2, "low": 1, "close": 2, "volume": 3, "trades": 1, "updated_at": i,
    }


async def test_a_lock_held_past_busy_timeout_fails_that_write_only(sqlite_store: tuple[Store, Path]) -> None:
    store, path = sqlite_store
    _writer(store).busy_timeout = 0.1
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await store.apply(ChangeSet().add_order(order(1), BTC_USDT))
        other.execute("ROLLBACK")
    finally:
        other.close()
    await store.apply(ChangeSet().add_order(order(2), BTC_USDT))
    assert await count(store, "orders") == 1


async def test_a_failed_transaction_rolls_back_and_the_connection_goes_on(sqlite_store: tuple[Store, Path]) -> None:
    store, _ = sqlite_store
    await store.apply(ChangeSet().add_order(order(1), BTC_USDT))
    with pytest.raises(Conflict):  # same client_oid, other id: the whole change set is refused
        await store.apply(ChangeSet().add_order(order(2), BTC_USDT).add_order(order(3, client_oid="oid-1"), BTC_USDT))
    await store.apply(ChangeSet().add_order(order(4), BTC_USDT))
    assert await count(store, "orders") == 2


async def test_the_checkpointer_copies_the_wal_into_the_database(sqlite_store: tuple[Store, Path]) -> None:
    store, path = sqlite_store
    writer = _writer(store)
    writer.checkpoint_delay = 0.01
    for i in range(1, 51):
        await store.apply(ChangeSet().add_order(order(i), BTC_USDT))
    deadline = time.monotonic() + 5
    while writer.checkpoints == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert writer.checkpoints >= 1
    probe = sqlite3.connect(path)
    try:
        busy, wal_frames, moved = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and wal_frames == moved  # everything written so far is in the database file
        assert probe.execute("SELECT count(*) FROM orders").fetchone()[0] == 50
    finally:
        probe.close()
