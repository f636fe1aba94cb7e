"""Request-reply over the bus in raw bytes: a call sent to whichever one process serves a subject, its answer back.

The typed `Bus` carries `coinwire.messages` to every subscriber; forwarded API calls
(api/forwarding.py, docs/SCALING.md "Commands across processes") need the other shape: one
request, exactly one of the serving processes answers it (a queue group), and the caller learns
at once when nobody serves the subject (NATS's "no responders"), so it can wait and retry.
`NatsRequests` speaks it over a `NatsBus`'s connection; `MemoryRequests` in one process (tests,
the all-in-one server). Both carry bytes: the callers choose the encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription

from coinwire.bus.nats import NatsBus
from coinwire.bus.subjects import validate_pattern, validate_subject

__all__ = ["Requests", "Responder", "RequestHandler", "NatsRequests", "MemoryRequests", "NoResponder", "requests_for"]

log = structlog.get_logger("coinwire.bus.requests")

# the request's bytes -> the answer's bytes (None: no answer, the caller times out as if nobody served the subject)
RequestHandler = Callable[[bytes], Awaitable[bytes | None]]


class NoResponder(Exception):
    """No process serves the subject right now (or none answered within the timeout): wait and retry."""

    @property
    def timed_out(self) -> bool:
        """A process had the request but answered nothing in time (it may still be running it), not "nobody serves it"."""
        return bool(self.args) and self.args[0] == "TimeoutError"


class Responder(Protocol):
    """A served subject; after `stop()` no new request reaches the handler (those under way still answer)."""

    async def stop(self) -> None: ...


class Requests(Protocol):
    """Request-reply in bytes on subjects under the bus's namespace."""

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """The answer of one process serving `subject`; `NoResponder` when none serves it or none answered in `timeout`."""
        ...

    async def serve(self, subject: str, handler: RequestHandler, queue: str) -> Responder:
        """Answer requests on `subject` (a pattern): each request goes to one member of `queue` among the serving processes."""
        ...

    async def emit(self, subject: str, data: bytes) -> None:
        """Send `data` to every listener of `subject`, no answer (not kept)."""
        ...

    async def listen(self, subject: str, handler: Callable[[str, bytes], None]) -> Responder:
        """Call `handler(subject, data)` inline for each `emit` on `subject` (a pattern), in the order sent."""
        ...


class _NatsResponder:
    def __init__(self, sub: CoreSubscription, requests: NatsRequests) -> None:
        self._sub = sub
        self._requests = requests

    async def stop(self) -> None:
        """Unsubscribe, and wait until the server knows: a stepped-down gateway is not sent the next request."""
        with contextlib.suppress(nats.errors.Error):
            await self._sub.unsubscribe()
        await self._requests.registered()


class NatsRequests:
    """Request-reply over a started `NatsBus`'s connection (subjects prefixed with its namespace)."""

    def __init__(self, bus: NatsBus) -> None:
        self.bus = bus
        self._prefix = f"{bus.namespace}."
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        validate_subject(subject)
        nc = self.bus.connection()
        try:
            msg = await nc.request(self._prefix + subject, data, timeout=timeout)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, nats.errors.ConnectionClosedError,
                nats.errors.ConnectionReconnectingError) as exc:
            raise NoResponder(type(exc).__name__) from exc
        return msg.data

    async def serve(self, subject: str, handler: RequestHandler, queue: str) -> Responder:
        validate_pattern(subject)
        nc = self.bus.connection()
        tasks = self._tasks

        async def answer(msg: Msg) -> None:
            try:
                reply = await handler(msg.data)
                if reply is not None and msg.reply:
                    await msg.respond(reply)
            except Exception:  # a bug in the handler: logged, the caller times out and retries
                log.exception("a request's handler failed", subject=msg.subject)

        async def receive(msg: Msg) -> None:  # NATS awaits this per message: each request runs in its own task
            task = asyncio.create_task(answer(msg))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        sub = await nc.subscribe(self._prefix + subject, queue=queue, cb=receive)
        await self.registered()
        return _NatsResponder(sub, self)

    async def emit(self, subject: str, data: bytes) -> None:
        validate_subject(subject)
        await self.bus.connection().publish(self._prefix + subject, data)

    async def listen(self, subject: str, handler: Callable[[str, bytes], None]) -> Responder:
        validate_pattern(subject)
        cut = len(self._prefix)

        async def receive(msg: Msg) -> None:
            handler(msg.subject[cut:], msg.data)

        sub = await self.bus.connection().subscribe(self._prefix + subject, cb=receive)
        await self.registered()
        return _NatsResponder(sub, self)

    async def registered(self) -> None:
        """Wait until the server has the subscription (a round trip): served means another process's request reaches it."""
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self.bus.connection().flush(timeout=5)


class _MemoryResponder:
    def __init__(self, table: dict[str, list[object]], subject: str, entry: object) -> None:
        self._table, self._subject, self._entry = table, subject, entry

    async def stop(self) -> None:
        entries = self._table.get(self._subject, [])
        if self._entry in entries:
            entries.remove(self._entry)


class MemoryRequests:
    """Request-reply inside one process (exact subjects only): what the all-in-one server and unit tests use."""

    def __init__(self) -> None:
        self._served: dict[str, list[object]] = {}
        self._listeners: dict[str, list[object]] = {}
        self._turn = 0

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        validate_subject(subject)
        handlers = self._served.get(subject)
        if not handlers:
            raise NoResponder("NoRespondersError")
        self._turn += 1
        handler: RequestHandler = handlers[self._turn % len(handlers)]  # type: ignore[assignment]
        try:
            reply = await asyncio.wait_for(handler(data), timeout)
        except TimeoutError as exc:
            raise NoResponder("TimeoutError") from exc
        if reply is None:
            raise NoResponder("TimeoutError")
        return reply

    async def serve(self, subject: str, handler: RequestHandler, queue: str) -> Responder:
        validate_subject(subject)
        self._served.setdefault(subject, []).append(handler)
        return _MemoryResponder(self._served, subject, handler)

    async def emit(self, subject: str, data: bytes) -> None:
        validate_subject(subject)
        for handler in list(self._listeners.get(subject, [])):
            handler(subject, data)  # type: ignore[operator]

    async def listen(self, subject: str, handler: Callable[[str, bytes], None]) -> Responder:
        validate_subject(subject)
        self._listeners.setdefault(subject, []).append(handler)
        return _MemoryResponder(self._listeners, subject, handler)


def requests_for(bus: object) -> Requests:
    """The request-reply of `bus`: over its NATS connection, or in this process for any other bus."""
    return NatsRequests(bus) if isinstance(bus, NatsBus) else MemoryRequests()
