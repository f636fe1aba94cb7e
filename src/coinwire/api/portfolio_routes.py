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

from collections.abc import Callable
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Protocol

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.forming_streams import FormingStream, FormingStreams, Row
from coinwire.api.guard import principal_of
from coinwire.api.methods import Api, method
from coinwire.api.notifier import Notifier
from coinwire.api.portfolio_access import PortfolioScope, portfolio_scope, still_readable
from coinwire.api.rest import json_endpoint, paged_response, query_of
from coinwire.core.errors import NotReady
from coinwire.core.portfolio import PortfolioCandle, quantize_value, value_from_int
from coinwire.core.rollup import Timeframe
from coinwire.services.portfolio_ohlcv import PortfolioOhlcv

__all__ = ["PortfolioStreams", "add_portfolio_routes", "number"]


_QUERY_PARAMS = ("timeframe", "tz", "start", "end")
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
        q = query_of(request, _QUERY_PARAMS)
        checked = await portfolio_scope(api, principal_of(request), scope, id)
        page = query.page(q.get("timeframe", "1h"), q.get("tz") or checked.time_zone, q.get("start"), q.get("end"))
        rows = await query.candles(checked.scope, checked.scope_id, checked.currency, page)
        response = paged_response(_numbers(rows), request, "X-Next-Start", page.next, {"start": page.next, "end": page.end})
        response.headers["X-Currency"] = checked.currency
        return response

    app.add_api_route("/api/v1/portfolio/{scope}/{id}/ohlcv", json_endpoint(portfolio_ohlcv, "portfolio ohlcv"), methods=["GET"],
                      tags=["portfolio"], summary="portfolio_ohlcv")


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


class _PortfolioStream(FormingStream):
    """A portfolio's forming candle, built from its 15-minute candles (exact stored integers until they leave)."""

    def __init__(self, id_: int, ctx: CallContext, query: PortfolioOhlcv, scope: PortfolioScope, tf: Timeframe, tz: tzinfo,
                 tz_name: str) -> None:
        super().__init__(id_, ctx, tf, tz, tz_name)
        self.query, self.scope = query, scope

    async def stored(self, start: int, end: int) -> dict[int, Row]:
        seeded = await self.query.base(self.scope.scope, self.scope.scope_id, self.scope.currency, start, end)
        return {int(t): tuple(int(v) for v in values) for t, *values in zip(*seeded, strict=True)}  # type: ignore[misc]

    def fields(self) -> dict[str, Any]:
        return {"scope": self.scope.scope, "id": self.scope.scope_id, "currency": self.scope.currency, "timeframe": str(self.tf),
                "tz": self.tz_name}

    def values(self, row: Row) -> list[Any]:
        return [number(value_from_int(int(v))) for v in row]

    def on_candle(self, candle: PortfolioCandle, closed: bool) -> None:
        """The tracker's news of a 15-minute candle (forming, or just closed); a gap is never drawn."""
        if candle.status != "missing":
            self.take(candle.open_time, tuple(quantize_value(v) for v in  # type: ignore[arg-type]
                                              (candle.open, candle.high, candle.low, candle.close, candle.volume)))


class PortfolioStreams(FormingStreams[_PortfolioStream]):
    """Forming portfolio candles of subscribed portfolios, pushed to their WebSocket connections."""

    def __init__(self, notifier: Notifier, query: PortfolioOhlcv, tracker: Listening, push_interval: float = 0.25) -> None:
        super().__init__(notifier, "portfolio_ohlcv", push_interval)
        self.query = query
        self.tracker = tracker

    async def subscribe(self, api: Api, p: SubscribePortfolioOhlcvParams, ctx: CallContext) -> dict[str, Any]:
        """History as the GET answers it, then the forming bucket live; the scope is checked first (`not_found`)."""
        self.admit(ctx)
        scope = await portfolio_scope(api, ctx.principal, p.scope, str(p.id))
        tz_name = p.tz or scope.time_zone
        page = self.query.page(p.timeframe, tz_name, p.start, p.end)
        rows = await self.query.candles(scope.scope, scope.scope_id, scope.currency, page)
        sub = _PortfolioStream(self.next_id(), ctx, self.query, scope, page.tf, page.tz, tz_name)
        sub.readable = lambda: still_readable(api, ctx.principal, scope)
        await self.add(sub, self.query.clock() // 1_000_000_000)
        sub.unlisten = self.tracker.listen(scope.scope, scope.scope_id, sub.on_candle)
        return {"scope": scope.scope, "id": scope.scope_id, "currency": scope.currency, "timeframe": str(page.tf), "tz": tz_name,
                "start": page.start, "end": page.end, "candles": _numbers(rows), "next": page.next, "subscription": sub.id}


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
