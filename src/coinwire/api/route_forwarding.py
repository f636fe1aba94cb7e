"""An api replica's HTTP routes that need the gateway's process, sent there whole over the bus and answered from there.

Why: accounts, account imports and webhooks, portfolio candles and days, the analyser, signals, the
log feed and the runs (with the seed's strategy API) live in the memory of the process that runs the
gateway (and, beside it, the engine and the tracker). A replica used to answer them 503
`served_by_gateway_process`; a client connected to any replica now gets what one process answers.

The replica's guard has already done its work when a request reaches `GatewayRoutesForwarder`: rate
limits, authentication, the rules table, the body read whole within its limits, and the audit of a
change. What goes over the bus (a `ForwardedCall` of kind "http" on `gwapi._`, with the caller's
`Principal`, never their token or cookies; a public route's own credential goes with it) is the method,
path, query, the other headers, the
client's address and the body. The gateway's process runs it through the same routes
(`RouteRunner`: its own copy of the HTTP app without the guard, the principal set where the guard
sets it) and answers status, headers and body, which the replica sends as they are. Idempotency,
waiting for a gateway and answers bigger than one NATS message are the forwarded calls' own
(api/forwarding.py).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from coinwire.api.forwarding import GATEWAY_ROUTES, CallAnswer, ForwardedCall, Forwarder, RemoteError
from coinwire.core.errors import CoinwireError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HttpRequest", "HttpAnswer", "GatewayRoutesForwarder", "RouteRunner", "REQUEST_BYTES"]

log = structlog.get_logger("coinwire.route_forwarding")

# A request goes in one NATS message (1 MiB by default, and the body travels in base64): bigger bodies are refused with
# 413 `forwarded_body_too_large` (the routes forwarded take small JSON bodies; the guard's own limit is 1 MiB)
REQUEST_BYTES = 640 * 1024
_NOT_SENT = frozenset({b"cookie", b"content-length", b"transfer-encoding", b"connection"})
CLIENT_KEYED = "HTTP "  # the key of a request that carried its user's Idempotency-Key


class HttpRequest(msgspec.Struct, frozen=True):
    method: str
    path: str
    query: bytes = b""
    headers: list[tuple[bytes, bytes]] = []
    client: tuple[str, int] | None = None
    scheme: str = "http"
    route: str = ""  # the route template the replica's guard matched (the audit's and the rules table's)
    body: bytes = b""


class HttpAnswer(msgspec.Struct, frozen=True):
    status: int
    headers: list[tuple[bytes, bytes]] = []
    body: bytes = b""


_encode = msgspec.json.Encoder().encode
_request_decode = msgspec.json.Decoder(HttpRequest).decode
_answer_decode = msgspec.json.Decoder(HttpAnswer).decode
_call_answer_decode = msgspec.json.Decoder(CallAnswer).decode


def _error(exc: CoinwireError) -> HttpAnswer:
    body = _encode({"error": exc.to_dict()})
    return HttpAnswer(exc.http_status, [(b"content-type", b"application/json")], body)


class GatewayRoutesForwarder:
    """The replica's side: requests to GATEWAY_ROUTES go to the gateway's process; every other one is served here."""

    def __init__(self, app: ASGIApp, forwarder: Forwarder) -> None:
        self.app = app
        self.forwarder = forwarder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(GATEWAY_ROUTES):
            await self.app(scope, receive, send)
            return
        try:
            answer = await self._forward(scope, receive)
        except CoinwireError as exc:  # no gateway within the wait, a body too big to send, or the bus away
            answer = _error(exc)
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [*answer.headers, (b"content-length", str(len(answer.body)).encode())]})
        await send({"type": "http.response.body", "body": answer.body})

    async def _forward(self, scope: Scope, receive: Receive) -> HttpAnswer:
        body = await _read_body(receive)
        if len(body) > REQUEST_BYTES:
            exc = CoinwireError("forwarded_body_too_large", f"a body sent on to the gateway's process is limited to {REQUEST_BYTES} "
                                "bytes; send it to a process running the gateway with the api")
            exc.http_status = 413
            raise exc
        state = scope.get("state", {})
        principal = state.get("principal")
        # the caller's credential stays here once the guard has turned it into the principal; a public route (an outside
        # signal's key, a webhook's signature) checks its own, so it goes with the request
        dropped = _NOT_SENT | {b"authorization"} if principal is not None else _NOT_SENT
        request = HttpRequest(scope["method"], scope["path"], scope.get("query_string", b""),
                              [(k, v) for k, v in scope.get("headers", []) if k not in dropped],
                              tuple(scope["client"]) if scope.get("client") else None, scope.get("scheme", "http"),
                              state.get("route", ""), body)
        # a user's Idempotency-Key is theirs per method and path; anonymous callers (signed webhooks) never share a key
        idempotency = dict(scope.get("headers", [])).get(b"idempotency-key", b"").decode("latin-1")
        key = (f"{CLIENT_KEYED}{request.method} {request.path}:{idempotency}" if idempotency and principal is not None
               else f"{self.forwarder.instance}:{uuid.uuid4().hex}")
        raw = await self.forwarder.request(principal, key, _encode(request))
        try:
            return _answer_decode(raw)
        except msgspec.ValidationError:  # a call's error instead: the process serves no routes
            refused = _call_answer_decode(raw).error
            raise RemoteError(refused) if refused is not None else _internal() from None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class RouteRunner:
    """The gateway process's side: a forwarded request through `app` (the HTTP routes without the guard), in memory.

    Only GATEWAY_ROUTES are run: the rest are the replica's own. Answers of 5xx are not kept for a
    repeat of the key (a passing outage: a retry should run again).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, call: ForwardedCall) -> tuple[bytes, bool]:
        try:
            request = _request_decode(call.params)
        except msgspec.ValidationError:
            log.warning("an undecodable forwarded request was refused")
            answer = _error(CoinwireError("invalid_forwarded_request", "the forwarded request could not be read"))
            return _encode(answer), False
        if not request.path.startswith(GATEWAY_ROUTES):
            answer = _error(CoinwireError("method_not_served", f"{request.path} is not forwarded to the gateway's process"))
            return _encode(answer), True
        answer = await self.run(request, call.principal)
        # kept for a repeat only when the client sent an Idempotency-Key: a key made for one request is never asked again
        # once its tries are over (the responder joins tries while the run is on), and answers here may be large
        return _encode(answer), answer.status < 500 and call.key.startswith(CLIENT_KEYED)

    async def run(self, request: HttpRequest, principal: Any) -> HttpAnswer:
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": request.method, "scheme": request.scheme, "path": request.path,
            "raw_path": request.path.encode(), "query_string": request.query, "root_path": "",
            "headers": [*request.headers, (b"content-length", str(len(request.body)).encode())],
            "client": request.client, "server": None,
            "state": {"principal": principal, "route": request.route},  # where the guard puts them
        }
        sent = False
        done = asyncio.Event()

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await done.wait()  # a streaming response listens for a disconnect: none until it has finished
            return {"type": "http.disconnect"}

        status, headers, body = 500, [], []

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], [(bytes(k), bytes(v)) for k, v in message.get("headers", [])
                                                      if bytes(k).lower() != b"content-length"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        try:
            await self.app(scope, receive, send)
        except Exception:  # the app has answered 500 already (its error middleware), and re-raises: logged here
            log.exception("a forwarded request failed", method=request.method, path=request.path)
            return _error(_internal())
        finally:
            done.set()
        return HttpAnswer(status, headers, b"".join(body))


def _internal() -> CoinwireError:
    exc = CoinwireError("internal_error", "Internal error")
    exc.http_status = 500
    return exc
