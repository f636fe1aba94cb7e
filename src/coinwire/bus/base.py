"""The Bus port (publish, subscribe, replay typed messages on subjects) and the ordered inbox both adapters share.

Delivery contract, identical for every adapter:

- `subscribe(pattern, handler)` calls `handler(subject, message)` for each matching message,
  one call at a time per subscription, in publish order; a handler that raises is logged
  and the subscription carries on.
- Each subscription has its own inbox drained by its own task, so a slow handler delays
  only itself, never the publisher or other subscribers. An inbox holding `max_pending`
  undelivered messages drops new ones (counted in `dropped`, logged), like a NATS slow
  consumer, instead of growing until the process runs out of memory.
- `subscribe(pattern, handler, types=...)` delivers only messages of those types (their
  exact classes): a subscriber of one kind of message on a wide pattern never wakes for
  the others.
- `subscribe(pattern, handler, inline=True)` takes a plain function instead, called at once
  where the message arrives (inside `publish` in process, in the network reader over NATS),
  in order; it must not block. For handlers that only hand the message on (the API's
  notifier queueing bytes to sockets): no inbox, no task, no coroutine per message.
- `publish_many` sends several messages in order with no other publish of the process
  between them (one command's notifications stay together, in their sequence order).
- Messages on durable subjects (`coinwire.messages.DURABLE_SUBJECTS`) get a bus-wide,
  increasing sequence number and can be replayed from any sequence, a page at a time
  (`limit`): a reader that resumes from the last sequence it got plus one misses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import typing
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from coinwire.messages import Message

__all__ = ["Bus", "Subscription", "Handler", "InlineHandler", "Inbox", "InlineInbox", "inbox_for", "DEFAULT_MAX_PENDING", "check_message"]

Handler = Callable[[str, Message], Awaitable[None]]
InlineHandler = Callable[[str, Message], None]

DEFAULT_MAX_PENDING = 500_000
_YIELD_EVERY = 1024  # let other tasks run even when handlers never suspend

log = logging.getLogger("coinwire.bus")

MESSAGE_TYPES: tuple[type, ...] = typing.get_args(Message)


def check_message(message: object) -> None:
    """Refuse anything that is not a `coinwire.messages` type: only those cross a real wire."""
    if not isinstance(message, MESSAGE_TYPES):
        raise TypeError(f"bus messages must be coinwire.messages types, got {type(message).__name__}")


@runtime_checkable
class Subscription(Protocol):
    """A live subscription; after `unsubscribe()` returns no new handler call starts."""

    pattern: str

    async def unsubscribe(self) -> None: ...


@runtime_checkable
class Bus(Protocol):
    """Typed messages on subjects; in-process (`MemoryBus`) or over NATS JetStream (`NatsBus`)."""

    namespace: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    @property
    def connected(self) -> bool:
        """Whether the bus is reachable now, without I/O (a NATS connection that dropped and is reconnecting: False)."""
        ...

    async def publish(self, subject: str, message: Message) -> int | None:
        """Send `message`; return its sequence number on durable subjects, None otherwise."""
        ...

    async def publish_many(self, messages: Sequence[tuple[str, Message]]) -> list[int | None]:
        """Send (subject, message) pairs in order, with no other publish of this process between them; their sequence numbers.

        One command's notifications (an order's fills, then the order) keep their account's
        `seq` order on the bus only if no other command's can come between them.
        """
        ...

    async def subscribe(
        self, pattern: str, handler: Handler | InlineHandler, *, types: frozenset[type] | None = None, inline: bool = False
    ) -> Subscription: ...

    async def replay(self, pattern: str, from_seq: int = 1, limit: int | None = None) -> list[tuple[int, str, Message]]:
        """Durable messages matching `pattern` with sequence >= `from_seq`, oldest first; at most `limit` of them (None: all)."""
        ...

    async def last_seq(self) -> int:
        """The sequence number of the newest durable message (0 when there is none)."""
        ...

    async def last_account_seq(self, account_id: int) -> int | None:
        """The highest account `seq` among the account's newest order, fill and position notifications this bus keeps (0: none).

        None: the bus cannot tell. A memory bus dies with its process, so there is nothing a restarted
        gateway could repair on it (services/lost_notifications.py); a stream with age or size limits
        that keeps nothing of the account may have dropped what it had.
        """
        ...


class _Delivery:
    """What every subscription's inbox has: its pattern and types, a drop count, open or closed."""

    __slots__ = ("pattern", "types", "dropped", "_closed")

    def __init__(self, pattern: str, types: frozenset[type] | None) -> None:
        self.pattern = pattern
        self.types = types  # None: every message type
        self.dropped = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed


