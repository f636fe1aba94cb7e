"""Portfolio candles: `GET /api/v1/portfolio/{scope}/{id}/ohlcv` and the live `subscribe_portfolio_ohlcv` stream on /rpc.

    GET /api/v1/portfolio/account/7/ohlcv?timeframe=1d&tz=Europe/London&start=2026-01-01&end=1767225600
    -> [[time, open, high, low, close, volume], ...]

`scope` is `account`, `wallet_set`, `run` or `user` (a user's total: `{id}` as GET /api/v1/me
reports it); the scope is checked by `api.portfolio_access` (404 `not_found` for an unknown
scope or id and for one the caller may not read, alike). The answer is the market OHLCV
route's: the bare list, `time` the bucket's open in unix seconds, values as JSON numbers
(exact decimals of the owner's display currency, named by the `X-Currency` header), the same
paging (`X-Next-Start`, `Link: <...>; rel="next"`) and the same 400 errors (invalid_timeframe,
invalid_timezone, invalid_time, invalid_range, invalid_params). `tz` defaults to the owner's
time zone. Buckets the tracker was down for are left out, like gaps in market candles.

Live: `subscribe_portfolio_ohlcv {scope, id, timeframe?, tz?, start?, end?}` answers
`{scope, id, currency, timeframe, tz, start, end, candles, next, subscription}` (the GET's
candles), then `portfolio_ohlcv` notifications `{subscription, scope, id, currency, timeframe,
tz, candle}` carry the forming bucket each time it changes (at most `push_interval` apart); a
new bucket arrives with a later time. `unsubscribe_portfolio_ohlcv {subscription}` stops it;
closing the socket stops all; a stream whose portfolio the caller may no longer read (a grant
revoked) ends with a last notification `{subscription, ended: "not_found"}`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Protocol

import msgspec
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.guard import principal_of
from coinwire.api.methods import Api, method
from coinwire.api.notifier import Notifier, notification
from coinwire.api.portfolio_access import PortfolioScope, portfolio_scope, still_readable
from coinwire.api.rest import error_response, json_response, paged_response
from coinwire.core.errors import CoinwireError, InvalidInput, NotReady
from coinwire.core.portfolio import PortfolioCandle, quantize_value, value_from_int
from coinwire.core.rollup import Timeframe, bucket_starts
from coinwire.services.portfolio_ohlcv import PortfolioOhlcv

__all__ = ["PortfolioStreams", "add_portfolio_routes", "number"]

log = structlog.get_logger("coinwire.portfolio")

_QUERY_PARAMS = frozenset({"timeframe", "tz", "start", "end"})
Listener = Callable[[PortfolioCandle, bool], None]


def number(value: Decimal) -> msgspec.Raw:
    """An exact decimal as a JSON number (the market route's values are numbers; these keep every digit)."""
    return msgspec.Raw(f"{value:f}".encode())


def _numbers(rows: list[list[Any]]) -> list[list[Any]]:
    return [[row[0], *map(number, row[1:])] for row in rows]


def add_portfolio_routes(app: FastAPI, api: Api, query: PortfolioOhlcv) -> None:
    """Mount GET /api/v1/portfolio/{scope}/{id}/ohlcv answering from `query`, scopes checked through `api`."""

    async def portfolio_ohlcv(request: Request, scope: str, id: str) -> Response:
        """A portfolio's value candles of any timeframe of whole 15 minutes (15m .. 1M) in any IANA time zone, paged."""
        try:
            unknown = sorted(set(request.query_params) - _QUERY_PARAMS)
            if unknown:
                raise InvalidInput("invalid_params", f"unknown query parameter(s) {unknown}; use timeframe, tz, start, end")
            checked = await portfolio_scope(api, principal_of(request), scope, id)
            q = request.query_params
            page = query.page(q.get("timeframe", "1h"), q.get("tz") or checked.time_zone, q.get("start"), q.get("end"))
            rows = await query.candles(checked.scope, checked.scope_id, checked.currency, page)
            response = paged_response(_numbers(rows), request, "X-Next-Start", page.next, {"start": page.next, "end": page.end})
            response.headers["X-Currency"] = checked.currency
            return response
        except CoinwireError as exc:
            return error_response(exc)
        except Exception:  # a bug: log it, and still answer in the documented error shape
            log.exception("portfolio ohlcv route failed")
            return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

    app.add_api_route("/api/v1/portfolio/{scope}/{id}/ohlcv", portfolio_ohlcv, methods=["GET"], tags=["portfolio"],
                      summary="portfolio_ohlcv")


# --- live stream ---------------------------------------------------------------------------------


class Listening(Protocol):
    """Changes of portfolios' candles (services.portfolio_tracker.PortfolioTracker.listen)."""

    def listen(self, scope: str, scope_id: str, callback: Listener) -> Callable[[], None]: ...


class SubscribePortfolioOhlcvParams(P.Params, kw_only=True):
    scope: P.Word
    id: int | P.Name
    timeframe: P.Word = "15m"
    tz: P.Name | None = None  # None: the owner's time zone
    start: int | P.Name | None = None
    end: int | P.Name | None = None


class UnsubscribePortfolioOhlcvParams(P.Params, kw_only=True):
    subscription: int


class _Subscription:
    __slots__ = ("id", "ctx", "scope", "tf", "tz", "tz_name", "bucket", "rows", "changed", "unlisten", "readable")

    def __init__(self, id_: int, ctx: CallContext, scope: PortfolioScope, tf: Timeframe, tz: tzinfo, tz_name: str) -> None:
        self.id, self.ctx, self.scope = id_, ctx, scope
        self.tf, self.tz, self.tz_name = tf, tz, tz_name
        self.bucket = (0, 0)  # [start, end) of the forming bucket (unix s)
        self.rows: dict[int, tuple[int, int, int, int, int]] = {}  # its 15-minute candles so far, by open time (stored ints)
        self.changed = False
        self.unlisten: Callable[[], None] = lambda: None
        self.readable: Callable[[], bool] = lambda: True  # asked before each push: may the caller still read it?

    def enter(self, t: int) -> None:
        """Make the bucket holding instant `t` the forming one (empty)."""
        edges = bucket_starts(self.tf, self.tz, t, t + self.tf.seconds + 1)
        self.bucket = (int(edges[0]), int(edges[1]) if len(edges) > 1 else int(edges[0]) + self.tf.seconds)
        self.rows = {}

    def on_candle(self, candle: PortfolioCandle, closed: bool) -> None:
        """The tracker's news of a 15-minute candle (forming, or just closed): it joins the forming bucket."""
        if candle.status == "missing" or candle.open_time < self.bucket[0]:
            return  # a gap is never drawn; a late candle of a bucket already pushed stays there
        if candle.open_time >= self.bucket[1]:
            self.enter(candle.open_time)
        self.rows[candle.open_time] = tuple(quantize_value(v) for v in  # type: ignore[assignment]
                                            (candle.open, candle.high, candle.low, candle.close, candle.volume))
        self.changed = True

    def candle(self) -> list[Any]:
        """The forming bucket rolled up from its 15-minute candles (the same reduction as core.rollup)."""
        rows = [self.rows[t] for t in sorted(self.rows)]
        values = (rows[0][0], max(r[1] for r in rows), min(r[2] for r in rows), rows[-1][3], sum(r[4] for r in rows))
        return [self.bucket[0], *(number(value_from_int(v)) for v in values)]


class PortfolioStreams:
    """Forming portfolio candles of subscribed portfolios, pushed to their WebSocket connections."""

    def __init__(self, notifier: Notifier, query: PortfolioOhlcv, tracker: Listening, push_interval: float = 0.25) -> None:
        self.notifier = notifier  # its connections (who is still there) and its per-connection stream limit
        self.query = query
        self.tracker = tracker
        self.push_interval = push_interval
        self.subs: dict[int, _Subscription] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="coinwire-portfolio-streams")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for sub in self.subs.values():
            sub.unlisten()
        self.subs.clear()

    async def subscribe(self, api: Api, p: SubscribePortfolioOhlcvParams, ctx: CallContext) -> dict[str, Any]:
        """History as the GET answers it, then the forming bucket live; the scope is checked first (`not_found`)."""
        if ctx.send is None:
            raise InvalidInput("websocket_only", "subscribe_portfolio_ohlcv needs a WebSocket connection (/rpc)")
        limit = self.notifier.limits.max_streams
        if sum(1 for sub in self.subs.values() if sub.ctx is ctx) >= limit:
            raise InvalidInput("too_many_streams", f"at most {limit} subscribe_portfolio_ohlcv streams per connection", limit=limit)
        scope = await portfolio_scope(api, ctx.principal, p.scope, str(p.id))
        tz_name = p.tz or scope.time_zone
        page = self.query.page(p.timeframe, tz_name, p.start, p.end)
        rows = await self.query.candles(scope.scope, scope.scope_id, scope.currency, page)
        sub = _Subscription(next(self._ids), ctx, scope, page.tf, page.tz, tz_name)
        now = self.query.clock() // 1_000_000_000
        sub.enter(now)
        seeded = await self.query.base(scope.scope, scope.scope_id, scope.currency, *sub.bucket)
        for t, *values in zip(*seeded, strict=True):
            sub.rows.setdefault(int(t), tuple(int(v) for v in values))  # type: ignore[arg-type]
        sub.readable = lambda: still_readable(api, ctx.principal, scope)
        sub.unlisten = self.tracker.listen(scope.scope, scope.scope_id, sub.on_candle)
        self.subs[sub.id] = sub
        return {"scope": scope.scope, "id": scope.scope_id, "currency": scope.currency, "timeframe": str(page.tf), "tz": tz_name,
                "start": page.start, "end": page.end, "candles": _numbers(rows), "next": page.next, "subscription": sub.id}

    def unsubscribe(self, subscription: int, ctx: CallContext) -> bool:
        sub = self.subs.get(subscription)
        if sub is None or sub.ctx is not ctx:
            return False
        self._drop(sub)
        return True

    def _drop(self, sub: _Subscription) -> None:
        self.subs.pop(sub.id, None)
        sub.unlisten()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.push_interval)
            try:
                self.push()
            except Exception:  # a bug must not stop every live chart
                log.exception("portfolio ohlcv push failed")

    def push(self) -> int:
        """Send the forming candle of every subscription that changed; returns how many were sent."""
        sent = 0
        live = self.notifier.connections
        for sub in list(self.subs.values()):
            if sub.ctx.connection_id not in live:
                self._drop(sub)  # the socket closed
                continue
            if not sub.changed or sub.ctx.offer is None or not sub.rows:
                continue
            sub.changed = False
            if not sub.readable():
                self._drop(sub)
                self._offer(sub, {"subscription": sub.id, "ended": "not_found"})
                continue
            self._offer(sub, {"subscription": sub.id, "scope": sub.scope.scope, "id": sub.scope.scope_id,
                              "currency": sub.scope.currency, "timeframe": str(sub.tf), "tz": sub.tz_name, "candle": sub.candle()})
            sent += 1
        return sent

    def _offer(self, sub: _Subscription, payload: dict[str, Any]) -> None:
        try:  # offered, never awaited: a connection behind keeps only its stream's latest candle
            sub.ctx.offer(f"portfolio_ohlcv.{sub.id}", notification("portfolio_ohlcv", payload))  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - a closed connection must not stop the others
            log.debug("portfolio ohlcv notification not delivered", error=str(exc))


def _streams(api: Api) -> PortfolioStreams:
    streams = api.portfolio_streams
    if streams is None:
        raise NotReady("portfolio_unavailable", "live portfolio candles are not running in this process")
    return streams


@method("subscribe_portfolio_ohlcv", SubscribePortfolioOhlcvParams)
async def subscribe_portfolio_ohlcv(api: Api, p: SubscribePortfolioOhlcvParams, ctx: CallContext) -> Any:
    """A portfolio's candles (as GET /api/v1/portfolio/{scope}/{id}/ohlcv), then `portfolio_ohlcv` notifications of the forming one."""
    return await _streams(api).subscribe(api, p, ctx)


@method("unsubscribe_portfolio_ohlcv", UnsubscribePortfolioOhlcvParams)
async def unsubscribe_portfolio_ohlcv(api: Api, p: UnsubscribePortfolioOhlcvParams, ctx: CallContext) -> Any:
    """Stop a subscribe_portfolio_ohlcv stream of this connection; false when there was none."""
    return _streams(api).unsubscribe(p.subscription, ctx)
