"""Streams an api replica's connection opens in the gateway's process: portfolio candles and analysis values, pushed back.

Why: a portfolio's forming candle lives in the tracker and an indicator's values in the
analyser, both in the gateway's process; a replica has neither. So `subscribe_portfolio_ohlcv`,
`subscribe_analysis` and their unsubscribes (`STREAM_METHODS`) are forwarded like any call, with
the caller's connection named `<replica>.<connection id>.<generation>`. The gateway's process gives that name
one `CallContext` (`RemoteConnections.context`: the caller's identity, no channels, its pushes
sent to `<namespace>.gwpush.<replica>` prefixed by the connection id) and runs the method on it,
so the stream is checked, limited, fed and ended exactly as for its own WebSockets (a grant
taken back ends it with `ended: not_found`). The replica hands each push to that connection
(`StreamClient`).

Lifetimes: every ALIVE_SECONDS the replica tells the gateway's process which of its connections
with streams are still open (`kind="alive"`); a connection not named for EXPIRE_SECONDS (closed,
or its replica died) is forgotten there and its streams end. The answer names the connections
the process knows: one it does not (its process restarted, or another took the shard over) has
lost its streams, so the replica ends each with `ended: gateway_unavailable`, and the client
subscribes again, under the connection's next generation: whatever the process still fed under the
old one (a round that failed for a moment) is not named any more and ends there. A push the bus
refuses ends the connection's streams there too (the next round finds it gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from coinwire.api.context import CallContext
from coinwire.api.notifier import Notifier, notification
from coinwire.api.ws_send import task_pusher
from coinwire.auth.abilities import Principal
from coinwire.bus.requests import Requests, Responder
from coinwire.core.errors import CoinwireError, InvalidInput

if TYPE_CHECKING:
    from coinwire.api.forwarding import Forwarder

__all__ = ["ALIVE_SECONDS", "EXPIRE_SECONDS", "PUSH", "STREAM_METHODS", "RemoteConnections", "StreamClient"]

log = structlog.get_logger("coinwire.remote_streams")

# subscribe method -> the notification its pushes are (and its unsubscribe)
_STREAMS = {"subscribe_portfolio_ohlcv": "portfolio_ohlcv", "subscribe_analysis": "analysis"}
STREAM_METHODS = frozenset({*_STREAMS, "unsubscribe_portfolio_ohlcv", "unsubscribe_analysis"})
PUSH = "gwpush"  # <namespace>.gwpush.<replica>: a push for one of the replica's connections (8-byte id, then the message)
ALIVE_SECONDS = 5.0
EXPIRE_SECONDS = 4 * ALIVE_SECONDS


class RemoteConnections:
    """The gateway process's side: one `CallContext` per replica connection with streams here, while it is said alive."""

    def __init__(self, requests: Requests, notifier: Notifier, clock: Callable[[], float] = time.monotonic) -> None:
        self.requests = requests
        self.notifier = notifier
        self.clock = clock
        self.contexts: dict[str, tuple[CallContext, float]] = {}  # connection -> (its context, when last named)
        self._sweep: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sweep = asyncio.create_task(self._sweep_loop(), name="remote-streams-sweep")

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep
        for connection in list(self.contexts):
            self._forget(connection)

    def context(self, connection: str, principal: Principal | None, transport: str) -> CallContext:
        """The context of a replica's connection (made at its first stream): the caller's identity as of this call."""
        known = self.contexts.get(connection)
        if known is not None:
            ctx = known[0]
        else:
            replica, number, _generation = connection.rsplit(".", 2)
            prefix = int(number).to_bytes(8, "big")
            subject = f"{PUSH}.{replica}"

            async def send(data: bytes) -> None:
                await self.requests.emit(subject, prefix + data)

            async def gone() -> None:  # a push the bus refused: forgotten here, so the replica's next round ends its streams
                self._forget(connection)

            ctx = CallContext(transport, send=send, push=task_pusher(send, close=gone))
            ctx.channels = set()  # its streams only: the replica pushes the account channels itself, from the bus
            self.notifier.add(ctx)
        ctx.principal = principal  # the replica checked this session just now
        self.contexts[connection] = (ctx, self.clock())
        return ctx

    def alive(self, connections: list[str]) -> list[str]:
        """Refresh the connections a replica says are open; answers those this process has (the rest lost their streams)."""
        now, known = self.clock(), []
        for connection in connections:
            entry = self.contexts.get(connection)
            if entry is not None:
                self.contexts[connection] = (entry[0], now)
                known.append(connection)
        return known

    def _forget(self, connection: str) -> None:
        entry = self.contexts.pop(connection, None)
        if entry is not None:
            self.notifier.remove(entry[0])  # its streams end when next looked at (Subscriptions.live)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(ALIVE_SECONDS)
            cutoff = self.clock() - EXPIRE_SECONDS
            for connection in [c for c, (_, seen) in self.contexts.items() if seen < cutoff]:
                log.info("a replica's connection was not named alive: its streams end", connection=connection)
                self._forget(connection)


