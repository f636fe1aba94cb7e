"""The caller's own notification settings and dead letters under `/api/v1/me/notifications` (every signed-in user).

    GET  /api/v1/me/notifications                         {"channels": {...}, "events": {...}} (secrets as "set")
    PUT  /api/v1/me/notifications                         the same shape; sets exactly it; answers the settings now
    POST /api/v1/me/notifications/test                    {"channel": "email"} -> {"channel", "sent", "reason"?}
    GET  /api/v1/me/notifications/dead_letters            the caller's parked deliveries, newest first
    POST /api/v1/me/notifications/dead_letters/{id}/retry one of them back in the queue

The user is the session's or API key's, never the request's: a viewer sets their own
notifications like anyone (they are theirs, not an account's), and no id names another
user's row (someone else's dead letter is `dead_letter_not_found`, as one that does not
exist). Checks and codes: coinwire.services.notifications.user_settings.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import msgspec
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.guard import principal_of
from coinwire.api.json_input import decode_shape
from coinwire.api.rest import error_response, json_response
from coinwire.auth.errors import Unauthenticated
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.services.notifications.service import NotificationService
from coinwire.services.notifications.user_settings import CHANNEL_KINDS

__all__ = ["add_notification_routes"]

log = structlog.get_logger("coinwire.notifications")


class _TestBody(msgspec.Struct, forbid_unknown_fields=True):
    channel: P.Word


def _user_of(request: Request) -> int:
    principal = principal_of(request)  # the guard authenticated it: these routes are never public
    if principal is None:
        raise Unauthenticated("unauthenticated", "sign in to read or change your notifications")
    return principal.user_id


async def _answer(work: Awaitable[Any]) -> Response:
    """The work's result as JSON; a refusal as its error; anything else a logged 500 that says nothing more."""
    try:
        return json_response(await work)
    except CoinwireError as exc:
        return error_response(exc)
    except Exception:
        log.exception("notifications route failed")
        return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)


def add_notification_routes(app: FastAPI, service: NotificationService) -> None:
    async def get_notifications(request: Request) -> Response:
        """The caller's channels (secrets shown as "set") and which channels each event goes to."""
        async def work() -> Any:
            return await service.get_settings(_user_of(request))

        return await _answer(work())

    async def put_notifications(request: Request) -> Response:
        """Set the caller's channels and subscriptions: all checked first, then stored in one transaction."""
        async def work() -> Any:
            user_id = _user_of(request)
            body = decode_shape(await request.body(), dict[str, object], "the request body")
            return await service.put_settings(user_id, body)

        return await _answer(work())

    async def test_notification(request: Request) -> Response:
        """Send a test message on one of the caller's channels now: `sent`, or the reason it was not."""
        async def work() -> Any:
            user_id = _user_of(request)
            body = decode_shape(await request.body(), _TestBody, "the request body")
            if body.channel not in CHANNEL_KINDS:
                raise InvalidInput("unknown_channel", f"unknown channel {body.channel!r}; channels are {', '.join(CHANNEL_KINDS)}")
            return await service.send_test(user_id, body.channel)

        return await _answer(work())

    async def dead_letters(request: Request) -> Response:
        """The caller's deliveries that were parked after their attempts were spent."""
        async def work() -> Any:
            return {"dead_letters": await service.dead_letters(_user_of(request))}

        return await _answer(work())

    async def retry_dead_letter(request: Request, letter_id: str) -> Response:
        """Put one of the caller's dead letters back in the queue."""
        async def work() -> Any:
            user_id = _user_of(request)
            if await request.body():  # nothing to say but which letter: a body is a mistake, refused before anything
                raise InvalidInput("invalid_params", "retrying a dead letter takes no body")
            if not letter_id.isascii() or not letter_id.isdigit() or len(letter_id) > 18:
                raise InvalidInput("invalid_id", "a dead letter's id is a number")
            return await service.retry_dead_letter(user_id, int(letter_id))

        return await _answer(work())

    path = "/api/v1/me/notifications"
    app.add_api_route(path, get_notifications, methods=["GET"], tags=["notifications"], summary="get_notifications")
    app.add_api_route(path, put_notifications, methods=["PUT"], tags=["notifications"], summary="put_notifications",
                      openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}},
                                                     "required": True}})
    app.add_api_route(f"{path}/test", test_notification, methods=["POST"], tags=["notifications"], summary="test_notification",
                      openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                          "type": "object", "properties": {"channel": {"type": "string", "enum": list(CHANNEL_KINDS)}},
                          "required": ["channel"]}}}, "required": True}})
    app.add_api_route(f"{path}/dead_letters", dead_letters, methods=["GET"], tags=["notifications"], summary="dead_letters")
    app.add_api_route(f"{path}/dead_letters/{{letter_id}}/retry", retry_dead_letter, methods=["POST"], tags=["notifications"],
                      summary="retry_dead_letter")
