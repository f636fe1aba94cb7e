"""An account import's progress onto the bus (`import.<account>`), in the order the import made it.

Why: the import runs in the gateway's process, while the users following it may be connected
to any api process (an api replica apart from the gateway included); every api process's
notifier takes `ImportProgress` off the bus and pushes it to its own connections whose user
may view the account. One path in one process too: the all-in-one server's memory bus.

AccountImports calls its listeners synchronously, and a bus publish is a coroutine: the
messages wait in a queue that one task publishes in order, so a `running` never overtakes
the `done` after it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from coinwire.bus.base import Bus
from coinwire.messages import ImportProgress, import_subject

__all__ = ["ImportProgressPublisher"]

log = structlog.get_logger("coinwire.imports")


class ImportProgressPublisher:
    """AccountImports' listener: each progress message published on `import.<account>`, one after another."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def __call__(self, view: dict[str, Any]) -> None:
        """Queue one progress message; the publishing task starts with the first."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="import-progress-publisher")
        self._queue.put_nowait(view)

    async def _run(self) -> None:
        while True:
            view = await self._queue.get()
            account_id = int(view["account_id"])
            try:
                await self.bus.publish(import_subject(account_id), ImportProgress(account_id, view))
            except Exception:
                log.warning("import progress not published", account_id=account_id, exc_info=True)
            finally:
                self._queue.task_done()

    async def idle(self) -> None:
        """Wait until every queued message was published (tests)."""
        await self._queue.join()

    async def close(self) -> None:
        """Stop publishing (the server stops: a message still queued is caught up by status reads)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
