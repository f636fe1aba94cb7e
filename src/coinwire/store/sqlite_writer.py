"""Commits encoded rows to SQLite in ONE thread hop with the stdlib driver (the hot write path).

Through SQLAlchemy's async layer every statement of a transaction is its own hop to
aiosqlite's thread; a group commit of five tables costs about eight hops and ~7 ms. Here the
whole transaction (BEGIN IMMEDIATE, one executemany per table, COMMIT) runs as one call on
a dedicated writer thread with its own connection, using the statements SQLAlchemy
compiles from the same table definitions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from typing import Any

from sqlalchemy.dialects import sqlite

from coinwire.store.tables import TABLES

__all__ = ["SqliteWriter"]


class SqliteWriter:
    def __init__(self, path: str, statements: dict[str, Any]) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coinwire-sqlite-writer")
        self._sql: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]] = {}
        for table in TABLES:
            compiled = statements[table.name].compile(dialect=sqlite.dialect())
            names = tuple(compiled.positiontup or ())
            # rows carry every column of their table (store.codec builds them so): pick in one C call
            pick = itemgetter(*names) if len(names) > 1 else (lambda row, n=names[0]: (row[n],))
            self._sql[table.name] = (str(compiled), pick)
        self._con: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout=10000")  # first, so the pragmas below wait for a lock too
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        return con

    def _write(self, by_table: dict[str, list[dict[str, Any]]]) -> None:
        con = self._con or self._connect()
        self._con = con
        con.execute("BEGIN IMMEDIATE")
        try:
            for table in TABLES:
                rows = by_table.get(table.name)
                if rows:
                    sql, pick = self._sql[table.name]
                    con.executemany(sql, map(pick, rows))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    async def write(self, by_table: dict[str, list[dict[str, Any]]]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, by_table)

    def _close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)
