"""Warnings and errors as `logmessages`: forwarded from the process's log to the bus, rate-bounded, and a ring of recent ones.

The seed's `logmessages` channel carried only what the gateway published by hand (order
completions, status changes, store failures). Every warning and error the gateway and its
services log is now one too: `coinwire.logs` hands each such record to `LogFeed.forward`,
which publishes it through `Gateway.publish_log` with its structured fields as `context`.
Info and debug records never reach it (order logs stay off this path), a flood is cut at
`log_feed_per_second` messages a second (the rest are counted, not sent), and fields whose
name says secret are never copied.

Who may read a message: admins every one; any other user only a message whose `owner_id`
is theirs (their orders' completions). The notifier and `GET /api/v1/logs` both ask `visible`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from coinwire.messages import LogMessage

if TYPE_CHECKING:
    from coinwire.auth.abilities import Principal
    from coinwire.services.gateway import Gateway

__all__ = ["LogFeed", "LogRing", "log_view", "visible"]

FORWARDED_LEVELS = frozenset({"warning", "error", "critical", "exception"})
_SECRET_WORDS = ("password", "secret", "token", "api_key", "apikey", "authorization", "credential", "private")
_PLAIN = (str, int, float, bool, type(None))
_MAX_CONTEXT_FIELDS = 32
_MAX_TEXT = 2_000

_publishing: contextvars.ContextVar[bool] = contextvars.ContextVar("log_feed_publishing", default=False)
dropped = Counter("coinwire_log_messages_dropped_total", "Warnings and errors not sent as logmessages (over log_feed_per_second)")


def visible(principal: Principal | None, message: LogMessage) -> bool:
    """May `principal` read `message`? Admins all; other users only messages about their own resources."""
    if principal is None:
        return False
    return principal.is_admin or (message.owner_id is not None and message.owner_id == principal.user_id)


def log_view(message: LogMessage) -> dict[str, Any]:
    """The `logmessages` shape (the seed's `levelname`, `name`, `message`, `created`), plus `level`, `source`, `time` and `context`."""
    context = dict(message.context)
    if message.owner_id is not None:
        context["owner_id"] = message.owner_id
    return {
        "levelname": message.level.upper(), "name": message.name, "message": message.message, "created": message.ts / 1e9,
        "level": message.level, "source": message.name, "time": message.ts // 1_000_000, "context": context,
    }


class LogRing:
    """The last `size` log messages, in memory (bounded): what `GET /api/v1/logs` answers from."""

    def __init__(self, size: int) -> None:
        self.messages: deque[LogMessage] = deque(maxlen=size)

    def add(self, message: LogMessage) -> None:
        self.messages.append(message)

    def recent(self, principal: Principal, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` messages `principal` may read, newest first."""
        out: list[dict[str, Any]] = []
        for message in reversed(self.messages):
            if visible(principal, message):
                out.append(log_view(message))
                if len(out) >= limit:
                    break
        return out


class LogFeed:
    """Turns the process's warning and error records into `logmessages`, at most `per_second` a second."""

    def __init__(self, gateway: Gateway, per_second: int) -> None:
        self.gateway = gateway
        self.per_second = per_second
        self._second = 0
        self._sent = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def forward(self, source: str, level: str, event: dict[str, Any]) -> None:
        """One warning or error record (called by the log processor): published unless this second's budget is spent."""
        if _publishing.get():  # a record logged while publishing one (by the bus) is not published again: no loop
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # logged outside the event loop (start-up, a thread): nothing to publish with
            return
        second = int(loop.time())
        if second != self._second:
            self._second, self._sent = second, 0
        if self._sent >= self.per_second:
            dropped.inc()
            return
        self._sent += 1
        message = str(event.get("event", ""))[:_MAX_TEXT]
        context = _context(event)
        owner = context.pop("owner_id", None)
        owner_id = owner if isinstance(owner, int) and not isinstance(owner, bool) else None
        task = loop.create_task(self._publish("error" if level in ("critical", "exception") else level, source, message, context, owner_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, level: str, source: str, message: str, context: dict[str, Any], owner_id: int | None) -> None:
        _publishing.set(True)  # this task's own context: other coroutines' records are still forwarded
        try:
            await self.gateway.publish_log(level, source, message, context, owner_id)
        except Exception:  # noqa: BLE001 - a log line that cannot be published must not fail anything else
            dropped.inc()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _context(event: dict[str, Any]) -> dict[str, Any]:
    """The record's structured fields as plain JSON values, without the rendered ones and any whose name says secret."""
    context: dict[str, Any] = {}
    for key, value in event.items():
        if key in ("event", "level", "timestamp", "exc_info") or len(context) >= _MAX_CONTEXT_FIELDS:
            continue
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            continue
        plain = isinstance(value, _PLAIN) and not (isinstance(value, str) and len(value) > _MAX_TEXT)
        context[key] = value if plain else str(value)[:_MAX_TEXT]
    return context
