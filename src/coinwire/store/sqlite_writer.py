"""Commits encoded rows to SQLite with the stdlib driver on the event loop (the hot write path).

Through SQLAlchemy's async layer every statement of a transaction is its own hop to
aiosqlite's thread; a group commit of five tables costs about eight hops and ~7 ms. Here the
whole transaction (BEGIN IMMEDIATE, one executemany per table, COMMIT) is one synchronous
call with its own connection, using the statements SQLAlchemy compiles from the same table
definitions.

Why on the event loop thread and not a writer thread: in WAL mode with `synchronous=NORMAL`
a commit only appends pages to the WAL file (no fsync), tens of microseconds of C for a
group commit of several orders. Handing it to a thread cost far more than the work itself:
the GIL changes hands for every row `executemany` steps (the loop thread is busy, so each
hand-back waits), and the thread wake-ups and the result's trip back to the loop add CPU on
both sides (measured: ~90 us of writer-thread CPU per order, and 40% fewer orders/s). The
two things that can take long stay off the loop:

- checkpoints (they copy the WAL into the database and fsync): automatic checkpoints are
  off on this connection; a helper thread with its own connection runs a PASSIVE checkpoint
  (which never blocks the writer) shortly after writes, with the GIL released throughout;
- waiting for another process's write lock: BEGIN IMMEDIATE is tried without waiting, and
  only when the database is locked does that transaction move to a thread, which waits for
  the lock (up to `busy_timeout` seconds) there. Until the thread is done, later writes
  queue behind it in the same thread: the connection holds one transaction at a time, and
  one begun on the loop while the thread's is open fails ("cannot start a transaction
  within a transaction").
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from typing import Any

from sqlalchemy.dialects import sqlite

from coinwire.store.tables import CHANGE_SET_TABLES

__all__ = ["SqliteWriter", "is_busy"]

# The stdlib binder passes only exact int, float, str and bytearray straight to SQLite; any
# other value (None, bool) walks the adapter registry and then looks up `__adapt__` and
# `__conform__`, two failing attribute lookups that each build an AttributeError (~1,200
# instructions a parameter; orders, fills and lines carry ~9 such values an order). An
# adapter in the registry ends the walk at its first step. Both store what SQLite stored
# before: None is NULL (`{}.get(None)` is None, a C call) and a bool its int.
sqlite3.register_adapter(type(None), {}.get)  # type: ignore[arg-type]
sqlite3.register_adapter(bool, int)

Rows = dict[str, list[tuple[Any, ...]]]  # codec.Rows.by_table: each row its table's columns in order
# SQL text, and row -> its parameters in order (None: the row is its parameters already)
_Compiled = tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]] | None]
_Batches = list[tuple[_Compiled, list[Any]]]
BULK_PREFIX = "sql:"  # a record key that is not a table: a bulk write's SQL text (SqliteWriter.bulk_rows)


def _compile(statement: Any, column_keys: tuple[str, ...] | None = None) -> _Compiled:
    """SQLAlchemy's SQLite text of a statement, and a picker of its positional parameters (one C call a row)."""
    compiled = statement.compile(dialect=sqlite.dialect(), column_keys=list(column_keys) if column_keys else None)
    names = tuple(compiled.positiontup or ())
    pick = itemgetter(*names) if len(names) > 1 else (lambda row, n=names[0]: (row[n],))
    return str(compiled), pick


def _as_tuples(table: Any, statement: Any) -> _Compiled:
    """The statement of a change-set table, whose rows come as tuples in the table's column order."""
    compiled = statement.compile(dialect=sqlite.dialect())
    names = tuple(compiled.positiontup or ())
    if names != tuple(column.name for column in table.columns):  # pragma: no cover - SQLAlchemy changed
        raise RuntimeError(f"the {table.name} statement binds {names}, not the table's columns in order")
    return str(compiled), None


