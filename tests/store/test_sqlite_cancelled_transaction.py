"""A task cancelled inside a SQLite write transaction leaves no write lock behind."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from coinwire.store import Store

SLOW_READ = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) SELECT count(*) FROM c"


def write_lock_held(database: Path) -> bool:
    con = sqlite3.connect(database, timeout=0.2, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        con.close()


async def test_a_task_cancelled_inside_a_write_transaction_leaves_no_write_lock(tmp_path: Path) -> None:
    database = tmp_path / "coinwire.db"
    store = Store(f"sqlite:///{database}")
    await store.start()
    try:
        inside = asyncio.Event()

        async def writes() -> None:
            async with store.writer.begin() as conn:  # takes the write lock (BEGIN IMMEDIATE)
                inside.set()
                await conn.execute(text(SLOW_READ))  # cancelled while the driver runs it

        task = asyncio.create_task(writes())
        await inside.wait()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)  # the cancelled statement ends and the connection is closed in its thread
        # the task, its traceback and the cursor in it are still referenced here, as a stopped service's task is
        assert not await asyncio.to_thread(write_lock_held, database)
    finally:
        await store.close()
