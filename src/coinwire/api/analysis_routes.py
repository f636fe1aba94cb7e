"""Analyser outputs and strategy signals: `GET /api/v1/analysis`, `GET /api/v1/signals`, and `subscribe_analysis` on /rpc.

    GET /api/v1/analysis?series=market:binance:BTC/USDT:1h&indicator=rsi&params=14&start=2026-12-01
    -> {"key": "market.binance.BTC-USDT.1h:rsi(14)", "series": ..., "indicator": "rsi", "params": [14],
        "values": [[time, value], ...]}
    GET /api/v1/signals?run_id=pp-...&name=ma_cross -> {"signals": [{"run_id", "name", "time", "value"}, ...]}

`series` follows core.analysis's grammar; `params` are the indicator's parameters (a JSON list over
JSON-RPC, comma-separated in a query string). Values are the stored ones (what the analyser computed
while something followed the key: a rule set, a subscription), newest `limit` in [start, end), times
unix seconds of the bar's close or the point. Who may read a series is decided in ONE place,
`analysis_series`: a market's series any reader may; a portfolio's through api.portfolio_access; a
balance or a position through the account book (`view`). Unknown, malformed and forbidden
portfolios and accounts answer the same `not_found`. Signals are the caller's own runs' only.

`subscribe_analysis {series, indicator, params?, start?, end?, limit?}` answers the GET's object plus
`subscription`, then `analysis` notifications `{subscription, key, time, value}` as new values come;
`unsubscribe_analysis {subscription}` stops it; closing the socket stops all. A stream whose series
the caller may no longer read ends with `{subscription, ended: "not_found"}`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.guard import principal_of
from coinwire.api.methods import Api, method
from coinwire.api.notifier import Notifier
from coinwire.api.portfolio_access import PortfolioScope, portfolio_scope, scope_not_found, still_readable
from coinwire.api.rest import add_components, json_endpoint, openapi_entry, query_kinds, typed_query
from coinwire.api.subscriptions import Subscriptions
from coinwire.auth.abilities import Principal
from coinwire.core.analysis import SeriesRef, analysis_key, parse_indicator, parse_series
from coinwire.core.errors import InvalidInput, NotReady
from coinwire.services.analyser import Analyser
from coinwire.services.ohlcv import parse_instant
from coinwire.store.analysis import load_signals

__all__ = ["ANALYSIS_ROUTES", "AnalysisStreams", "add_analysis_routes", "analysis_series"]


ANALYSIS_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/api/v1/analysis", "get_analysis"),
    ("GET", "/api/v1/signals", "get_signals"),
]
_S = 1_000_000_000
_MAX_LIMIT = 5_000


# --- the one access check ------------------------------------------------------------------------
class ReadableSeries:
    """A series the caller may read, its canonical text, whose it is, and how to ask again before a push."""

    __slots__ = ("ref", "owner_id", "still")

    def __init__(self, ref: SeriesRef, owner_id: int | None, still: Callable[[], bool]) -> None:
        self.ref, self.owner_id, self.still = ref, owner_id, still


async def analysis_series(api: Api, principal: Principal | None, series: str) -> ReadableSeries:
    """Parse `series` and check the caller may read it (module docstring); `unknown_series` / `not_found` otherwise."""
    ref = parse_series(series)
    if ref.kind == "market":
        if not api.gateway.has_market(ref.exchange, ref.symbol):
            raise InvalidInput("unknown_series", f"series {series!r}: no market {ref.symbol} on {ref.exchange}", series=series)
        return ReadableSeries(ref, None, lambda: True)
    if ref.kind == "portfolio":
        if not ref.resolved:
            raise InvalidInput("unknown_series", f"series {series!r}: name the portfolio (portfolio:<scope>:<id>:<timeframe>)",
                               series=series)
        scope: PortfolioScope = await portfolio_scope(api, principal, ref.scope, ref.scope_id)
        ref = parse_series(f"portfolio:{scope.scope}:{scope.scope_id}:{ref.timeframe}")
        return ReadableSeries(ref, scope.owner_id, lambda: still_readable(api, principal, scope))
    account_id = ref.account_id
    accounts = api.gateway.accounts

    def may() -> bool:
        if principal is None or principal.is_admin:
            return account_id in accounts.accounts
        return accounts.may(account_id, principal.user_id, False, "view")

    if not may():
        raise scope_not_found("account", account_id)
    return ReadableSeries(ref, accounts.accounts[account_id].owner_id, may)


def _params(value: list[int | float] | str | None) -> list[int | float]:
    """A JSON list, or the query string's `14,2` (numbers in the indicator's order)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    out: list[int | float] = []
    for text in value.split(","):
        try:
            number = float(text)
        except ValueError:
            raise InvalidInput("invalid_parameter", f"params must be numbers like '14' or '20,2', got {value!r}",
                               parameter="params") from None
        out.append(int(number) if number.is_integer() and "." not in text else number)
    return out


