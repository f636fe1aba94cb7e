"""Perpetual positions over REST under `/api/v1/`, the same methods as JSON-RPC's (one implementation: `Api.call`).

    GET  /api/v1/positions                                 ?account=&exchange=&pair=   get_positions
    PUT  /api/v1/positions/{exchange}/{pair}/leverage      {"leverage": 10}            set_leverage
    PUT  /api/v1/positions/{exchange}/{pair}/margin-mode   {"mode": "isolated"}        set_margin_mode
    PUT  /api/v1/positions/{exchange}/mode                 {"hedge_mode": true}        set_position_mode
    POST /api/v1/positions/{exchange}/{pair}/margin        {"amount": "25", "position_side": "long"}   adjust_margin
    POST /api/v1/positions/{exchange}/{pair}/close         {"position_side": "short"}  close_position
    GET  /api/v1/funding                                   ?account=&exchange=&pair=&limit=   get_funding

`pair` in a path is `BTC_USDT:USDT` (a slash cannot go there). Every body also takes `account`
(None: the caller's own account on the exchange). Errors answer `{"error": {code, message}}`.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api.json_input import decode_json
from coinwire.api.methods import Api
from coinwire.api.rest import add_components, error_response, http_context, json_response, openapi_entry, query_kinds, typed_query
from coinwire.core.errors import CoinwireError, InvalidInput

__all__ = ["POSITION_ROUTES", "add_position_routes"]

log = structlog.get_logger("coinwire.api")

# (HTTP method, path, API method)
POSITION_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/api/v1/positions", "get_positions"),
    ("PUT", "/api/v1/positions/{exchange}/{pair}/leverage", "set_leverage"),
    ("PUT", "/api/v1/positions/{exchange}/{pair}/margin-mode", "set_margin_mode"),
    ("PUT", "/api/v1/positions/{exchange}/mode", "set_position_mode"),
    ("POST", "/api/v1/positions/{exchange}/{pair}/margin", "adjust_margin"),
    ("POST", "/api/v1/positions/{exchange}/{pair}/close", "close_position"),
    ("GET", "/api/v1/funding", "get_funding"),
]


def add_position_routes(app: FastAPI, api: Api) -> None:
    """Mount the position routes; reads take the query string, changes a JSON object body plus the path."""
    components: dict[str, Any] = {}
    for http_method, path, name in POSITION_ROUTES:
        app.add_api_route(path, _endpoint(api, http_method, path, name), methods=[http_method], tags=["positions"], summary=name,
                          openapi_extra=openapi_entry(api, name, http_method, path, components))
    add_components(app, components)


def _endpoint(api: Api, http_method: str, path: str, name: str) -> Any:
    kinds = query_kinds(api.methods[name].params)

    async def endpoint(request: Request) -> Response:
        try:
            raw: dict[str, Any] = {}
            if http_method == "GET":
                raw = typed_query(request.query_params, kinds)
            else:
                if request.query_params:
                    raise InvalidInput("invalid_params", f"{name} takes its parameters in a JSON object body, not the query")
                body = await request.body()
                if body:
                    given = decode_json(body)
                    if not isinstance(given, dict):
                        raise InvalidInput("invalid_params", "the request body must be a JSON object")
                    raw = given
                for key, value in request.path_params.items():
                    if key in raw and raw[key] != value:
                        raise InvalidInput("conflicting_parameters", f"`{key}` is in the path; the body names another")
                    raw[key] = value
            return json_response(await api.call(name, raw, http_context(request)))
        except CoinwireError as exc:
            return error_response(exc)
        except Exception:  # a bug: log it, and still answer in the documented error shape
            log.exception("position route failed", route=path)
            return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

    endpoint.__name__ = f"{name}_http"
    endpoint.__doc__ = api.methods[name].doc
    return endpoint
