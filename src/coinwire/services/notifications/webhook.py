"""The webhook channel: an HTTP POST of the event's JSON body, signed with the user's secret (httpx).

Headers a receiver reads:

- `X-Coinwire-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body with the user's webhook
  secret; a receiver recomputes it over the bytes it received and compares in constant time
  (`verify_signature` is that check);
- `X-Coinwire-Event`: the event name (`trade_receipt`, `order_filled`, ...);
- `X-Coinwire-Delivery`: the delivery's idempotency key, the same on every retry, so a receiver
  that saw it already can drop the repeat.

Any 2xx answer is delivered; 408, 429 and 5xx (and a connection that fails) are retried with
backoff by the worker; another 4xx is the receiver refusing, and parks the delivery at once.
Only http and https URLs are accepted (`check_url`: `invalid_webhook_url` when a user saves one).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from coinwire.core.errors import InvalidInput
from coinwire.services.notifications.channels import Delivery, DeliveryFailed

__all__ = ["WebhookChannel", "check_url", "sign", "verify_signature"]

_RETRY_4XX = frozenset({408, 425, 429})


def check_url(url: object) -> str:
    """An absolute http(s) URL with a host, else InvalidInput `invalid_webhook_url`."""
    if isinstance(url, str) and len(url) <= 2000 and not any(c.isspace() for c in url):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            return url
    raise InvalidInput("invalid_webhook_url", "the webhook URL must be an absolute http:// or https:// URL")


def sign(secret: str, body: bytes) -> str:
    """The `X-Coinwire-Signature` header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the signature over the received bytes and compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class WebhookChannel:
    """POSTs a delivery's `data` to the user's URL (`{"url": ..., "secret": ...}`)."""

    kind = "webhook"

    def __init__(self, timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, target: Mapping[str, Any], delivery: Delivery) -> None:
        try:
            url = check_url(target.get("url"))
        except InvalidInput:
            raise DeliveryFailed("no valid webhook URL is set", retryable=False) from None
        secret = target.get("secret") or ""
        body = msgspec.json.encode(delivery.data)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "coinwire-webhook",
            "X-Coinwire-Event": delivery.event,
            "X-Coinwire-Delivery": delivery.key,
            "X-Coinwire-Signature": sign(secret, body),
        }
        host = urlsplit(url).hostname
        try:
            answer = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook {host} unreachable: {type(exc).__name__}") from None
        if 200 <= answer.status_code < 300:
            return
        retryable = answer.status_code >= 500 or answer.status_code in _RETRY_4XX or answer.status_code < 200
        raise DeliveryFailed(f"webhook {host} answered HTTP {answer.status_code}", retryable=retryable)
