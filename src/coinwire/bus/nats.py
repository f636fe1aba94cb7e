"""NatsBus: the Bus over NATS, with order and fill subjects kept in a JetStream stream for replay.

On the wire every subject is prefixed `<namespace>.` (stripped on receipt), so several
deployments or test runs share one server without cross-talk. Ephemeral subjects (market
data, status, logs) use core NATS publish; durable ones (`DURABLE_SUBJECTS`) go through
JetStream, whose ack carries the stream sequence `publish` returns; `publish_many` sends a
batch's messages one after another under a lock and only then waits for their acks, so two
commands' notifications never interleave in the stream. Live subscriptions are
core NATS subscriptions, which see JetStream-published messages too, fed into the same
ordered per-subscription `Inbox` the MemoryBus uses. `replay` reads through a short-lived
pull consumer starting at the requested stream sequence. Payloads are msgpack
(`coinwire.messages.encode`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js import JetStreamContext, api

from coinwire.bus.base import DEFAULT_MAX_PENDING, Handler, Inbox, InlineHandler, InlineInbox, check_message, inbox_for
from coinwire.bus.subjects import intersect, is_durable, matcher, validate_namespace, validate_pattern, validate_subject
from coinwire.messages import DURABLE_SUBJECTS, FillEvent, Message, OrderUpdate, decode, encode

__all__ = ["NatsBus", "NatsSubscription", "stream_name"]

log = logging.getLogger("coinwire.bus.nats")

_FETCH_BATCH = 1024
# seconds between reconnect attempts to one server (nats-py adds jitter; its default is 2): a restarted NATS is back
# within a fraction of a gateway's lease, whose renewals pause while the bus is away (services/gateway_leases.py)
RECONNECT_WAIT = 0.5
PING_INTERVAL = 5  # seconds between pings of an idle connection; two unanswered and it counts as dropped (nats-py: 120)


# first tokens of the subjects that carry bytes, not coinwire.messages (bus/requests.py): typed subscriptions skip them
RAW_SUBJECTS: tuple[str, ...] = ("gwapi", "gwevents", "gwparts")  # bytes of api/forwarding.py, never typed messages


def stream_name(namespace: str) -> str:
    """The JetStream stream holding a namespace's durable subjects."""
    return f"{validate_namespace(namespace)}_durable"


class NatsSubscription:
    """A NatsBus subscription: a core NATS subscription feeding an ordered `Inbox`."""

    __slots__ = ("pattern", "inbox", "_bus", "_sub")

    def __init__(self, bus: NatsBus, inbox: Inbox | InlineInbox, sub: CoreSubscription) -> None:
        self.pattern = inbox.pattern
        self.inbox = inbox
        self._bus = bus
        self._sub = sub

    async def unsubscribe(self) -> None:
        self.inbox.close()
        self._bus._forget(self)
        with contextlib.suppress(nats.errors.Error):  # already gone with its connection
            await self._sub.unsubscribe()


