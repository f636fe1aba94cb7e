"""The WebSocket handshake every stream shares: a signed-in client is accepted, anyone else refused before it completes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from starlette.types import Receive, Scope, Send

from coinwire.api.guard import client_ip, credential_of
from coinwire.auth.errors import Unauthenticated
from coinwire.core.errors import CoinwireError

if TYPE_CHECKING:
    from coinwire.api.methods import Api
    from coinwire.auth.abilities import Principal

__all__ = ["accept_signed_in"]

log = structlog.get_logger("coinwire.ws")


async def accept_signed_in(scope: Scope, receive: Receive, send: Send, api: Api) -> Principal | None:
    """Accept the connection and return its user; None when it left or was refused (the client then sees HTTP 403).

    The credential is the `Authorization` header or `?access_token=`, checked before the
    handshake completes, so a refused client never holds an open socket.
    """
    if (await receive())["type"] != "websocket.connect":
        return None
    credential = credential_of(scope, allow_query=True)
    try:
        if not credential or api.auth is None:
            raise Unauthenticated("unauthenticated", "sign in first: `Authorization: Bearer <token>` or `?access_token=`")
        principal = await api.auth.authenticate(credential)
    except CoinwireError as exc:
        log.warning("websocket refused", code=exc.code, client_ip=client_ip(scope), path=scope.get("path"))
        await send({"type": "websocket.close", "code": 1008, "reason": exc.code})
        return None
    await send({"type": "websocket.accept"})
    return principal
