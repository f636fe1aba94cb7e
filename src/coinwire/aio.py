"""A FIFO for one event loop, cheaper per item than `asyncio.Queue`: a deque and futures for waiting getters.

On the order path each request crosses three queues (the WebSocket's receive queue, the
group-commit writer's, the bus inboxes). `asyncio.Queue` and `asyncio.Event` look up the
running loop for every wait, and on Python 3.11 that lookup is a `getpid()` system call;
they also keep bookkeeping (`join`, size bounds) none of these users need. This queue is
bound to the loop that first waits on it (or the one given), is unbounded, and wakes one
getter per item put.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

__all__ = ["LoopQueue"]

T = TypeVar("T")


class LoopQueue(Generic[T]):
    __slots__ = ("_items", "_getters", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._items: deque[T] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._loop = loop

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        if self._getters:
            self._wake_one()

    async def get(self) -> T:
        while not self._items:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            getter = loop.create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                if not getter.cancelled() and self._items:
                    self._wake_one()  # woken, then cancelled before taking the item: the next getter takes it
                raise
        return self._items.popleft()

    def get_nowait(self) -> T:
        """The oldest item; IndexError when empty."""
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return
