"""The seed's xWrap HTTP routing table under `/xwrap/v1`, each route mapped onto an API method.

Parameters come from the path, the query string and (for POST) a JSON object body; the
same strict validation as JSON-RPC applies, and errors answer `{"error": {code, message}}`
with a 4xx status.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException

from coinwire import metrics
from coinwire.api.context import CallContext
from coinwire.api.guard import principal_of
from coinwire.api.json_input import decode_json
from coinwire.api.methods import Api
from coinwire.api.query_values import read_int
from coinwire.api.seed_errors import is_seed_path, seed_error_response
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.store.outage import store_unavailable, store_unreachable

if TYPE_CHECKING:
    from coinwire.auth.abilities import Principal

__all__ = ["XWRAP_ROUTES", "add_xwrap_routes", "error_response", "http_context",
           "json_endpoint", "json_response", "refuse_body", "paged_response",
           "query_of", "query_kinds", "typed_query", "openapi_entry", "add_components"]

log = structlog.get_logger("coinwire.rest")

_encode = msgspec.json.Encoder().encode

# (HTTP method, path, API method, path params)
XWRAP_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/xwrap/v1/status", "get_status"),
    ("GET", "/xwrap/v1/exchanges", "get_exchanges"),
    ("GET", "/xwrap/v1/orders/open", "list_open_orders"),
    ("GET", "/xwrap/v1/orders/recent", "list_recent_orders"),
    ("POST", "/xwrap/v1/orders/new", "make_order"),
    ("POST", "/xwrap/v1/orders/oco", "make_oco"),
    ("POST", "/xwrap/v1/orders/cancel", "cancel_order"),
    ("GET", "/xwrap/v1/wallets/sets", "get_all_wallet_sets"),
    ("GET", "/xwrap/v1/wallets/allocated", "get_allocated_wallet_set"),
    ("GET", "/xwrap/v1/wallets/unallocated", "get_unallocated_wallet_set"),
    ("GET", "/xwrap/v1/wallets/unallocated_exchange", "get_unallocated_per_exchange"),
    ("GET", "/xwrap/v1/wallets/total", "get_total_wallet_set"),
    ("GET", "/xwrap/v1/wallets/history/{set_id:int}", "get_wallet_set_history"),
    ("GET", "/xwrap/v1/wallets/{set_id:int}", "get_wallet_set"),
    ("GET", "/xwrap/v1/wallets/{exchange}/{currency}", "get_wallet"),
    ("POST", "/xwrap/v1/wallets/new", "create_wallet_set"),
    ("POST", "/xwrap/v1/wallets/deactivate", "deactivate_wallet_set"),
    ("POST", "/xwrap/v1/wallets/virtual/transaction", "add_virtual_wallet_tx"),
    ("GET", "/xwrap/v1/ohlcv/{exchange}/{pair}", "get_ohlcv"),
    ("GET", "/xwrap/v1/{exchange}/pricing", "get_pricing"),
    ("GET", "/xwrap/v1/{exchange}/book/{pair}", "get_book"),
]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(_encode(payload), status_code=status, media_type="application/json")


def paged_response(payload: Any, request: Request, header: str, start: Any, next_query: dict[str, Any],
                   media_type: str = "application/json") -> Response:
    """`payload`, and when the answer was capped (`start` not None) where the next page starts: `header: start` and a
    `Link: <...>; rel="next"` of the request's own URL with `next_query` in its query (rates, candles, received signals).

    With another `media_type` the payload is bytes already in it (JSON lines)."""
    response = json_response(payload) if media_type == "application/json" else Response(payload, media_type=media_type)
    if start is not None:
        response.headers[header] = str(start)
        link = request.url.include_query_params(**next_query)
        response.headers["Link"] = f'<{link.path}?{link.query}>; rel="next"'
    return response


def http_context(request: Request, principal: Principal | None = None) -> CallContext:
    """The CallContext of a REST call through `Api.call`: its caller, and its `Idempotency-Key` header.

    The key makes the repeats of a call forwarded to the gateway's process (an api replica's, a client's after a
    lost answer) yield one result (api/forwarding.py).
    """
    ctx = CallContext("http", principal=principal if principal is not None else principal_of(request))
    ctx.idempotency_key = request.headers.get("idempotency-key") or None
    return ctx


def error_response(exc: CoinwireError) -> Response:
    response = json_response({"error": exc.to_dict()}, exc.http_status)
    if "retry_after" in exc.data:  # 429: when to come back
        response.headers["Retry-After"] = str(exc.data["retry_after"])
    return response


def json_endpoint(handler: Callable[..., Awaitable[Any]], route: str, status: int | None = 200) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of a hand-written JSON route: the handler's answer (with `status`, or the (payload, status) it
    returns when `status` is None; a Response it makes itself as it is, a paged one), a CoinwireError in its
    documented shape, a bug logged and answered as a 500 in that shape. One wrapper, so every such route answers
    errors alike (accounts, imports, webhooks, candles, rates, trades, the portfolio's routes).
    """

    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request, **request.path_params)
            if isinstance(result, Response):
                return result
            payload, code = result if status is None else (result, status)
            return json_response(payload, code)
        except CoinwireError as exc:
            return error_response(exc)
        except Exception:  # a bug: logged, answered in the documented shape
            log.exception("route failed", route=route)
            return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def query_of(request: Request, names: tuple[str, ...]) -> QueryParams:
    """The request's query string; a parameter the route does not take (not in `names`) is refused, `invalid_params`."""
    unknown = sorted(set(request.query_params) - set(names))
    if unknown:
        raise InvalidInput("invalid_params", f"unknown query parameter(s) {unknown}; use {', '.join(names)}")
    return request.query_params