class StreamClient:
    """The replica's side: names its connections' streams for the forwarded calls, hands pushes to them, keeps them alive."""

    def __init__(self, forwarder: Forwarder, requests: Requests, notifier: Notifier) -> None:
        self.forwarder = forwarder
        self.requests = requests
        self.notifier = notifier
        self.streams: dict[int, dict[int, str]] = {}  # connection id -> {subscription id: its notification's name}
        self.generations: dict[int, int] = {}  # connection id -> how many times its streams were lost
        self._listening: Responder | None = None
        self._alive: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listening = await self.requests.listen(f"{PUSH}.{self.forwarder.instance}", self._on_push)
        self._alive = asyncio.create_task(self._alive_loop(), name="remote-streams-alive")

    async def close(self) -> None:
        if self._alive is not None:
            self._alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._alive
        if self._listening is not None:
            await self._listening.stop()

    def connection(self, ctx: CallContext) -> str:
        """The name the gateway's process knows this connection by: a new one after its streams were lost, so streams
        the process may still feed under the old name (a keep-alive round that failed but for a moment) end there
        rather than push beside the new ones."""
        if ctx.send is None:
            raise InvalidInput("websocket_only", "streams need a WebSocket connection (/rpc)")
        return f"{self.forwarder.instance}.{ctx.connection_id}.{self.generations.get(ctx.connection_id, 0)}"

    def answered(self, name: str, raw: dict[str, Any] | None, ctx: CallContext, result: msgspec.Raw) -> None:
        """Remember a stream opened (or forget one ended) by a forwarded call's answer."""
        if name in _STREAMS:
            subscription = msgspec.json.decode(result).get("subscription")
            if isinstance(subscription, int):
                self.streams.setdefault(ctx.connection_id, {})[subscription] = _STREAMS[name]
        elif raw is not None and isinstance(raw.get("subscription"), int):
            self.streams.get(ctx.connection_id, {}).pop(raw["subscription"], None)

    def _on_push(self, subject: str, data: bytes) -> None:
        ctx = self.notifier.connections.get(int.from_bytes(data[:8], "big"))
        if ctx is not None and ctx.push is not None:
            ctx.push(data[8:])  # else closed here: the next alive round lets the gateway's process forget it

    async def _alive_loop(self) -> None:
        while True:
            await asyncio.sleep(ALIVE_SECONDS)
            try:
                await self.keep_alive()
            except Exception:  # a bug must not end every stream; the next round tries again
                log.exception("remote streams: keep-alive failed")

    async def keep_alive(self) -> None:
        """Name the open connections with streams to the gateway's process; end the streams it no longer has."""
        for closed in [c for c in self.streams if c not in self.notifier.connections]:
            del self.streams[closed]  # not named any more: forgotten there after EXPIRE_SECONDS
            self.generations.pop(closed, None)
        named = {self.connection(self.notifier.connections[c]): c for c, subs in self.streams.items() if subs}
        if not named:
            return
        try:
            known = set(await self.forwarder.alive(list(named)))
        except CoinwireError:  # no gateway's process answers: whatever held the streams is gone or stepped down
            known = set()
        for name, connection_id in named.items():
            if name not in known:
                self._lost(connection_id)

    def _lost(self, connection_id: int) -> None:
        self.generations[connection_id] = self.generations.get(connection_id, 0) + 1
        ctx = self.notifier.connections.get(connection_id)
        for subscription, stream in self.streams.pop(connection_id, {}).items():
            if ctx is not None and ctx.push is not None:
                ctx.push(notification(stream, {"subscription": subscription, "ended": "gateway_unavailable"}))
