"""Market-data routes: latest prices, currency conversion, reference-data status.

    GET /api/v1/tickers?exchange=&quote=&base=      latest price of every symbol (filters optional), with its age
    GET /api/v1/convert?amount=&from=&to=           `amount` of `from` in `to` through the best route of known rates
    GET /api/v1/refdata                             FX rates and top coins in use, each source's age and last error

Errors answer `{"error": {code, message}}`: 400 `invalid_amount` (ASCII decimal text only),
`number_out_of_range` (an exponent beyond ±60: `1e999999`), `invalid_currency`,
`invalid_filter`; 404 `unknown_currency` (no rate mentions it), `no_route` (no chain of rates
joins the two).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api.rest import error_response, json_response
from coinwire.core.errors import CoinwireError, InvalidInput
from coinwire.services.market_data import MarketData, conversion_view

__all__ = ["add_market_routes", "ticker_pattern"]

_TOKEN = re.compile(r"[a-z0-9_-]+")


def ticker_pattern(exchange: str | None = None, quote: str | None = None, base: str | None = None) -> str:
    """The subject pattern for optional filters: (binance, USDT) -> `ticker.binance.usdt.*`."""
    tokens = []
    for name, value in (("exchange", exchange), ("quote", quote), ("base", base)):
        token = (value or "").strip().lower()
        if token and not _TOKEN.fullmatch(token):
            raise InvalidInput("invalid_filter", f"{name} must be letters and digits, got {value!r}", field=name)
        tokens.append(token or "*")
    return "ticker." + ".".join(tokens)


def add_market_routes(app: FastAPI, market: MarketData) -> None:
    async def tickers(request: Request) -> Response:
        """Latest price of every symbol the streamers and feeds report (filter with exchange, quote, base)."""
        query = request.query_params
        try:
            pattern = ticker_pattern(query.get("exchange"), query.get("quote"), query.get("base"))
        except CoinwireError as exc:
            return error_response(exc)
        now = market.clock()
        views = await market.reader.tickers(pattern)
        return json_response([view.to_public(now) for view in views])

    async def convert(request: Request) -> Response:
        """`amount` of `from` in `to` (any currency to any fiat) through the best route of tickers, FX rates and pegs."""
        query = request.query_params
        missing = [name for name in ("amount", "from", "to") if not query.get(name)]
        if missing:
            return json_response({"error": {"code": "missing_parameter", "message": f"convert needs {', '.join(missing)}"}}, 400)
        try:
            conversion = await market.convert(query["amount"], query["from"], query["to"])
        except CoinwireError as exc:
            return error_response(exc)
        return json_response(conversion_view(conversion, query["from"], query["to"], market.clock()))

    async def refdata(request: Request) -> Response:
        """Reference data in use: FX rates, top coins, each source's age and last error, ticker streamers."""
        service = market.refdata
        payload: dict[str, Any] = {"sources": [], "fx": None, "coins": [], "streamers": market.streamer_status()}
        if service is not None:
            payload["sources"] = service.status()
            if service.fx is not None:
                fx = service.fx
                payload["fx"] = {"source": fx.source, "base": fx.base, "time": fx.ts / 1e9,
                                 "rates": {q: str(r) for q, r in sorted(fx.rates.items())}}
            payload["coins"] = [
                {"rank": c.rank, "symbol": c.symbol, "name": c.name, "id": c.coin_id, "source": c.source,
                 "price": str(c.price), "market_cap": None if c.market_cap is None else str(c.market_cap),
                 "ath": None if c.ath is None else str(c.ath), "ath_time": None if c.ath_ts is None else c.ath_ts / 1e9,
                 "time": c.ts / 1e9}
                for c in service.coins
            ]
        return json_response(payload)

    for path, endpoint in (("/api/v1/tickers", tickers), ("/api/v1/convert", convert), ("/api/v1/refdata", refdata)):
        app.add_api_route(path, endpoint, methods=["GET"], tags=["market data"], summary=endpoint.__doc__)
