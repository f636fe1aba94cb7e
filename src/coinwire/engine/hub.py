"""A run's message hub: the one door between a strategy and the world, and its audit trail.

Every message a strategy receives (candles, fills, order updates, user input) and sends
(orders, cancels, log lines, component changes) passes here and is recorded in order with
the run clock's timestamp, in the seed's `provider.method` naming. The record is queryable
with paging and filters, and is stored with the run.

A message that answers a call carries `reply_to`, the `seq` of that call (the venue's first
answer to a `venue.make_order` or `venue.cancel_order`): the pairing the seed's `mhubrpc`
format shows as `response_method` (engine/mhubrpc.py renders it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import msgspec

__all__ = ["HubMessage", "MessageHub"]


class HubMessage(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    ts: int  # run clock, unix nanoseconds
    direction: str  # "in" (to the strategy) or "out" (from it)
    method: str  # provider.method, e.g. market.candle, venue.make_order, venue.fill, ui.input
    params: dict[str, Any]
    reply_to: int | None = None  # the seq of the call this message answers (runs stored before have none)

    def to_dict(self) -> dict[str, Any]:
        """The stored and served record; `reply_to` only on a message that answers a call."""
        out = {"seq": self.seq, "ts": self.ts, "direction": self.direction, "method": self.method, "params": self.params}
        if self.reply_to is not None:
            out["reply_to"] = self.reply_to
        return out


class MessageHub:
    """Append-only, in run order; `query` pages through it newest-agnostic (by sequence)."""

    def __init__(self) -> None:
        self.messages: list[HubMessage] = []

    def record(self, ts: int, direction: str, method: str, params: dict[str, Any], reply_to: int | None = None) -> int:
        """Append a message; `reply_to` is the seq of an earlier call it answers. Returns its own seq."""
        seq = len(self.messages) + 1
        if reply_to is not None and not 0 < reply_to < seq:
            raise ValueError(f"message {seq} cannot answer {reply_to}: a reply answers an earlier message")
        self.messages.append(HubMessage(seq, ts, direction, method, params, reply_to))
        return seq

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[HubMessage]:
        return iter(self.messages)

    def query(
        self, offset: int = 0, limit: int = 100, method: str | None = None, direction: str | None = None
    ) -> tuple[int, list[HubMessage]]:
        """(total matching, one page): `method` matches exactly or as a prefix ending in '.' (`venue.`)."""
        return page(self.messages, offset, limit, method, direction)


class Routed(Protocol):
    """What a filter of messages reads: a stored record's head is enough (engine/message_pages.py)."""

    @property
    def direction(self) -> str: ...

    @property
    def method(self) -> str: ...


def matches(message: Routed, method: str | None, direction: str | None) -> bool:
    """Whether a message is one `method` (exact, or a prefix ending in '.') and `direction` select (None: any)."""
    if direction is not None and message.direction != direction:
        return False
    if method is None:
        return True
    return message.method.startswith(method) if method.endswith(".") else message.method == method


def page(
    messages: list[HubMessage], offset: int, limit: int, method: str | None, direction: str | None
) -> tuple[int, list[HubMessage]]:
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")
    if method is None and direction is None:
        return len(messages), messages[offset : offset + limit]
    selected = [m for m in messages if matches(m, method, direction)]
    return len(selected), selected[offset : offset + limit]
