"""The bookkeeping of one kind of /rpc push stream: admission, ids, unsubscribe, ending, dropping closed sockets.

Why one class: the forming-candle streams (api.forming_streams) and the indicator streams
(api.analysis_routes) keep their subscriptions the same way; only what feeds a stream and what
it pushes differ. A connection holds at most `ws_max_streams` streams of one kind
(`too_many_streams`), only over a WebSocket (`websocket_only`); a stream whose socket closed is
dropped when it is next looked at (`live`); ending a stream stops whatever feeds it (`stop`).
Pushes are offered, never awaited: a connection that reads slowly keeps only each stream's
latest push waiting (`api.ws_send`).
"""

from __future__ import annotations

import itertools
from typing import Any, Generic, Protocol, TypeVar

import structlog

from coinwire.api.context import CallContext
from coinwire.api.notifier import Notifier, notification
from coinwire.core.errors import InvalidInput

__all__ = ["Subscription", "Subscriptions"]

log = structlog.get_logger("coinwire.subscriptions")


class Subscription(Protocol):
    """One stream of one connection."""

    @property
    def id(self) -> int: ...

    @property
    def ctx(self) -> CallContext: ...

    def stop(self) -> None:
        """The stream ended: stop whatever feeds it."""


S = TypeVar("S", bound=Subscription)


class Subscriptions(Generic[S]):
    """The streams of one kind in this process, by id; `name` is the notification's method (`subscribe_<name>` opens one)."""

    def __init__(self, notifier: Notifier, name: str) -> None:
        self.notifier = notifier  # its connections (who is still there) and its per-connection stream limit
        self.name = name
        self.subs: dict[int, S] = {}
        self._ids = itertools.count(1)

    def admit(self, ctx: CallContext) -> None:
        """Refuse a stream the connection cannot have: not a WebSocket, or at its limit of streams of this kind."""
        method = f"subscribe_{self.name}"
        if ctx.send is None:
            raise InvalidInput("websocket_only", f"{method} needs a WebSocket connection (/rpc)")
        limit = self.notifier.limits.max_streams
        if sum(1 for sub in self.subs.values() if sub.ctx is ctx) >= limit:
            raise InvalidInput("too_many_streams", f"at most {limit} {method} streams per connection", limit=limit)

    def next_id(self) -> int:
        return next(self._ids)

    def unsubscribe(self, subscription: int, ctx: CallContext) -> bool:
        """Stop a stream of this connection; False when it has none of that id."""
        sub = self.subs.get(subscription)
        if sub is None or sub.ctx is not ctx:
            return False
        self.drop(sub)
        return True

    def drop(self, sub: S) -> None:
        """End a stream: forgotten, and what feeds it stopped."""
        self.subs.pop(sub.id, None)
        sub.stop()

    def live(self) -> list[S]:
        """The streams whose connection is still open; the others are dropped."""
        connections = self.notifier.connections
        open_ = []
        for sub in list(self.subs.values()):
            if sub.ctx.connection_id in connections:
                open_.append(sub)
            else:
                self.drop(sub)  # the socket closed
        return open_

    def offer(self, sub: S, payload: dict[str, Any]) -> None:
        """Push `payload` as a `name` notification, replacing this stream's push the connection has not read yet."""
        if sub.ctx.offer is None:
            return
        try:
            sub.ctx.offer(f"{self.name}.{sub.id}", notification(self.name, payload))
        except Exception as exc:  # noqa: BLE001 - a closed connection must not stop the others
            log.debug("stream notification not delivered", stream=self.name, error=str(exc))

    def stop_all(self) -> None:
        """End every stream (the process stops)."""
        for sub in list(self.subs.values()):
            self.drop(sub)
