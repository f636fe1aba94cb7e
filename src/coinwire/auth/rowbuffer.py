"""Rows buffered in memory and written together: one executemany transaction every `interval` seconds.

For bookkeeping that rides on hot paths (audit rows): the caller pays an
append, never a write of its own, so the store's group-commit writer keeps the disk (on SQLite
with its journal, a flush is one append to the journal, off the event loop's database work).
Rows not yet written when the process dies are lost; users of this class say what that means.
A row the store refuses (a value no column can hold) is dropped with a log line, alone: the
other rows of its batch are written.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from coinwire.core.errors import InvalidInput
from coinwire.store import Store

__all__ = ["RowBuffer"]

log = structlog.get_logger("coinwire.auth")


class RowBuffer:
    def __init__(self, store: Store, statement: Any, interval: float = 0.5, name: str = "rows") -> None:
        """`statement`: the INSERT (or upsert) every row goes through; all rows must have the same keys."""
        self.store, self.statement, self.interval, self.name = store, statement, interval, name
        self._rows: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"{self.name}-writer")

    async def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), self.interval)
            except TimeoutError:
                pass
            try:
                await self.flush()
            except Exception:  # the rows stay buffered; the next round retries
                log.exception("buffered rows not written yet", rows=self.name)

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            await self.store.write_many(self.statement, rows)
        except InvalidInput as exc:
            if exc.code != "store_value_refused":
                self._rows[:0] = rows
                raise
            await self._write_alone(rows)
        except Exception:
            self._rows[:0] = rows
            raise

    async def _write_alone(self, rows: list[dict[str, Any]]) -> None:
        """The store refused a value of the batch: write each row alone and drop those it refuses.

        A row no column can hold (a NUL character, a value beyond its type) would otherwise be
        retried with every later row forever, and no row would be written again.
        """
        for index, row in enumerate(rows):
            try:
                await self.store.write_many(self.statement, [row])
            except InvalidInput as exc:
                if exc.code != "store_value_refused":
                    self._rows[:0] = rows[index:]
                    raise
                log.error("buffered row refused by the store: dropped", rows=self.name, reason=exc.message)
            except Exception:
                self._rows[:0] = rows[index:]
                raise

    async def close(self) -> None:
        """Let a write in progress finish (never cancel it half-way: its rows would be lost), then write the rest."""
        self._closing.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
