"""Outside signals over REST: posting one (a TradingView alert, a generic signal), the HMAC secret, the signals received.

    POST /api/v1/signals/{provider}                 a signal: to the sender's subscribed running runs (key or signature)
    POST /api/v1/signals/{provider}/secret          a new HMAC secret of the provider for the caller, shown once
    GET  /api/v1/signals/{provider}/received        the caller's own received signals, as JSON lines (a replay file)

The post's credential is an API key scoped `signals:<provider>` (header, `?key=`, or the body's
`key` / `passphrase`) or `X-Coinwire-Signature` with `?user=` (services.outside_signals says
which answer each refusal gets). Its body is refused beyond MAX_SIGNAL_BODY (413
`payload_too_large`) before it is parsed. It answers how many runs it was queued for.
`received` takes `since` (unix ns or ISO 8601; default: the beginning) and `limit` (at most
MAX_RECEIVED); a capped answer says where the next page starts (`X-Coinwire-Next-Since` and
a `Link`), never splitting signals that share an instant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api.guard import credential_of, principal_of
from coinwire.api.json_input import decode_json
from coinwire.api.query_values import query_int
from coinwire.api.rest import bounded_body, json_endpoint, paged_response, query_of, refuse_body
from coinwire.auth.abilities import Principal
from coinwire.auth.errors import Unauthenticated
from coinwire.core.outside_signals import parse_ts
from coinwire.services.outside_signals import OutsideSignals

__all__ = ["MAX_SIGNAL_BODY", "MAX_RECEIVED", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "add_outside_signal_routes"]

MAX_SIGNAL_BODY = 16_384  # an alert is a few hundred bytes
MAX_RECEIVED = 10_000  # signals per answer of `received` (paged beyond)
SIGNATURE_HEADER = "X-Coinwire-Signature"
TIMESTAMP_HEADER = "X-Coinwire-Timestamp"
NDJSON = "application/x-ndjson"


def add_outside_signal_routes(app: FastAPI, signals: OutsideSignals) -> None:
    def caller(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise Unauthenticated("unauthenticated", "sign in to manage signals")
        return principal

    async def post_signal(request: Request, provider: str) -> tuple[Any, int]:
        """Publish one signal onto the hub of each of the sender's running runs subscribed to `provider`."""
        raw = await bounded_body(request, MAX_SIGNAL_BODY, "a signal's body")
        signals.provider(provider)
        query = query_of(request, ("key", "user"))
        body = decode_json(raw) if raw.strip() else None
        key = credential_of(request.scope) or query.get("key")
        answer = await signals.receive(provider, raw, body, key, request.headers.get(SIGNATURE_HEADER), query.get("user"),
                                       request.headers.get(TIMESTAMP_HEADER))
        return answer, 200

    async def rotate_secret(request: Request, provider: str) -> tuple[Any, int]:
        """A new HMAC secret for signing `provider`'s signals (the old one stops working now), answered this once."""
        await refuse_body(request)
        query_of(request, ())
        return await signals.rotate(caller(request), provider), 200

    async def received(request: Request, provider: str) -> Any:
        """The caller's own signals of `provider` received from `since`, oldest first, one JSON object a line."""
        query = query_of(request, ("since", "limit"))
        since_text = query.get("since")
        since = 0 if since_text is None else parse_ts(int(since_text) if since_text.isdigit() else since_text, "since")
        limit = query_int(query.get("limit"), "limit", MAX_RECEIVED, 1, MAX_RECEIVED)
        rows = await signals.received(caller(request), provider, since, limit + 1)
        start = None
        if len(rows) > limit:  # capped: end the page before the instant it would split
            start = rows[limit]["ts"]
            page = [r for r in rows[:limit] if r["ts"] != start] or rows[:limit]
            if len(page) == limit and page[-1]["ts"] == start:  # one instant holds more than a page: move past it
                start += 1
            rows = page
        lines = b"".join(msgspec.json.encode(r) + b"\n" for r in rows)
        return paged_response(lines, request, "X-Coinwire-Next-Since", start, {"since": start}, media_type=NDJSON)

    def route(method: str, path: str, handler: Callable[..., Awaitable[Any]], lines: bool = False) -> None:
        endpoint = json_endpoint(handler, path, status=None if method == "POST" else 200)
        # JSON lines: said in the schema, so a client (and the schema's own checks) expect what is sent
        extra: dict[str, Any] = {"response_class": NdjsonResponse} if lines else {}
        app.add_api_route(path, endpoint, methods=[method], tags=["signals"], summary=handler.__name__, **extra)

    route("POST", "/api/v1/signals/{provider}", post_signal)
    route("POST", "/api/v1/signals/{provider}/secret", rotate_secret)
    route("GET", "/api/v1/signals/{provider}/received", received, lines=True)


class NdjsonResponse(Response):
    """JSON lines (`application/x-ndjson`): one signal a line, a replay file's format."""

    media_type = NDJSON
