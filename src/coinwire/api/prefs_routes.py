"""The caller's own display preferences under `/api/v1/me/preferences` (every signed-in user, viewers too).

    GET /api/v1/me/preferences   {time_zone, currency, crypto_decimals, stable_decimals, mask, currencies}
    PUT /api/v1/me/preferences   any of {time_zone, currency, crypto_decimals, stable_decimals, mask};
                                 fields left out keep their value; answers the preferences now in force

Only the caller's own row is ever read or written: the user comes from the session or API key,
never from the request. Bodies are strict (unknown fields, wrong types: 400 `invalid_params`);
values are checked by coinwire.auth.preferences (400 `invalid_time_zone`, `unknown_currency`,
`invalid_decimals`).
"""

from __future__ import annotations

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
from coinwire.auth.preferences import PreferencesRepository, checked
from coinwire.core.errors import CoinwireError
from coinwire.services.market_data import MarketData
from coinwire.store import Store

__all__ = ["PreferencesBody", "add_preferences_routes"]

log = structlog.get_logger("coinwire.auth")


class PreferencesBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    time_zone: P.Name | None = None
    currency: P.Word | None = None
    crypto_decimals: int | None = None
    stable_decimals: int | None = None
    mask: bool | None = None


def add_preferences_routes(app: FastAPI, store: Store, market: MarketData) -> None:
    repo = PreferencesRepository(store)

    def user_of(request: Request) -> int:
        principal = principal_of(request)  # the guard authenticated it: these routes are never public
        if principal is None:
            raise Unauthenticated("unauthenticated", "sign in to read or change your preferences")
        return principal.user_id

    async def view(values: dict[str, Any]) -> dict[str, Any]:
        return values | {"currencies": sorted(market.display_currencies())}

    async def get_preferences(request: Request) -> Response:
        """The caller's display preferences (the defaults until set), with the currencies they may choose from."""
        try:
            return json_response(await view(await repo.get(user_of(request))))
        except CoinwireError as exc:
            return error_response(exc)
        except Exception:
            log.exception("preferences route failed")
            return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

    async def put_preferences(request: Request) -> Response:
        """Change the caller's display preferences; every field is checked before the row is written, in one transaction."""
        try:
            user_id = user_of(request)
            body = decode_shape(await request.body(), PreferencesBody, "the request body")
            change = {f: getattr(body, f) for f in body.__struct_fields__}
            return json_response(await view(await repo.update(user_id, checked(change, market.display_currencies()))))
        except CoinwireError as exc:
            return error_response(exc)
        except Exception:
            log.exception("preferences route failed")
            return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

    (_, ), defs = msgspec.json.schema_components([PreferencesBody], ref_template="#/components/schemas/{name}")
    body_schema = {"requestBody": {"content": {"application/json": {"schema": defs["PreferencesBody"]}}, "required": True}}
    app.add_api_route("/api/v1/me/preferences", get_preferences, methods=["GET"], tags=["auth"], summary="get_preferences")
    app.add_api_route("/api/v1/me/preferences", put_preferences, methods=["PUT"], tags=["auth"], summary="put_preferences",
                      openapi_extra=body_schema)
