"""JSON-RPC 2.0 over WebSocket at `/rpc`: keyword parameters, out-of-order responses, pushed notifications.

Each request runs in its own task, so a slow call (one waiting for its commit) never blocks
the calls behind it on the same connection; that is also what lets the group-commit writer
batch many orders into one transaction.

The endpoint is a plain ASGI application (`rpc_asgi`), reached before FastAPI's middleware
and router (see `coinwire.api.app`): every message of a busy connection would otherwise
pass through Starlette's WebSocket wrapper and the exception middleware's send wrapper.
Sends need no lock: the server writes each message whole. Answers and notifications to one
connection go out together, one socket write per event-loop turn (`api.ws_send`).

A request object has the members JSON-RPC 2.0 names and no others (jsonrpc, method, params,
id): the seed's `"args"` answers `-32602` `use_params`, any other member `-32600`
`unknown_member`, and the method does not run.

A connection ends when its credential does (`api.connections`): close code 4001 with the
reason (`token_expired`, `session_revoked`, `key_revoked`, `user_disabled`).

A client that was away connects with `?account=ID&since=SEQ`: the account's notifications after
SEQ come first, then a `replayed` notification (`{account, since, replayed, last_seq}`), then
live ones, none twice and in `seq` order (`api.streams`); the connection's calls run meanwhile.
A query the caller may not use is one error object (`id` null) and a close with code 1008 and
the error's code as reason (`account_not_found`, `invalid_params`, `replay_unavailable`, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import msgspec
import structlog
from starlette.types import Receive, Scope, Send

from coinwire import metrics
from coinwire.api.connections import CREDENTIALS_ENDED
from coinwire.api.context import CallContext
from coinwire.api.json_input import NUL_ESCAPE, NUL_ESCAPE_TEXT, REQUEST_DECODER
from coinwire.api.methods import Api
from coinwire.api.ws_accept import accept_signed_in
from coinwire.api.ws_protocol import FastWebSocketProtocol
from coinwire.api.ws_send import ClientGone, text_pusher, text_sender
from coinwire.auth.errors import RateLimited
from coinwire.core.errors import CoinwireError
from coinwire.store.outage import store_unavailable, store_unreachable

__all__ = ["handle_rpc_call", "rpc_asgi", "rpc_error"]

log = structlog.get_logger("coinwire.rpc")

_json_encode = msgspec.json.Encoder().encode
_json_decode = REQUEST_DECODER.decode  # exact decimals for JSON numbers (see api.json_input)

_ID_TYPES = frozenset({str, int, type(None)})  # JSON-RPC 2.0 ids; fractions SHOULD NOT be used, objects and lists may not
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
RATE_LIMITED = RateLimited.rpc_code


def rpc_error(id_: Any, code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": id_}


_MEMBERS = frozenset({"jsonrpc", "method", "params", "id"})  # a JSON-RPC 2.0 request object's only members


def _unknown_members(rid: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to a request with members JSON-RPC 2.0 does not have: `args` (the seed's spelling of params), or others.

    Refused rather than ignored: a request whose parameters sit under another name would
    otherwise run with none (a `make_order` with defaults, a listing of everything).
    """
    if "args" in request:
        return rpc_error(rid, INVALID_PARAMS, '"args" is not JSON-RPC 2.0: send keyword parameters in "params"',
                         {"code": "use_params", "member": "args"})
    unknown = sorted(key[:64] for key in request if key not in _MEMBERS)[:10]  # named, not echoed at any length
    return rpc_error(rid, INVALID_REQUEST, f"Invalid Request: unknown members {unknown}; a request has only jsonrpc, method, params and id",
                     {"code": "unknown_member", "members": unknown})