class Inbox(_Delivery):
    """One subscription's FIFO of (subject, message), drained by one task that awaits the handler.

    A deque plus one future to wake the drainer is several times cheaper per message than an
    `asyncio.Queue` (or an `asyncio.Event`, whose every wait looks up the running loop: a
    `getpid()` system call on Python 3.11), which matters at market-data rates. `close()`
    discards what is still queued; a handler call already running is left to finish (so a
    handler may unsubscribe itself).
    """

    __slots__ = ("_handler", "_max_pending", "_queue", "_waiter", "_loop", "_task")

    def __init__(
        self, pattern: str, handler: Handler, max_pending: int = DEFAULT_MAX_PENDING, types: frozenset[type] | None = None
    ) -> None:
        super().__init__(pattern, types)
        self._handler = handler
        self._max_pending = max_pending
        self._queue: deque[tuple[str, Message]] = deque()
        self._waiter: asyncio.Future[None] | None = None  # set while the drainer waits for messages
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=f"bus-inbox:{pattern}")

    @property
    def pending(self) -> int:
        return len(self._queue)

    def put(self, subject: str, message: Message) -> None:
        """Queue one message without blocking (called by publishers and network readers)."""
        if self._closed or (self.types is not None and type(message) not in self.types):
            return
        if len(self._queue) >= self._max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100_000 == 0:
                log.warning("bus subscription %r is a slow consumer: %d messages dropped", self.pattern, self.dropped)
            return
        self._queue.append((subject, message))
        self._wake()

    def close(self) -> None:
        """Stop delivering: nothing queued is delivered after this returns."""
        self._closed = True
        self._queue.clear()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def stop(self) -> None:
        """Close and wait for the draining task to end, cancelling a handler still running."""
        self.close()
        if self._task is not asyncio.current_task():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        queue, handler = self._queue, self._handler
        delivered = 0
        while not self._closed:
            while queue:
                subject, message = queue.popleft()
                try:
                    await handler(subject, message)
                except Exception:
                    log.exception("bus handler for %r failed on %s", self.pattern, subject)
                if self._closed:
                    return
                delivered += 1
                if delivered % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            if not self._closed:
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None


class InlineInbox(_Delivery):
    """An `Inbox` for an inline subscription: `put` calls the handler there and then (nothing waits, nothing drops)."""

    __slots__ = ("_handler",)

    def __init__(self, pattern: str, handler: InlineHandler, types: frozenset[type] | None = None) -> None:
        super().__init__(pattern, types)
        self._handler = handler

    @property
    def pending(self) -> int:
        return 0

    def put(self, subject: str, message: Message) -> None:
        if self._closed or (self.types is not None and type(message) not in self.types):
            return
        try:
            self._handler(subject, message)
        except Exception:
            log.exception("bus handler for %r failed on %s", self.pattern, subject)

    def close(self) -> None:
        self._closed = True

    async def stop(self) -> None:
        self.close()


def inbox_for(
    pattern: str, handler: Handler | InlineHandler, max_pending: int, types: frozenset[type] | None, inline: bool
) -> Inbox | InlineInbox:
    """The inbox a subscription delivers through: ordered and drained by its own task, or inline."""
    if inline:
        return InlineInbox(pattern, handler, types)  # type: ignore[arg-type]
    return Inbox(pattern, handler, max_pending, types)  # type: ignore[arg-type]
