"""The channel contract every notification channel (e-mail, Telegram, webhook) implements.

A channel receives one `Delivery` and a target (the user's stored settings for that channel)
and either returns (delivered) or raises `DeliveryFailed`. The key travels with the delivery
so the receiving side can dedupe a re-send after a crash (the e-mail's Message-ID, the
webhook's X-Coinwire-Delivery header).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import msgspec

__all__ = ["EVENTS", "Channel", "Delivery", "DeliveryFailed"]

EVENTS = (
    "order_filled",
    "order_triggered",
    "order_done",
    "trade_receipt",
    "run_started",
    "run_stopped",
    "run_failed",
    "rule_fired",
    "import_finished",
    "daily_stats",
    "exchange_degraded",
)


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One message for one user on one channel, ready to send."""

    key: str  # idempotency key, unique per (user, channel, event occurrence), e.g. "receipt:<order id>"
    user_id: int
    event: str  # one of EVENTS
    subject: str  # one line
    text: str  # plain text body
    html: str | None = None
    data: dict[str, Any] = {}  # the event's JSON body (webhooks send it)


class DeliveryFailed(Exception):
    """A channel could not deliver; `reason` never contains a secret.

    `retryable` is False when retrying cannot help (a refused address, a revoked token),
    so the worker parks the delivery at once instead of backing off.
    """

    def __init__(self, reason: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Channel(Protocol):
    """What the notifier needs of a channel: its kind and one send."""

    kind: str  # "email" | "telegram" | "webhook"

    async def send(self, target: Mapping[str, Any], delivery: Delivery) -> None:
        """Deliver `delivery` to `target`; raise `DeliveryFailed` when it was not delivered."""
        ...