async def handle_rpc_call(api: Api, request: Any, ctx: CallContext) -> dict[str, Any] | None:
    """Run one JSON-RPC request object; returns the response (None for a notification)."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        rid = request.get("id") if isinstance(request, dict) else None
        return rpc_error(rid, INVALID_REQUEST, "Invalid Request: need jsonrpc '2.0' and a method name", {"code": "invalid_request"})
    is_notification = "id" not in request
    rid = request.get("id")
    if type(rid) not in _ID_TYPES:  # an answer must carry the id as sent: a fraction would come back as text
        return rpc_error(None, INVALID_REQUEST, "Invalid Request: id must be a string, an integer or null", {"code": "invalid_id"})
    name = request["method"]
    params = request.get("params", {})
    if len(request) > 2 + ("params" in request) + (not is_notification):  # members beyond jsonrpc, method, params, id
        response = _unknown_members(rid, request)  # nothing runs without the parameters its caller meant
        return None if is_notification else response
    if not isinstance(params, dict):
        response = rpc_error(rid, INVALID_PARAMS, "params must be an object of keyword arguments", {"code": "keyword_params_only"})
        return None if is_notification else response
    if name not in api.methods:
        response = rpc_error(rid, METHOD_NOT_FOUND, f"Method not found: {name}", {"code": "method_not_found"})
        return None if is_notification else response
    start = time.perf_counter()
    try:
        result = await api.call(name, params, ctx)
        response = {"jsonrpc": "2.0", "result": result, "id": rid}
    except CoinwireError as exc:
        response = rpc_error(rid, exc.rpc_code, exc.message, exc.to_dict())
    except Exception as exc:
        if store_unreachable(exc):  # not a bug: an outage of the database
            unavailable = store_unavailable()
            response = rpc_error(rid, unavailable.rpc_code, unavailable.message, unavailable.to_dict())
        else:
            log.exception("rpc method failed", method=name)
            response = rpc_error(rid, INTERNAL_ERROR, "Internal error", {"code": "internal_error"})
    metrics.REQUEST_LATENCY.labels("rpc", name).observe(time.perf_counter() - start)
    return None if is_notification else response


async def rpc_asgi(scope: Scope, receive: Receive, send: Send, api: Api) -> None:
    """Serve one WebSocket connection (an ASGI `websocket` scope) until the client leaves."""
    principal = await accept_signed_in(scope, receive, send, api)
    if principal is None:
        return

    send_bytes = text_sender(send, api.notifier.limits.max_unread_bytes)  # answers and notifications: one socket write a loop turn

    async def reply(payload: Any) -> None:
        try:
            await send_bytes(_json_encode(payload))
        except ClientGone:  # closed, or dropped as a slow consumer, before its answer: no one left to tell
            pass

    ctx = CallContext("rpc", send_bytes, principal, push=text_pusher(send_bytes))
    ctx.checked_at = time.monotonic()
    rate, burst = api.rpc_limit
    tokens, stamp = burst, time.monotonic()
    try:
        stream = api.stream_of(ctx, scope.get("query_string", b""))  # before anything can reach the connection
    except CoinwireError as exc:
        await reply(rpc_error(None, exc.rpc_code, exc.message, exc.to_dict()))
        await send({"type": "websocket.close", "code": 1008, "reason": exc.code})
        while (await receive())["type"] == "websocket.receive":  # until the peer's close ends the connection
            pass
        return
    if stream.account_id is not None and stream.since is None:
        ctx.followed.add(stream.account_id)
    api.notifier.add(ctx)
    pending: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()  # looked up once: asyncio.create_task would per request (a getpid() on 3.11)
    ended = False

    def end(reason: str) -> None:
        """The credential ended: nothing more is pushed or run; the close frame goes out after what is queued."""
        nonlocal ended
        if ended:
            return
        ended = True
        api.notifier.remove(ctx)
        if direct:
            protocol.on_message = _discard
        _start(send({"type": "websocket.close", "code": CREDENTIALS_ENDED, "reason": reason}))  # type: ignore[arg-type]  # uvicorn's is a coroutine

    async def resume(account_id: int, since: int, hold: Any) -> None:
        """The query's replay, then its `replayed` notification; refused: the error, and the connection closes."""
        try:
            replay = await api.streams.resume(ctx, account_id, since, ("order", "trade"), hold)  # type: ignore[union-attr]
        except CoinwireError as exc:
            api.notifier.remove(ctx)
            await reply(rpc_error(None, exc.rpc_code, exc.message, exc.to_dict()))
            await send({"type": "websocket.close", "code": 1008, "reason": exc.code})
            return
        await reply({"jsonrpc": "2.0", "method": "replayed", "params": replay})

    async def run(request: Any) -> None:
        if isinstance(request, list):
            if not request:
                await reply(rpc_error(None, INVALID_REQUEST, "Invalid Request: empty batch", {"code": "invalid_request"}))
                return
            responses = await asyncio.gather(*(handle_rpc_call(api, r, ctx) for r in request))
            answered = [r for r in responses if r is not None]
            if answered:
                await reply(answered)
            return
        response = await handle_rpc_call(api, request, ctx)
        if response is not None:
            await reply(response)

    def on_message(data: str | bytes) -> None:
        """One request message: parsed, charged to this connection's token bucket, then run in a task of its own."""
        nonlocal tokens, stamp
        try:
            request = _json_decode(data)
        except msgspec.DecodeError:
            _start(reply(rpc_error(None, PARSE_ERROR, "Parse error: the message is not valid JSON", {"code": "parse_error"})))
            return
        except RecursionError:
            _start(reply(rpc_error(None, PARSE_ERROR, "Parse error: the JSON is nested too deeply", {"code": "too_deep"})))
            return
        # one token per request (a batch takes one per entry)
        cost = len(request) if isinstance(request, list) and request else 1
        now = time.monotonic()
        tokens = min(burst, tokens + (now - stamp) * rate)
        stamp = now
        if tokens < cost:
            rid = request.get("id") if isinstance(request, dict) else None
            wait = max(1, int((cost - tokens) / rate + 0.999))
            refusal = {"code": "rate_limited", "retry_after": wait}
            _start(reply(rpc_error(rid, RATE_LIMITED, "too many requests on this connection", refusal)))
            return
        tokens -= cost
        if (NUL_ESCAPE in data if type(data) is bytes else NUL_ESCAPE_TEXT in data):  # no column can hold U+0000
            rid = request.get("id") if isinstance(request, dict) else None
            message = "strings must not contain NUL characters (\\u0000)"
            _start(reply(rpc_error(rid, INVALID_PARAMS, message, {"code": "invalid_characters"})))
            return
        _start(run(request))

    def _start(coroutine: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coroutine)
        pending.add(task)
        task.add_done_callback(pending.discard)

    # messages read by coinwire's WebSocket protocol come straight to on_message; the ASGI
    # receive below still brings the disconnect, and any message that took uvicorn's own path
    protocol: Any = getattr(receive, "__self__", None)
    direct = isinstance(protocol, FastWebSocketProtocol)
    if direct:
        protocol.on_message = on_message
    if api.connections is not None:
        api.connections.add(ctx, end)
    if stream.since is not None:
        _start(resume(stream.account_id, stream.since, stream.hold))  # type: ignore[arg-type]
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                break  # websocket.disconnect
            if ended:
                continue  # past its credential's end: read (until the close handshake ends), never run
            data = message.get("text")
            on_message(data if data is not None else message.get("bytes") or b"")
    finally:
        if direct:
            protocol.on_message = None
        if api.connections is not None:
            api.connections.remove(ctx)
        api.notifier.remove(ctx)
        for task in pending:
            task.cancel()


def _discard(data: str | bytes) -> None:
    """The message handler of a connection whose credential ended."""
