"""Stored rates: `GET /api/v1/rates/{exchange}/{symbol}` and the JSON-RPC `get_rates` (services/rate_history.py).

    GET /api/v1/rates/binance/BTC_USDT?since=7d
    -> {"exchange": "binance", "symbol": "BTC/USDT", "pair": "BTC_USDT", "since": 1723161240000, "until": ...,
        "rates": [{"time": 1723161240000, "price": "61000.50", "source": "ccxt"}, ...], "next": null}

Times are unix ms; `since` and `until` take a duration before now (`7d`, `24h`, `90m`), unix ms or
seconds, or an ISO 8601 time. The symbol is `BTC_USDT` in the path (a slash cannot go there, as in
/api/v1/ohlcv), in any case. An answer holds at most `rates_max_points` rates; when there are more, `next` is the `since`
of the next page, and the headers say it too: `X-Next-Since` and `Link: <...>; rel="next"`.
Errors answer `{"error": {code, message}}`: 400 invalid_time, invalid_range, invalid_symbol,
invalid_exchange, invalid_params (an unknown query parameter); 404 unknown_exchange, unknown_symbol.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.methods import Api, method
from coinwire.api.rest import json_endpoint, paged_response, query_of
from coinwire.core.errors import NotReady
from coinwire.services.rate_history import RateHistory

__all__ = ["GetRatesParams", "add_rates_routes"]


_QUERY_PARAMS = ("since", "until")


def add_rates_routes(app: FastAPI, history: RateHistory) -> None:
    """Mount GET /api/v1/rates/{exchange}/{symbol} answering from `history`."""

    async def rates(request: Request, exchange: str, symbol: str) -> Response:
        """The stored rates of a market (one a minute), oldest first, over [since, until): `since=7d` is the last week."""
        q = query_of(request, _QUERY_PARAMS)
        answer = await history.read(exchange, symbol, q.get("since"), q.get("until"))
        return paged_response(answer, request, "X-Next-Since", answer["next"], {"since": answer["next"], "until": answer["until"]})

    app.add_api_route("/api/v1/rates/{exchange}/{symbol}", json_endpoint(rates, "rates"), methods=["GET"], tags=["market data"],
                      summary="rates")


class GetRatesParams(P.Params, kw_only=True):
    exchange: P.Name
    symbol: P.Symbol
    since: int | P.Name | None = None  # a duration (7d), unix ms or seconds, or ISO 8601; default 7d
    until: int | P.Name | None = None  # the same; default now


@method("get_rates", GetRatesParams)
async def get_rates(api: Api, p: GetRatesParams, ctx: CallContext) -> Any:
    """The stored rates of a market, oldest first, as GET /api/v1/rates/{exchange}/{symbol} answers them."""
    if api.rates is None:
        raise NotReady("rates_unavailable", "stored rates are not served by this process")
    return await api.rates.read(p.exchange, p.symbol, p.since, p.until)