def _analyser(api: Api) -> Analyser:
    if api.analysis_streams is None:
        raise NotReady("analysis_unavailable", "the analyser does not run in this process")
    return api.analysis_streams.analyser


class GetAnalysisParams(P.Params, kw_only=True):
    series: P.Text
    indicator: P.Word
    params: list[float | int] | P.Name | None = None  # the indicator's parameters; `14,2` in a query string
    start: P.Instant | None = None  # unix seconds or ISO 8601; default: the newest `limit`
    end: P.Instant | None = None
    limit: P.Count = 1000


async def _query(api: Api, p: GetAnalysisParams, principal: Principal | None) -> tuple[dict[str, Any], ReadableSeries]:
    readable = await analysis_series(api, principal, p.series)
    params = _params(p.params)
    ind = parse_indicator(p.indicator, params)
    if not 1 <= p.limit <= _MAX_LIMIT:
        raise InvalidInput("invalid_params", f"limit must be 1 to {_MAX_LIMIT}, got {p.limit}")
    start, end = parse_instant(p.start, "start"), parse_instant(p.end, "end")
    series = readable.ref.text
    key = analysis_key(series, ind.text, ind.params)
    rows = await _analyser(api).history(key, None if start is None else start * _S, None if end is None else end * _S, p.limit)
    answer = {"key": key, "series": series, "indicator": ind.text, "params": list(ind.params),
              "values": [[row.time_ns // _S, row.value] for row in rows]}  # fmt: skip
    return answer, readable


@method("get_analysis", GetAnalysisParams)
async def get_analysis(api: Api, p: GetAnalysisParams, ctx: CallContext) -> Any:
    """Stored values of an indicator on a series (market, portfolio, balance, position) the caller may read."""
    answer, _ = await _query(api, p, ctx.principal)
    return answer


class GetSignalsParams(P.Params, kw_only=True):
    run_id: P.Name | None = None
    name: P.Name | None = None
    start: P.Instant | None = None
    end: P.Instant | None = None
    limit: P.Count = 1000


@method("get_signals", GetSignalsParams)
async def get_signals(api: Api, p: GetSignalsParams, ctx: CallContext) -> Any:
    """The caller's own runs' strategy signals (each a change of its run and name), oldest first."""
    if not 1 <= p.limit <= _MAX_LIMIT:
        raise InvalidInput("invalid_params", f"limit must be 1 to {_MAX_LIMIT}, got {p.limit}")
    start, end = parse_instant(p.start, "start"), parse_instant(p.end, "end")
    principal = ctx.principal
    rows = await load_signals(api.gateway.store, run_id=p.run_id, name=p.name, owner_id=principal.user_id if principal else None,
                              owner_only=principal is not None, start_ns=None if start is None else start * _S,
                              end_ns=None if end is None else end * _S, limit=p.limit)
    return {"signals": [{"run_id": r.run_id, "name": r.name, "time": r.time_ns // _S, "value": r.value} for r in rows]}


# --- live ----------------------------------------------------------------------------------------
class SubscribeAnalysisParams(GetAnalysisParams, kw_only=True):
    pass


class UnsubscribeAnalysisParams(P.Params, kw_only=True):
    subscription: int


class _Subscription:
    __slots__ = ("id", "ctx", "key", "readable", "untrack")

    def __init__(self, id_: int, ctx: CallContext, key: str, readable: ReadableSeries, untrack: Callable[[], None]) -> None:
        self.id, self.ctx, self.key, self.readable, self.untrack = id_, ctx, key, readable, untrack

    def stop(self) -> None:
        self.untrack()


class AnalysisStreams(Subscriptions[_Subscription]):
    """The `subscribe_analysis` streams of this process: one analyser track per subscription, pushed from its listener."""

    def __init__(self, notifier: Notifier, analyser: Analyser) -> None:
        super().__init__(notifier, "analysis")
        self.analyser = analyser
        self._unlisten: Callable[[], None] | None = None

    async def subscribe(self, api: Api, p: SubscribeAnalysisParams, ctx: CallContext) -> dict[str, Any]:
        self.admit(ctx)
        analyser = self.analyser
        readable = await analysis_series(api, ctx.principal, p.series)
        ind = parse_indicator(p.indicator, _params(p.params))
        key = analysis_key(readable.ref.text, ind.text, ind.params)
        untrack = analyser.track(key, readable.ref.text, ind.text, ind.params, readable.owner_id)
        try:
            await analyser.settled()  # its warm-up values are stored: the history below holds them
            answer, _ = await _query(api, p, ctx.principal)
        except BaseException:
            untrack()
            raise
        if self._unlisten is None:
            self._unlisten = analyser.listen(self._on_value)
        sub = _Subscription(self.next_id(), ctx, key, readable, untrack)
        self.subs[sub.id] = sub
        return {**answer, "subscription": sub.id}

    def _on_value(self, key: str, value: float, time_ns: int) -> None:
        for sub in self.live():
            if sub.key != key or sub.ctx.offer is None or math.isnan(value):
                continue
            payload: dict[str, Any] = {"subscription": sub.id, "key": key, "time": time_ns // _S, "value": value}
            if not sub.readable.still():
                payload = {"subscription": sub.id, "ended": "not_found"}
                self.drop(sub)
            self.offer(sub, payload)  # a connection behind keeps only the latest value of its stream

    def close(self) -> None:
        self.stop_all()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None


def _streams(api: Api) -> AnalysisStreams:
    streams = api.analysis_streams
    if streams is None:
        raise NotReady("analysis_unavailable", "the analyser does not run in this process")
    return streams


@method("subscribe_analysis", SubscribeAnalysisParams)
async def subscribe_analysis(api: Api, p: SubscribeAnalysisParams, ctx: CallContext) -> Any:
    """Stored values of an indicator on a series (as get_analysis), then `analysis` notifications of new ones."""
    return await _streams(api).subscribe(api, p, ctx)


@method("unsubscribe_analysis", UnsubscribeAnalysisParams)
async def unsubscribe_analysis(api: Api, p: UnsubscribeAnalysisParams, ctx: CallContext) -> Any:
    """Stop a subscribe_analysis stream of this connection; false when there was none."""
    return _streams(api).unsubscribe(p.subscription, ctx)


# --- REST ----------------------------------------------------------------------------------------
def add_analysis_routes(app: FastAPI, api: Api) -> None:
    """Mount GET /api/v1/analysis and GET /api/v1/signals (the query string is the method's parameters)."""
    components: dict[str, Any] = {}
    for http_method, path, name in ANALYSIS_ROUTES:
        app.add_api_route(path, _endpoint(api, path, name), methods=[http_method], tags=["analysis"], summary=name,
                          openapi_extra=openapi_entry(api, name, http_method, path, components))
    add_components(app, components)


def _endpoint(api: Api, path: str, name: str) -> Any:
    kinds = query_kinds(api.methods[name].params)

    async def handler(request: Request) -> Any:
        raw = typed_query(request.query_params, kinds)
        return await api.call(name, raw, CallContext("http", principal=principal_of(request)))

    handler.__name__ = name
    return json_endpoint(handler, path)
