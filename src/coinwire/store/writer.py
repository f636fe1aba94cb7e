"""Group commit: many concurrent ChangeSets share one transaction, each submitter still waits for it.

A commit costs a disk sync (SQLite) or a network round trip (PostgreSQL) no matter how
little it writes, so one background task drains whatever is queued (up to `max_batch`
ChangeSets), merges it and commits once. `submit` returns only after the transaction
holding its changes committed, so a caller may acknowledge an order as soon as it returns.
If a merged transaction fails, each ChangeSet of that batch is retried in its own
transaction, in submission order, so one bad change fails only its own submitter.

A ChangeSet that fails for another reason than the store refusing its rows (a `CoinwireError`),
i.e. the database went away, halts the writer: it and every ChangeSet submitted after it fail
with the same error without being tried, until `resume()`. Why: the caller's memory ran ahead
of them, and a later one committing after an earlier one failed would leave the database holding
more than a prefix of the submissions (a notification sequence with a hole no one can fill, a
change resting on one that never happened). The caller reloads from the store, then resumes.
"""

from __future__ import annotations

import asyncio

from coinwire.aio import LoopQueue
from coinwire.core.errors import CoinwireError
from coinwire.store.codec import ChangeSet, Rows, encode
from coinwire.store.store import Store

__all__ = ["GroupCommitWriter"]

_Item = tuple[Rows, "asyncio.Future[None]"]


class GroupCommitWriter:
    """Serialises all writes to one Store through one task; `commits` counts transactions committed."""

    def __init__(self, store: Store, max_batch: int = 256) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.store = store
        self.max_batch = max_batch
        self.submitted = 0  # ChangeSets accepted by submit()
        self.commits = 0  # transactions committed (fewer than submitted when batching works)
        self.fallbacks = 0  # merged transactions that failed and were retried one by one
        self._queue: LoopQueue[_Item | None] = LoopQueue()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop start() ran on: submit's futures belong to it
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.halted: BaseException | None = None  # why the writer fails everything until resume() (the database went away)

    def resume(self) -> None:
        """Try submissions again after a halt (the caller has reloaded its state from the store)."""
        self.halted = None

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._loop = asyncio.get_running_loop()
            self._queue = LoopQueue(self._loop)  # empty: nothing is accepted while stopped
            self._task = self._loop.create_task(self._run(), name="coinwire-store-writer")

    async def close(self) -> None:
        """Stop accepting changes, commit everything already submitted, then stop."""
        if self._task is None:
            return
        self._closing = True
        self._queue.put_nowait(None)
        task, self._task = self._task, None
        await task

    async def submit(self, changes: ChangeSet) -> None:
        """Return once `changes` are committed; raise what its own transaction raised.

        The ChangeSet is encoded now, so records mutated after this call are stored as
        they were at the call. An empty ChangeSet returns at once.
        """
        loop = self._loop
        if loop is None or self._task is None or self._task.done() or self._closing:
            raise RuntimeError("GroupCommitWriter is not running: await writer.start() first")
        if self.halted is not None:
            raise self.halted
        rows = encode(changes)
        if not rows:
            return
        future: asyncio.Future[None] = loop.create_future()
        self.submitted += 1
        self._queue.put_nowait((rows, future))
        await future

    async def _run(self) -> None:
        queue = self._queue
        batch: list[_Item] = []
        try:
            while True:
                item = await queue.get()
                stop = item is None
                if item is not None:
                    batch.append(item)
                    # let the loop run once: requests already read off their sockets reach
                    # the queue and share this commit (measured in-process with 8 clients:
                    # ~5 -> ~8 orders a commit, SQLite CPU per order -20%; through sockets the
                    # clients' two halves take turns and a commit holds ~4)
                    await asyncio.sleep(0)
                while not stop and len(batch) < self.max_batch and not queue.empty():
                    item = queue.get_nowait()
                    stop = item is None
                    if item is not None:
                        batch.append(item)
                if batch:
                    await self._commit(batch)
                    batch = []
                if stop:
                    return
        finally:
            # Only reached with work pending if this task was cancelled: fail it loudly.
            leftovers = batch + [item for item in _drain(queue) if item is not None]
            for _, future in leftovers:
                if not future.done():
                    future.set_exception(RuntimeError("the store writer stopped before committing these changes"))

    async def _commit(self, batch: list[_Item]) -> None:
        if self.halted is not None:
            for _, future in batch:
                _resolve(future, self.halted)
            return
        if len(batch) > 1:
            try:
                await self.store.apply_rows(Rows.merge(rows for rows, _ in batch))
            except Exception:  # noqa: BLE001 - isolate the culprit below, one transaction each
                self.fallbacks += 1
            else:
                self.commits += 1
                for _, future in batch:
                    _resolve(future, None)
                return
        for rows, future in batch:
            if self.halted is not None:
                _resolve(future, self.halted)
                continue
            try:
                await self.store.apply_rows(rows)
            except Exception as exc:  # noqa: BLE001 - delivered to its submitter
                if not isinstance(exc, CoinwireError):  # not a refusal of these rows: the database went away
                    self.halted = exc
                _resolve(future, exc)
            else:
                self.commits += 1
                _resolve(future, None)


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    """Settle a submitter's future unless it gave up waiting (cancelled)."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _drain(queue: LoopQueue[_Item | None]) -> list[_Item | None]:
    items: list[_Item | None] = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