async def bounded_body(request: Request, limit: int, what: str) -> bytes:
    """The raw body of a route that reads its own (a signed one: the signature is over these bytes), refused beyond
    `limit` bytes (413 `payload_too_large`) as soon as it is declared or received longer, before anything parses it."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _payload_too_large(limit, what)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _payload_too_large(limit, what)
    return bytes(body)


def _payload_too_large(limit: int, what: str) -> CoinwireError:
    error = CoinwireError("payload_too_large", f"{what} is at most {limit} bytes", limit=limit)
    error.http_status = 413
    return error


async def refuse_body(request: Request) -> None:
    """A route that takes no body refuses one (`invalid_params`) before it looks anything up, so the answer says
    nothing of the resource it names."""
    if (await request.body()).strip():
        raise InvalidInput("invalid_params", "this route takes no body")


def _bad_request(code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, 400)


_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}


def query_kinds(shape: type) -> dict[str, type]:
    """The fields of a parameter shape that take an integer or a boolean (read from query-string text)."""
    kinds: dict[str, type] = {}
    info = msgspec.inspect.type_info(shape)
    for field in getattr(info, "fields", ()):
        options = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        for option in options:
            if isinstance(option, msgspec.inspect.IntType):
                kinds[field.name] = int
            elif isinstance(option, msgspec.inspect.BoolType):
                kinds[field.name] = bool
    return kinds


def typed_query(query: Any, kinds: dict[str, type]) -> dict[str, Any]:
    """Query strings are text: integers and booleans are read here, so JSON bodies can stay strict."""
    params: dict[str, Any] = {}
    for name, text in query.items():
        kind = kinds.get(name)
        if kind is int and (number := read_int(text)) is not None:
            params[name] = number
        elif kind is bool and text in _BOOL_TEXT:
            params[name] = _BOOL_TEXT[text]
        else:
            params[name] = text  # left as text: the strict shape refuses it with `invalid_params`
    return params


def _endpoint(api: Api, method_name: str, path: str) -> Any:
    kinds = query_kinds(api.methods[method_name].params)

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        params: dict[str, Any] = typed_query(request.query_params, kinds) if request.query_params else {}
        try:
            if request.method == "POST":
                body = await request.body()
                if body:
                    data = decode_json(body)
                    if not isinstance(data, dict):
                        return _bad_request("invalid_params", "the request body must be a JSON object")
                    params.update(data)
            params.update(request.path_params)
            result = await api.call(method_name, params, http_context(request))
            response = json_response(result)
        except CoinwireError as exc:
            response = error_response(exc)
        except Exception as exc:  # a bug (log it) or a database outage; either way the documented error shape
            if store_unreachable(exc):  # not a bug: an outage of the database
                response = error_response(store_unavailable())
            else:
                log.exception("http route failed", route=path, method=method_name)
                response = json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)
        metrics.REQUEST_LATENCY.labels("http", path).observe(time.perf_counter() - start)
        return response

    endpoint.__name__ = method_name
    return endpoint


_REF_TEMPLATE = "#/components/schemas/{name}"


def openapi_entry(api: Api, method_name: str, http_method: str, path: str, components: dict[str, Any]) -> dict[str, Any]:
    """One operation's OpenAPI entry; parameter shapes go to `components` so every `$ref` resolves."""
    entry = api.methods[method_name]
    (schema,), defs = msgspec.json.schema_components([entry.params], ref_template=_REF_TEMPLATE)
    components.update(defs)
    extra: dict[str, Any] = {"description": entry.doc}
    segments = [seg.strip("{}").split(":") for seg in path.split("/") if seg.startswith("{")]
    path_params = [seg[0] for seg in segments]
    parameters = [
        {"name": seg[0], "in": "path", "required": True, "schema": {"type": "integer" if seg[1:] == ["int"] else "string"}}
        for seg in segments
    ]
    if http_method in ("POST", "PUT"):
        if path_params:  # the body holds the rest: what the path names is not asked for twice
            name = entry.params.__name__
            full = defs[name]
            body = {**full, "properties": {k: v for k, v in full.get("properties", {}).items() if k not in path_params}}
            body["required"] = [k for k in full.get("required", []) if k not in path_params]
            if not body["required"]:
                del body["required"]  # OpenAPI 3.0 wants a non-empty list or none
            components[name + "Body"] = body
            schema = {"$ref": _REF_TEMPLATE.format(name=name + "Body")}
        extra["requestBody"] = {"content": {"application/json": {"schema": schema}}, "required": True}
    else:
        props = defs.get(entry.params.__name__, {}).get("properties", {})
        parameters += [
            {"name": n, "in": "query", "required": False, "schema": s} for n, s in props.items() if n not in path_params
        ]
    extra["parameters"] = parameters
    return extra