class SqliteWriter:
    def __init__(self, path: str, statements: dict[str, Any], *, busy_timeout: float = 10.0, checkpoint_delay: float = 0.2) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.checkpoint_delay = checkpoint_delay
        self.locked_waits = 0  # transactions that waited in the thread: for the lock, or behind one that did
        self.checkpoints = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coinwire-sqlite-lock-wait")
        self._in_thread = 0  # transactions handed to the thread and not finished: while any, the loop writes none
        # rows of the change-set tables are tuples of every column in the table's order (store.codec.encode)
        self._sql: dict[str, _Compiled] = {table.name: _as_tuples(table, statements[table.name]) for table in CHANGE_SET_TABLES}
        self._other: dict[tuple[int, tuple[str, ...]], tuple[Any, _Compiled]] = {}  # write_many's, by statement and keys
        self._con: sqlite3.Connection | None = None
        self._dirty = threading.Event()  # set by a commit, cleared by the checkpointer
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None

    def connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout=0")  # never wait on the loop; see _write_waiting
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it, off the loop
        return con

    def _connection(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = self.connect()
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="coinwire-sqlite-checkpoint", daemon=True)
            self._checkpointer.start()
        return self._con

    def batches(self, by_table: Rows) -> _Batches:
        """The change-set tables' rows in CHANGE_SET_TABLES order (parents before the rows that refer to them), then bulk writes.

        A bulk write (`bulk_rows`) is keyed by its own SQL text, so a writer in another process
        (the journal's helper) runs it without knowing the statement it was compiled from.
        """
        batches: _Batches = [(self._sql[table.name], rows) for table in CHANGE_SET_TABLES if (rows := by_table.get(table.name))]
        batches += [((key[len(BULK_PREFIX):], None), rows) for key, rows in by_table.items() if key.startswith(BULK_PREFIX)]
        return batches

    def bulk_rows(self, statement: Any, rows: list[dict[str, Any]]) -> Rows:
        """`write_many`'s rows as a record `batches` runs: {BULK_PREFIX + its SQL: its parameter tuples}."""
        key = (id(statement), tuple(rows[0]))
        cached = self._other.get(key)
        if cached is None or cached[0] is not statement:
            cached = self._other[key] = (statement, _compile(statement, key[1]))
        sql, pick = cached[1]
        return {BULK_PREFIX + sql: list(map(pick, rows))}  # type: ignore[arg-type]  # _compile always gives a picker

    def transaction(self, con: sqlite3.Connection, batches: _Batches) -> None:
        """Everything after a successful BEGIN IMMEDIATE: the statements, then COMMIT (or ROLLBACK)."""
        try:
            for (sql, pick), rows in batches:
                con.executemany(sql, rows if pick is None else map(pick, rows))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self._dirty.set()

    def _write_waiting(self, batches: _Batches) -> None:
        """In a thread: wait for another connection's write lock, then write."""
        con = self._connection()
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                con.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)
        self.transaction(con, batches)

    async def write(self, by_table: Rows) -> None:
        """Commit the rows as one transaction; returns once committed (raises what SQLite raised)."""
        await self._write(self.batches(by_table))

    async def write_many(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        """One statement over rows that all have the same keys, as one transaction.

        For tables outside the change sets written in bulk (owners, audit, candles):
        SQLAlchemy's executemany spends ~10 us a row building parameters, this ~1.
        """
        if rows:
            await self._write(self.batches(self.bulk_rows(statement, rows)))

    async def _write(self, batches: _Batches) -> None:
        con = self._connection()
        if not self._in_thread:
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
            else:
                self.transaction(con, batches)
                return
        self.locked_waits += 1
        self._in_thread += 1
        # one worker: transactions handed over run one after another, in the order they came;
        # counted done when the thread is, even if the caller stopped waiting (cancelled)
        done = asyncio.wrap_future(self._executor.submit(self._write_waiting, batches))
        done.add_done_callback(self._thread_done)
        await asyncio.shield(done)

    def _thread_done(self, _: object) -> None:
        self._in_thread -= 1

    def _checkpoint_loop(self) -> None:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            con.execute("PRAGMA busy_timeout=1000")
            while not self._stop.is_set():
                self._dirty.wait()
                if self._stop.wait(self.checkpoint_delay):  # let a burst of commits pile up first
                    break
                self._dirty.clear()
                try:
                    con.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the GIL is released while it runs
                    self.checkpoints += 1
                except sqlite3.OperationalError:  # busy: the next round catches up
                    self._dirty.set()
        finally:
            con.close()

    def _close(self) -> None:
        if self._con is not None:
            self._con.close()  # the last connection to close checkpoints the WAL and removes it
            self._con = None

    async def close(self) -> None:
        self._stop.set()
        self._dirty.set()
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.join)
            self._checkpointer = None
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY (another connection holds the write lock) or SQLITE_LOCKED, with extended codes."""
    return getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
