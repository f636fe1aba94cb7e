"""Who is calling: a connection's id and the notification channels it listens to."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["CallContext", "CHANNELS", "DEFAULT_CHANNELS"]

CHANNELS = frozenset({"order", "trade", "exchstatus", "logmessages", "echo_ret"})
DEFAULT_CHANNELS = frozenset({"exchstatus", "echo_ret"})
_ids = itertools.count(1)


class CallContext:
    """One API caller. WebSocket connections can receive notifications through `send`."""

    __slots__ = ("connection_id", "channels", "send", "transport")

    def __init__(self, transport: str, send: Callable[[str, Any], Awaitable[None]] | None = None) -> None:
        self.connection_id = next(_ids)
        self.transport = transport
        self.channels: set[str] = set(DEFAULT_CHANNELS) if send is not None else set()
        self.send = send