def add_xwrap_routes(app: FastAPI, api: Api) -> None:
    components: dict[str, Any] = {}
    for http_method, path, method_name in XWRAP_ROUTES:
        app.add_api_route(
            path,
            _endpoint(api, method_name, path),
            methods=[http_method],
            summary=f"{method_name}",
            tags=["xwrap"],
            openapi_extra=openapi_entry(api, method_name, http_method, path, components),
            response_class=JSONResponse,
        )
    add_components(app, components)
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]

    async def uri_map() -> Response:
        """Every URI of the HTTP API with the docstring of its handler."""
        return json_response(
            [
                {"uri": path.replace(":int", ""), "methods": [m], "api_method": name, "doc": api.methods[name].doc}
                for m, path, name in XWRAP_ROUTES
            ]
        )

    app.add_api_route("/uri_map", uri_map, methods=["GET"], tags=["xwrap"], summary="uri_map")


def add_components(app: FastAPI, components: dict[str, Any]) -> None:
    """Put the parameter schemas under `components/schemas`, where the operations' `$ref`s point."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """No route, wrong HTTP method, ...: the same `{"error": {code, message}}` shape as every other failure."""
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    message = f"{exc.detail}: {request.method} {request.url.path}"
    if is_seed_path(request.url.path):  # the seed's strategy API answers in its own shape
        refusal = CoinwireError(code, message)
        refusal.http_status = exc.status_code
        response = seed_error_response(refusal)
    else:
        response = json_response({"error": {"code": code, "message": message}}, exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response
