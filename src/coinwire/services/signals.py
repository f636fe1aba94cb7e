"""Strategy signals of paper and live runs: stored once per change and published on `signal.<run>.<name>`.

Why a second de-duplication behind the runtime's: the runtime drops a signal equal to the last
one of its name within one process; a run resumed by another process (or a strategy that sends
the same value after a restart) must not store it again either, so the first signal of each
(run, name) here is compared with the newest stored one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from coinwire.bus.base import Bus
from coinwire.messages import Signal, signal_subject
from coinwire.store.analysis import add_signal, last_signal
from coinwire.store.store import Store

__all__ = ["Signals"]

log = structlog.get_logger("coinwire.signals")
_MISSING = object()
_S = 1_000_000_000


class Signals:
    """`sink(run_id, owner)` gives a runtime its `signal_sink`; `settled()` waits for what was queued."""

    def __init__(self, store: Store, bus: Bus) -> None:
        self.store = store
        self.bus = bus
        self._last: dict[tuple[str, str], Any] = {}
        self._queue: list[tuple[str, int | None, str, Any, int]] = []
        self._task: asyncio.Task[None] | None = None

    def sink(self, run_id: str, owner_id: int | None) -> Callable[[str, Any, int], None]:
        def put(name: str, value: Any, time_ns: int) -> None:
            self.put(run_id, owner_id, name, value, time_ns)

        return put

    def put(self, run_id: str, owner_id: int | None, name: str, value: Any, time_ns: int) -> None:
        """Queue one signal (the runtime already dropped a repeat of its last one)."""
        self._queue.append((run_id, owner_id, name, value, time_ns))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def settled(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def _drain(self) -> None:
        while self._queue:
            run_id, owner_id, name, value, time_ns = self._queue.pop(0)
            try:
                await self._one(run_id, owner_id, name, value, time_ns)
            except Exception:  # a store or bus outage loses this signal's record, not the run
                log.exception("signal not recorded", run_id=run_id, name=name)

    async def _one(self, run_id: str, owner_id: int | None, name: str, value: Any, time_ns: int) -> None:
        key = (run_id, name)
        last = self._last.get(key, _MISSING)
        if last is _MISSING:
            stored = await last_signal(self.store, run_id, name)
            last = stored.value if stored is not None else _MISSING
        if last is not _MISSING and last == value and type(last) is type(value):
            return
        self._last[key] = value
        await add_signal(self.store, owner_id, run_id, name, time_ns, value)
        await self.bus.publish(signal_subject(run_id, name), Signal(run_id=run_id, name=name, value=value, time=time_ns // _S,
                                                                  owner_id=owner_id))
