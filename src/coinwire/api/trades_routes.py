"""A market's recent public trades: `GET /api/v1/trades/{exchange}/{symbol}?limit=` (the live ones: `public_trades`).

    GET /api/v1/trades/demo/BTC_USDT?limit=3
    -> [{"exchange": "demo", "symbol": "BTC/USDT", "pair": "BTC_USDT", "id": "8812", "time": 1723200000.25,
         "price": "61000.5", "amount": "0.01234", "side": "sell"}, ...]

Newest first, at most `limit` (default 50, up to the ring's size, 200), from the ring the
server keeps per market since it started (`services/public_trades.py`). `side` is the
taker's: `sell` hit the bids, `buy` lifted the asks. Errors answer `{"error": {code,
message}}`: 400 `invalid_limit`, `invalid_symbol`, `invalid_params` (an unknown query
parameter); 404 `unknown_exchange`, `unknown_symbol`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from coinwire.api.query_values import query_int
from coinwire.api.rest import json_endpoint, json_response, query_of
from coinwire.services.public_trades import PublicTrades

__all__ = ["add_trades_routes"]


def add_trades_routes(app: FastAPI, trades: PublicTrades) -> None:
    """Mount GET /api/v1/trades/{exchange}/{symbol} answering from `trades`' rings."""

    async def recent_trades(request: Request, exchange: str, symbol: str) -> Response:
        """The market's most recent public trades, newest first (`limit`: 1 to 200, default 50)."""
        limit = query_int(query_of(request, ("limit",)).get("limit"), "limit", 0, 1, trades.size, "invalid_limit")
        return json_response(trades.recent(exchange, symbol, limit or None))

    app.add_api_route("/api/v1/trades/{exchange}/{symbol}", json_endpoint(recent_trades, "recent trades"), methods=["GET"],
                      tags=["market data"], summary="recent public trades")