class NatsBus:
    """Bus over NATS JetStream at `url`; call `start()` before use and `close()` after."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        namespace: str = "coinwire",
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        connect_timeout: float = 5.0,
        request_timeout: float = 5.0,
        max_age: float = 0.0,
        max_bytes: int = 0,
    ) -> None:
        self.url = url
        self.namespace = validate_namespace(namespace)
        self.stream = stream_name(namespace)
        self._prefix = f"{namespace}."
        self._max_pending = max_pending
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self.max_age = max_age  # the stream's retention: seconds and bytes of durable messages kept (0: no limit)
        self.max_bytes = max_bytes
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._subscriptions: list[NatsSubscription] = []
        self._sending = asyncio.Lock()  # one `publish_many` sends at a time (their acknowledgements are awaited outside)

    async def start(self) -> None:
        """Connect (failing within `connect_timeout`) and make sure the durable stream exists."""
        if self._nc is not None:
            return
        nc = Client()
        try:
            await asyncio.wait_for(
                nc.connect(
                    self.url,
                    name=f"coinwire:{self.namespace}",
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    max_reconnect_attempts=-1,  # once up, keep reconnecting; publishes buffer meanwhile
                    ping_interval=PING_INTERVAL,  # a link cut without a reset is seen as a drop (then reconnected)
                    reconnect_time_wait=RECONNECT_WAIT,  # type: ignore[arg-type]  # seconds: a float works (asyncio.sleep)
                ),
                timeout=self._connect_timeout,
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            raise ConnectionError(f"cannot connect to NATS at {self.url}: {exc or type(exc).__name__}") from exc
        self._nc = nc
        self._js = nc.jetstream(timeout=self._request_timeout)
        await self._ensure_stream()

    async def close(self) -> None:
        """Stop every subscription, flush what was published, disconnect. The stream stays."""
        subscriptions, self._subscriptions = self._subscriptions, []
        await asyncio.gather(*(s.inbox.stop() for s in subscriptions))
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
                await nc.flush(timeout=self._request_timeout)  # type: ignore[arg-type]  # seconds: a float works
            await nc.close()

    async def ping(self) -> bool:
        nc = self._nc
        if nc is None or not nc.is_connected:
            return False
        try:
            await nc.flush(timeout=self._request_timeout)  # type: ignore[arg-type]  # seconds: a float works
        except (TimeoutError, nats.errors.Error):
            return False
        return True

    @property
    def connected(self) -> bool:
        """Connected now (not closed, not between a drop and the reconnect)."""
        nc = self._nc
        return nc is not None and nc.is_connected

    async def publish(self, subject: str, message: Message) -> int | None:
        if is_durable(subject):
            return (await self.publish_many(((subject, message),)))[0]
        nc = self._connection()
        validate_subject(subject)
        check_message(message)
        await nc.publish(self._prefix + subject, encode(message))
        return None

    async def publish_many(self, messages: Sequence[tuple[str, Message]]) -> list[int | None]:
        """Send every message before waiting for any acknowledgement, under one lock: no other batch's sends come between."""
        nc = self._connection()
        js = self._jetstream()
        for subject, message in messages:
            validate_subject(subject)
            check_message(message)
        acks: list[asyncio.Future[api.PubAck] | None] = []
        async with self._sending:
            for subject, message in messages:
                if is_durable(subject):
                    acks.append(await js.publish_async(self._prefix + subject, encode(message), stream=self.stream,
                                                       headers=_message_id(message)))
                else:
                    await nc.publish(self._prefix + subject, encode(message))
                    acks.append(None)
        seqs: list[int | None] = []
        for ack in acks:
            seqs.append(None if ack is None else (await asyncio.wait_for(ack, self._request_timeout)).seq)
        return seqs

    async def subscribe(
        self, pattern: str, handler: Handler | InlineHandler, *, types: frozenset[type] | None = None, inline: bool = False
    ) -> NatsSubscription:
        validate_pattern(pattern)
        nc = self._connection()
        inbox = inbox_for(pattern, handler, self._max_pending, types, inline)
        cut = len(self._prefix)
        raw_prefixes = tuple(self._prefix + p + "." for p in RAW_SUBJECTS)

        async def receive(msg: Msg) -> None:
            if msg.subject.startswith(raw_prefixes):  # request-reply in bytes (bus/requests.py), not a typed message
                return
            try:
                message = decode(msg.data)
            except msgspec.DecodeError:
                log.warning("dropping undecodable message on %s", msg.subject)
                return
            inbox.put(msg.subject[cut:], message)

        sub = await nc.subscribe(self._prefix + pattern, cb=receive, pending_msgs_limit=self._max_pending)
        subscription = NatsSubscription(self, inbox, sub)
        self._subscriptions.append(subscription)
        # one round trip: once this returns the server has the subscription, so what another process publishes next
        # reaches it (a notifier started just before an import's first progress missed it under load)
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await nc.flush(timeout=self._request_timeout)  # type: ignore[arg-type]  # seconds: a float works
        return subscription

    async def replay(self, pattern: str, from_seq: int = 1, limit: int | None = None) -> list[tuple[int, str, Message]]:
        validate_pattern(pattern)
        js = self._jetstream()
        filters = [f for f in (intersect(pattern, d) for d in DURABLE_SUBJECTS) if f is not None]
        if not filters:
            return []  # no durable subject matches: nothing was kept
        # One filter narrows server-side; two (a wildcard first token) need a multi-filter
        # consumer, which NATS < 2.10 ignores, so read every durable subject and match here.
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.NONE,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(from_seq, 1),
            filter_subject=self._prefix + filters[0] if len(filters) == 1 else None,
            inactive_threshold=60.0,
            mem_storage=True,
        )
        consumer = await js.add_consumer(self.stream, config)
        try:
            return await self._read(consumer, matcher(pattern), limit)
        finally:
            with contextlib.suppress(nats.errors.Error):
                await js.delete_consumer(self.stream, consumer.name)

    async def last_seq(self) -> int:
        info = await self._jetstream().stream_info(self.stream)
        return info.state.last_seq or 0

    async def last_account_seq(self, account_id: int) -> int | None:
        js, top = self._jetstream(), 0
        for kind in ("order", "fill", "position"):  # each kind's newest message (the stream keeps them in publish order)
            try:
                found = await js.get_last_msg(self.stream, f"{self._prefix}{kind}.{account_id}.>")
            except nats.js.errors.NotFoundError:
                continue
            top = max(top, getattr(decode(found.data or b""), "seq", 0))
        if top == 0 and (self.max_age or self.max_bytes):
            return None  # nothing kept: never published, or dropped by the stream's limits; which one cannot be told
        return top

    async def delete_stream(self) -> None:
        """Remove this namespace's stream and every durable message in it (tests, decommissioning)."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._jetstream().delete_stream(self.stream)

    async def _read(
        self, consumer: api.ConsumerInfo, selects: Callable[[str], bool], limit: int | None
    ) -> list[tuple[int, str, Message]]:
        remaining = consumer.num_pending or 0  # what the consumer holds now: a snapshot
        wanted = remaining if limit is None else limit
        out: list[tuple[int, str, Message]] = []
        if remaining == 0 or wanted <= 0:
            return out
        psub = await self._jetstream().pull_subscribe_bind(consumer=consumer.name, stream=self.stream)
        cut = len(self._prefix)
        try:
            while remaining > 0 and len(out) < wanted:
                # with one server-side filter every message matches: fetch no more than the page needs
                batch = min(remaining, _FETCH_BATCH, wanted - len(out)) if consumer.config.filter_subject else min(remaining, _FETCH_BATCH)
                for msg in await psub.fetch(batch, timeout=self._request_timeout):
                    remaining -= 1
                    subject = msg.subject[cut:]
                    if selects(subject) and len(out) < wanted:
                        out.append((msg.metadata.sequence.stream, subject, decode(msg.data)))
        finally:
            await psub.unsubscribe()
        return out

    async def _ensure_stream(self) -> None:
        js = self._jetstream()
        config = api.StreamConfig(
            name=self.stream,
            subjects=[self._prefix + s for s in DURABLE_SUBJECTS],
            storage=api.StorageType.FILE,
            max_age=self.max_age or None,  # nats-py sends seconds as nanoseconds; None: no limit
            max_bytes=self.max_bytes or -1,
        )
        try:
            info = await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            return
        # a stream made with other subjects or limits (a changed bus_max_age or bus_max_bytes) takes this process's
        if (set(info.config.subjects or ()) != set(config.subjects or ()) or (info.config.max_age or 0) != (config.max_age or 0)
                or (info.config.max_bytes or -1) != config.max_bytes):
            await js.update_stream(config)

    def connection(self) -> Client:
        """The started NATS connection (request-reply in bus/requests.py shares it)."""
        return self._connection()

    def _connection(self) -> Client:
        if self._nc is None:
            raise RuntimeError("NatsBus is not started: call `await bus.start()` first")
        return self._nc

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("NatsBus is not started: call `await bus.start()` first")
        return self._js

    def _forget(self, subscription: NatsSubscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    async def _on_disconnected(self) -> None:
        if self._nc is None:  # our own close(), not an outage
            return
        log.warning("nats disconnected from %s", self.url)

    async def _on_reconnected(self) -> None:
        log.info("nats reconnected to %s", self.url)


def _message_id(message: Message) -> dict[str, str] | None:
    """`Nats-Msg-Id: <account>.<seq>` for an order or fill notification: a batch published again after its acknowledgement
    was lost (services/notify_queue.py) is dropped by JetStream within its duplicate window (2 minutes), not kept twice.
    Positions have none: a mark-only update repeats its position's last seq by design."""
    kind = type(message)
    if kind is OrderUpdate or kind is FillEvent:
        seq = message.seq  # type: ignore[union-attr]
        if seq:
            return {"Nats-Msg-Id": f"{message.account_id}.{seq}"}  # type: ignore[union-attr]
    return None
