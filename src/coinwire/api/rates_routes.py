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

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api import params as P
from coinwire.api.context import CallContext
from coinwire.api.methods import Api, method
from coinwire.api.rest import error_response, json_response, paged_response
from coinwire.core.errors import CoinwireError, InvalidInput, NotReady
from coinwire.services.rate_history import RateHistory

__all__ = ["GetRatesParams", "add_rates_routes"]

log = structlog.get_logger("coinwire.rates")

_QUERY_PARAMS = frozenset({"since", "until"})


def add_rates_routes(app: FastAPI, history: RateHistory) -> None:
    """Mount GET /api/v1/rates/{exchange}/{symbol} answering from `history`."""

    async def rates(request: Request, exchange: str, symbol: str) -> Response:
        """The stored rates of a market (one a minute), oldest first, over [since, until): `since=7d` is the last week."""
        try:
            unknown = sorted(set(request.query_params) - _QUERY_PARAMS)
            if unknown:
                raise InvalidInput("invalid_params", f"unknown query parameter(s) {unknown}; use since, until")
            q = request.query_params
            answer = await history.read(exchange, symbol, q.get("since"), q.get("until"))
            return paged_response(answer, request, "X-Next-Since", answer["next"], {"since": answer["next"], "until": answer["until"]})
        except CoinwireError as exc:
            return error_response(exc)
        except Exception:  # a bug: log it, and still answer in the documented error shape
            log.exception("rates route failed")
            return json_response({"error": {"code": "internal_error", "message": "Internal error"}}, 500)

    app.add_api_route("/api/v1/rates/{exchange}/{symbol}", rates, methods=["GET"], tags=["market data"], summary="rates")


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
