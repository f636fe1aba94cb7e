"""A local stand-in for Binance spot's ticker endpoints (REST and WebSocket), for the ticker streamer's tests.

In Binance's own shapes (https://developers.binance.com/docs/binance-spot-api-docs):

- `GET /api/v3/exchangeInfo`: a few spot symbols (BTCUSDT, ETHUSDT, ETHBTC, BTCEUR) with real filters;
- `GET /api/v3/ticker/24hr`: the 24 h ticker of every symbol, or of `symbols=["BTCUSDT",...]`;
- WebSocket `/stream/ws/<n>`: the SUBSCRIBE protocol, then `24hrMiniTicker` events for
  `<symbol>@miniTicker` streams, or arrays of them for `!miniTicker@arr`, every `push_every` s.

Faults for the fallback tests: `ws_refuse` answers WebSocket upgrades with an HTTP status
(the venue refuses the WebSocket), `ws_drop_after` closes each WebSocket after that many
events (the venue drops it), `fail(endpoint, status_or_body, ...)` answers the next REST
requests with an error status or a garbage body. `prices` is the venue's state: change it
and the next events and answers carry the new figures. Nothing here imports coinwire.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import deque
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from tests.feeds.binance_server import ERROR_BODIES, EXCHANGE_INFO, accept_ws

_BTCUSDT = EXCHANGE_INFO["symbols"][0]
SYMBOLS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT"), "ETHBTC": ("ETH", "BTC"), "BTCEUR": ("BTC", "EUR")}
START_PRICES = {"BTCUSDT": "61000.50", "ETHUSDT": "2600.10", "ETHBTC": "0.04262", "BTCEUR": "55800.00"}
EVENT_TIME = 1723161254206


def exchange_info() -> dict[str, Any]:
    """BTCUSDT's real entry, copied for each symbol (filters loose enough for every price here)."""
    info = copy.deepcopy(EXCHANGE_INFO)
    info["symbols"] = []
    for name, (base, quote) in SYMBOLS.items():
        entry = copy.deepcopy(_BTCUSDT)
        entry.update(symbol=name, baseAsset=base, quoteAsset=quote)
        for f in entry["filters"]:
            if f["filterType"] == "PRICE_FILTER":
                f.update(minPrice="0.00001000", tickSize="0.00001000")
        info["symbols"].append(entry)
    return info


class TickerVenue:
    """The server's state: current prices, the event clock, faults, and what was asked."""

    def __init__(self, push_every: float = 0.02) -> None:
        self.prices: dict[str, str] = dict(START_PRICES)
        self.time = EVENT_TIME
        self.push_every = push_every
        self.ws_refuse = 0  # HTTP status refusing WebSocket upgrades (0: accept)
        self.ws_drop_after = 0  # close each WebSocket after this many events (0: never)
        self.ws_connections = 0
        self.requests: list[str] = []
        self.faults: dict[str, deque[int | str]] = {}

    def fail(self, endpoint: str, *answers: int | str) -> None:
        """Answer the next requests to `endpoint` (`ticker`, `exchangeInfo`) with these: a status or a raw body."""
        self.faults.setdefault(endpoint, deque()).extend(answers)

    def set_price(self, symbol: str, price: str) -> None:
        self.prices[symbol] = price
        self.time += 1000

    # --- payloads ----------------------------------------------------------------------
    def ticker_24hr(self, symbol: str) -> dict[str, Any]:
        last = Decimal(self.prices[symbol])
        return {
            "symbol": symbol, "priceChange": "0.00000000", "priceChangePercent": "0.000",
            "weightedAvgPrice": str(last), "prevClosePrice": str(last), "lastPrice": str(last), "lastQty": "0.01000000",
            "bidPrice": str(last - Decimal("0.01")), "bidQty": "1.50000000", "askPrice": str(last + Decimal("0.01")),
            "askQty": "2.00000000", "openPrice": str(last), "highPrice": str(last * 2), "lowPrice": str(last / 2),
            "volume": "1000.00000000", "quoteVolume": str(last * 1000), "openTime": self.time - 86_400_000,
            "closeTime": self.time, "firstId": 1, "lastId": 1000, "count": 1000,
        }

    def mini_ticker(self, symbol: str) -> dict[str, Any]:
        last = self.prices[symbol]
        return {"e": "24hrMiniTicker", "E": self.time, "s": symbol, "c": last, "o": last, "h": last, "l": last,
                "v": "1000.00000000", "q": str(Decimal(last) * 1000)}

    # --- HTTP ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/ticker/24hr", self._ticker)
        app.router.add_get("/stream/ws/{index}", self._ws)
        return app

    async def _fault(self, endpoint: str) -> web.Response | None:
        queue = self.faults.get(endpoint)
        if not queue:
            return None
        fault = queue.popleft()
        if isinstance(fault, str):
            return web.Response(status=200, text=fault, content_type="application/json")
        return web.json_response(ERROR_BODIES.get(fault, {"code": -1000, "msg": "An unknown error occurred."}), status=fault)

    async def _exchange_info(self, request: web.Request) -> web.StreamResponse:
        self.requests.append("exchangeInfo")
        return await self._fault("exchangeInfo") or web.json_response(exchange_info())

    async def _ticker(self, request: web.Request) -> web.StreamResponse:
        self.requests.append("ticker")
        fault = await self._fault("ticker")
        if fault is not None:
            return fault
        wanted = json.loads(request.query["symbols"]) if "symbols" in request.query else list(self.prices)
        if any(s not in self.prices for s in wanted):
            return web.json_response(ERROR_BODIES[400], status=400)
        return web.json_response([self.ticker_24hr(s) for s in wanted])

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = await accept_ws(self, request)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        pushing: list[asyncio.Task[None]] = []
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            command = json.loads(msg.data)
            await ws.send_json({"result": None, "id": command.get("id")})
            if command.get("method") == "SUBSCRIBE":
                pushing.append(asyncio.create_task(self._push(ws, command["params"])))
        for task in pushing:
            task.cancel()
        return ws

    async def _push(self, ws: web.WebSocketResponse, streams: list[str]) -> None:
        sent = 0
        while not ws.closed:
            for stream in streams:
                if stream == "!miniTicker@arr":
                    await ws.send_json([self.mini_ticker(s) for s in self.prices])
                elif stream.endswith("@miniTicker") and stream.split("@")[0].upper() in self.prices:
                    await ws.send_json(self.mini_ticker(stream.split("@")[0].upper()))
                else:
                    continue
                sent += 1
                if self.ws_drop_after and sent >= self.ws_drop_after:
                    await ws.close()
                    return
            await asyncio.sleep(self.push_every)
