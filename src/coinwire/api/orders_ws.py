"""/ws/orders: order and trade events as plain JSON objects, for WebSocket clients that do not speak JSON-RPC, with the same replay.

    ws://host/ws/orders?access_token=TOKEN                     every account the user may read, live
    ws://host/ws/orders?access_token=TOKEN&account=7           account 7 only, live
    ws://host/ws/orders?access_token=TOKEN&account=7&since=41  account 7 after seq 41, then live

Each event is one text message: the `order` or `trade` notification's object with a
`channel` member in front, `{"channel": "order", "id": ..., "account": 7, "seq": 42, ...}`
(`type` is already the order type). With `since`, the missed events come first, then
`{"channel": "replayed", "account": 7, "since": 41, "replayed": N, "last_seq": L}`, then live
ones (a few may come before that marker; none repeats one before it). The connection
authenticates as /rpc does (`Authorization: Bearer` or `?access_token=`; refused before the
handshake, HTTP 403), needs the order and trade channels' rule (viewers, traders, admins),
and ends when its credential does (close 4001). A refusal after the handshake is one frame
`{"channel": "error", "code": ..., "message": ...}` and a close with code 1008 and the code
as reason: `account_not_found` (an account the caller may not read), `invalid_params`
(`since` without `account`, a value that is not a whole number), `invalid_since`,
`replay_unavailable` (with `oldest_seq`), `forbidden`. What the client sends is ignored.

/ws/wallet_sets is the same protocol for the `wallet_set` channel (api.wallet_set_push): each event is a
wallet set as `get_wallet_set` answers it, with `"channel": "wallet_set"` in front, for every set
the caller may read (admins: every set); `?wallet_set=7&wallet_set=9` narrows it to those sets,
each checked as `subscribe(wallet_sets=)` checks it (`unknown_wallet_set`). There is no replay:
a client that connects reads the sets it wants once, then follows.

/ws/positions is the same feed for perpetual positions: each event is a `positions_updated`
notification's object (the position view, docs/DERIVATIVES.md) with `"channel":
"positions_updated"` in front, and `since` replays an account's position changes after that
`seq` (positions share their account's sequence with its orders and fills, so the `seq`s one
sees there have gaps: the orders' and fills').
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import msgspec
import structlog
from starlette.types import Receive, Scope, Send

from coinwire.api.connections import CREDENTIALS_ENDED
from coinwire.api.context import CallContext
from coinwire.api.guard import authorize_channel
from coinwire.api.methods import Api
from coinwire.api.notifier import plain_event
from coinwire.api.query_values import query_int
from coinwire.api.ws_accept import accept_signed_in
from coinwire.api.ws_send import drained_of, drop_of, text_pusher, text_sender
from coinwire.core.errors import CoinwireError, InvalidInput

__all__ = ["ORDERS_WS_PATH", "POSITIONS_WS_PATH", "WALLET_SETS_WS_PATH", "orders_ws_asgi", "positions_ws_asgi", "wallet_sets_ws_asgi"]

ORDERS_WS_PATH = "/ws/orders"
POSITIONS_WS_PATH = "/ws/positions"
WALLET_SETS_WS_PATH = "/ws/wallet_sets"
REFUSED = 1008  # close code of a refusal after the handshake (the reason is the stable code)
_CHANNELS = ("order", "trade")
_POSITION_CHANNELS = ("positions_updated",)

log = structlog.get_logger("coinwire.ws_orders")
_encode = msgspec.json.Encoder().encode


Follow = Callable[[Api, CallContext, bytes, Any, tuple[str, ...]], Awaitable[None]]


async def orders_ws_asgi(scope: Scope, receive: Receive, send: Send, api: Api, channels: tuple[str, ...] = _CHANNELS,
                         follow: Follow | None = None) -> None:
    """Serve one /ws/orders connection (an ASGI `websocket` scope) until the client leaves (`follow`: how its query is read)."""
    principal = await accept_signed_in(scope, receive, send, api)
    if principal is None:
        return
    send_bytes = text_sender(send, api.notifier.limits.max_unread_bytes)
    pusher = text_pusher(send_bytes)

    def push(data: bytes) -> None:
        pusher(plain_event(data))  # the notifier's JSON-RPC bytes, as this feed's plain objects

    ctx = CallContext("ws_orders", send_bytes, principal, push=push)
    drained = drained_of(pusher)
    ctx.drained, ctx.drop = drained, drop_of(pusher)
    ctx.channels = set()  # nothing until the query is checked
    closing: set[asyncio.Task[None]] = set()

    def end(reason: str) -> None:
        """The credential ended: nothing more is pushed; the close frame goes out after what is queued."""
        api.notifier.remove(ctx)
        task = asyncio.get_running_loop().create_task(_close(send, CREDENTIALS_ENDED, reason))
        closing.add(task)
        task.add_done_callback(closing.discard)

    try:
        await (follow or _follow)(api, ctx, scope.get("query_string", b""), pusher, channels)
    except CoinwireError as exc:
        api.notifier.remove(ctx)
        pusher(_encode({"channel": "error", **exc.to_dict()}))
        await drained()
        await send({"type": "websocket.close", "code": REFUSED, "reason": exc.code})
        while (await receive())["type"] == "websocket.receive":  # until the peer's close ends the connection
            pass
        return
    if api.connections is not None:
        api.connections.add(ctx, end)
    try:
        while (await receive())["type"] == "websocket.receive":  # what the client sends is ignored
            pass
    finally:
        if api.connections is not None:
            api.connections.remove(ctx)
        api.notifier.remove(ctx)


async def positions_ws_asgi(scope: Scope, receive: Receive, send: Send, api: Api) -> None:
    """Serve one /ws/positions connection: /ws/orders' protocol on the `positions_updated` channel."""
    await orders_ws_asgi(scope, receive, send, api, _POSITION_CHANNELS)


