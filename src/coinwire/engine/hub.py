"""A run's message hub: the one door between a strategy and the world, and its audit trail.

Every message a strategy receives (candles, fills, order updates, user input) and sends
(orders, cancels, log lines, component changes) passes here and is recorded in order with
the run clock's timestamp, in the seed's `provider.method` naming. The record is queryable
with paging and filters, and is stored with the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

__all__ = ["HubMessage", "MessageHub"]


class HubMessage(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    ts: int  # run clock, unix nanoseconds
    direction: str  # "in" (to the strategy) or "out" (from it)
    method: str  # provider.method, e.g. market.candle, venue.make_order, venue.fill, ui.input
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "direction": self.direction, "method": self.method, "params": self.params}


class MessageHub:
    """Append-only, in run order; `query` pages through it newest-agnostic (by sequence)."""

    def __init__(self) -> None:
        self.messages: list[HubMessage] = []

    def record(self, ts: int, direction: str, method: str, params: dict[str, Any]) -> int:
        seq = len(self.messages) + 1
        self.messages.append(HubMessage(seq, ts, direction, method, params))
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


def matches(message: HubMessage, method: str | None, direction: str | None) -> bool:
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
