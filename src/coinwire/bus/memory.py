"""MemoryBus: the in-process default Bus, with an in-memory durable log for order and fill subjects.

Why queues and not inline delivery: awaiting handlers inside `publish` would be simplest and
keep order, but one slow handler (a strategy, a WebSocket push) would then stall the feed
and every other subscriber, concurrent publishers could run one subscription's handler
twice at once, and a handler that publishes would recurse. So `publish` only appends to
each matching subscription's inbox (a deque; see `coinwire.bus.base.Inbox`) and returns;
each subscription's own task delivers in order, one call at a time. An inline subscription
(`inline=True`) is the exception its subscriber asks for: its plain function runs inside
`publish`, so it must not block or publish. The (subject, message type) -> inboxes routing is
cached, so a publish costs a dict lookup plus one append (or call) per subscriber (several
hundred thousand publishes a second on one core; see benchmarks/).

The durable log keeps each order and fill message msgpack-encoded (as NatsBus sends it):
bytes are invisible to Python's cyclic garbage collector, whereas a log of message objects
made every full collection walk the whole order history (200 ms pauses after a few minutes
of trading). Like a JetStream stream with `max_msgs`, it keeps the newest `max_log`
messages; replay from an older sequence starts at the oldest one kept.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence

from coinwire.bus.base import DEFAULT_MAX_PENDING, Handler, Inbox, InlineHandler, InlineInbox, check_message, inbox_for
from coinwire.bus.subjects import is_durable, matcher, validate_namespace, validate_pattern, validate_subject
from coinwire.messages import Message, decode, encode

__all__ = ["MemoryBus", "MemorySubscription"]

_MAX_ROUTES = 65_536  # distinct subjects remembered before the routing cache starts over
_YIELD_EVERY = 1024  # a publisher in a tight loop lets subscribers run this often
DEFAULT_MAX_LOG = 50_000  # durable messages kept for replay (~0.6 KB each: ~30 MB at most)


class MemorySubscription:
    """A MemoryBus subscription; `inbox` exposes `pending` and `dropped` counts."""

    __slots__ = ("pattern", "inbox", "_bus")

    def __init__(self, bus: MemoryBus, inbox: Inbox | InlineInbox) -> None:
        self.pattern = inbox.pattern
        self.inbox = inbox
        self._bus = bus

    async def unsubscribe(self) -> None:
        self.inbox.close()
        self._bus._forget(self)


class MemoryBus:
    """In-process bus; `namespace` is accepted for parity with NatsBus and otherwise unused."""

    def __init__(
        self, namespace: str = "coinwire", *, max_pending: int = DEFAULT_MAX_PENDING, max_log: int = DEFAULT_MAX_LOG
    ) -> None:
        if max_log < 1:
            raise ValueError("max_log must be at least 1")
        self.namespace = validate_namespace(namespace)
        self._max_pending = max_pending
        self._subscriptions: list[MemorySubscription] = []
        self._routes: dict[tuple[str, type], tuple[tuple[Inbox | InlineInbox, ...], bool]] = {}  # by subject and message type
        self._log: deque[tuple[int, str, bytes]] = deque(maxlen=max_log)  # (seq, subject, encoded message)
        self._last_seq = 0
        self._published = 0
        self._closed = False

    async def start(self) -> None:
        """Nothing to connect; present so callers treat every bus alike."""
        self._closed = False

    async def close(self) -> None:
        """Stop every subscription (queued messages are dropped); the durable log is kept."""
        self._closed = True
        subscriptions, self._subscriptions = self._subscriptions, []
        self._routes.clear()
        await asyncio.gather(*(s.inbox.stop() for s in subscriptions))

    async def ping(self) -> bool:
        return not self._closed

    @property
    def connected(self) -> bool:
        return not self._closed

    async def publish(self, subject: str, message: Message) -> int | None:
        seq = self._deliver(subject, message)
        self._published += 1
        if self._published % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        return seq

    async def publish_many(self, messages: Sequence[tuple[str, Message]]) -> list[int | None]:
        seqs = [self._deliver(subject, message) for subject, message in messages]  # no await between them
        before = self._published
        self._published += len(seqs)
        if self._published // _YIELD_EVERY != before // _YIELD_EVERY:
            await asyncio.sleep(0)
        return seqs

    def _deliver(self, subject: str, message: Message) -> int | None:
        """Log a durable message and hand it to every matching subscription; its sequence number (None: not durable)."""
        if self._closed:
            raise RuntimeError("MemoryBus is closed")
        key = (subject, type(message))
        route = self._routes.get(key)
        if route is None:  # a route is cached per message type: a type is checked once
            check_message(message)
            route = self._route(key)
        inboxes, durable = route
        seq = None
        if durable:
            seq = self._last_seq = self._last_seq + 1
            self._log.append((seq, subject, encode(message)))
        for inbox in inboxes:
            inbox.put(subject, message)
        return seq

    async def subscribe(
        self, pattern: str, handler: Handler | InlineHandler, *, types: frozenset[type] | None = None, inline: bool = False
    ) -> MemorySubscription:
        validate_pattern(pattern)
        if self._closed:
            raise RuntimeError("MemoryBus is closed")
        subscription = MemorySubscription(self, inbox_for(pattern, handler, self._max_pending, types, inline))
        self._subscriptions.append(subscription)
        self._routes.clear()
        return subscription

    async def replay(self, pattern: str, from_seq: int = 1, limit: int | None = None) -> list[tuple[int, str, Message]]:
        selects = matcher(pattern)
        log = self._log
        skip = max(0, from_seq - log[0][0]) if log else 0  # sequences in the log are consecutive
        matching = ((seq, subj, data) for seq, subj, data in itertools.islice(log, skip, None) if selects(subj))
        return [(seq, subj, decode(data)) for seq, subj, data in itertools.islice(matching, limit)]

    async def last_seq(self) -> int:
        return self._last_seq

    async def last_account_seq(self, account_id: int) -> int | None:
        return None  # this bus lives and dies with its process: a gateway started again finds nothing to repair

    def _route(self, key: tuple[str, type]) -> tuple[tuple[Inbox | InlineInbox, ...], bool]:
        """The inboxes a subject's messages of one type go to: a subscription's `types` costs nothing per message."""
        subject, kind = key
        validate_subject(subject)
        inboxes = tuple(
            s.inbox for s in self._subscriptions
            if matcher(s.pattern)(subject) and (s.inbox.types is None or kind in s.inbox.types)
        )
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        route = self._routes[key] = (inboxes, is_durable(subject))
        return route

    def _forget(self, subscription: MemorySubscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            self._routes.clear()