async def wallet_sets_ws_asgi(scope: Scope, receive: Receive, send: Send, api: Api) -> None:
    """Serve one /ws/wallet_sets connection: /ws/orders' protocol on the `wallet_set` channel."""
    await orders_ws_asgi(scope, receive, send, api, ("wallet_set",), _follow_sets)


async def _follow_sets(api: Api, ctx: CallContext, query_string: bytes, pusher: Any, channels: tuple[str, ...]) -> None:
    """Check the query (`wallet_set` ids, nothing else), then follow those sets or every one the caller may read."""
    for channel in channels:
        authorize_channel(ctx.principal, channel)
    query = parse_qs(query_string.decode("latin-1"))
    unknown = sorted(set(query) - {"wallet_set", "access_token"})
    if unknown:
        raise InvalidInput("invalid_params", f"unknown query parameters {unknown}; known: wallet_set")
    given = query.get("wallet_set")
    ctx.wallet_sets = await api.named_sets(ctx, None if given is None else [query_int(v, "wallet_set", 0, 1, 2**62) for v in given])
    api.notifier.add(ctx)
    await api.notifier.listen(ctx, channels)


async def _follow(api: Api, ctx: CallContext, query_string: bytes, pusher: Any, channels: tuple[str, ...]) -> None:
    """Check the query, then follow: one account (after `since` first) or every account the caller may read."""
    for channel in channels:
        authorize_channel(ctx.principal, channel)
    stream = api.stream_of(ctx, query_string, channels)  # with `since`, the account's notifications are held from here on
    principal = ctx.principal
    if stream.account_id is not None:
        ctx.only_account = stream.account_id
    elif principal is not None and principal.is_admin:
        ctx.follow_all = True  # an admin's: every account's
    api.notifier.add(ctx)
    if stream.since is None:
        await api.notifier.listen(ctx, channels)
        return
    replay = await api.streams.resume(ctx, stream.account_id, stream.since, channels, stream.hold)  # type: ignore[union-attr,arg-type]
    pusher(_encode({"channel": "replayed", **replay}))


async def _close(send: Send, code: int, reason: str) -> None:
    await send({"type": "websocket.close", "code": code, "reason": reason})
