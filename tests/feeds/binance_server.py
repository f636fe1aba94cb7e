"""A local stand-in for Binance spot, answering from the recorded BTCUSDT capture (REST and WebSocket).

It serves what a real `ccxt.binance` asks for, in Binance's own shapes:

- `GET /api/v3/exchangeInfo`: BTCUSDT with Binance's real filters (tick 0.01, step 0.00001,
  min notional 5), the minimal but real-shaped answer `load_markets` parses;
- `GET /api/v3/depth`: the recorded book at the server's cursor, built from the capture's
  REST snapshot plus the diffs after it (independently of coinwire: decimal strings in a dict);
- `GET /api/v3/aggTrades` and `/api/v3/trades`: the recorded trades before the cursor;
- WebSocket `/stream/ws/<n>`: Binance's SUBSCRIBE protocol, then the recorded `depthUpdate`
  and `trade` events of the subscribed streams, as the venue pushes them.

`advance(n)` moves the cursor over n recorded messages (time passing at the venue), and
`faults` holds answers to give instead of the next REST responses: an HTTP status, a
malformed body, or a delay longer than the client's timeout. Nothing here imports coinwire.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSMsgType, web

EXCHANGE_INFO: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 1723161254206,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "123.45678900", "stepSize": "0.00000000"},
                {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
                 "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
                {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
                 "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
    ],
}

# Binance's error bodies for the statuses the tests inject
ERROR_BODIES: dict[int, dict[str, Any]] = {
    400: {"code": -1121, "msg": "Invalid symbol."},
    418: {"code": -1003, "msg": "Way too much request weight used; IP banned until 1723161354206."},
    429: {"code": -1003, "msg": "Too much request weight used; please use WebSocket Streams for live updates."},
    503: {"code": -1008, "msg": "Server is currently overloaded with other requests. Please try again in a few minutes."},
}
MALFORMED = "malformed"  # a fault: 200 with a truncated JSON body
TIMEOUT = "timeout"  # a fault: answer only after `timeout_delay` seconds


def load_capture(path: Path, limit: int) -> list[dict[str, Any]]:
    """The first `limit` messages of a capture file: combined-stream `data` dicts, and the REST snapshot."""
    out: list[dict[str, Any]] = []
    with gzip.open(path, "rt") as lines:
        for line in lines:
            if len(out) >= limit:
                break
            message = json.loads(line.split(" ", 1)[1])
            if "stream" in message:
                out.append({"stream": message["stream"], **message["data"]})
            else:
                out.append({"stream": "snapshot", **message})
    return out


def _sorted_side(side: dict[str, str], bids: bool) -> list[list[str]]:
    return [[p, side[p]] for p in sorted(side, key=Decimal, reverse=bids)]


class RecordedBinance:
    """The server's state: the capture, a cursor into it, and the book at the cursor."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.snapshot_at = next(i for i, m in enumerate(messages) if m["stream"] == "snapshot")
        snapshot = messages[self.snapshot_at]
        self.last_update_id: int = snapshot["lastUpdateId"]
        self.bids: dict[str, str] = dict(snapshot["bids"])
        self.asks: dict[str, str] = dict(snapshot["asks"])
        self.cursor = self.snapshot_at
        self.advance(1)  # the diffs buffered before the snapshot that it does not contain, then the snapshot
        self.faults: dict[str, deque[int | str]] = {}  # endpoint (`depth`, `aggTrades`, ...) -> answers to give
        self.timeout_delay = 2.0
        self.requests: list[str] = []
        self.ws_refuse = 0  # HTTP status refusing WebSocket upgrades (0: accept)
        self.ws_until = len(messages)  # WebSocket pushes messages before this index
        self.ws_connections = 0
        self.exchange_info: dict[str, Any] = EXCHANGE_INFO  # what exchangeInfo answers (a venue may list more markets)

    # --- the venue moving on ---------------------------------------------------------------
    def advance(self, count: int) -> None:
        """Let `count` recorded messages happen (diffs change the book, trades become history)."""
        end = min(len(self.messages), self.cursor + count)
        start = 0 if self.cursor == self.snapshot_at else self.cursor
        for message in self.messages[start:end]:
            if message["stream"].endswith("@depth@100ms") and message["u"] > self.last_update_id:
                self._apply(self.bids, message["b"])
                self._apply(self.asks, message["a"])
                self.last_update_id = message["u"]
        self.cursor = end

    @staticmethod
    def _apply(side: dict[str, str], levels: list[list[str]]) -> None:
        for price, size in levels:
            if Decimal(size):
                side[price] = size
            else:
                side.pop(price, None)

    def book(self, limit: int) -> dict[str, Any]:
        return {
            "lastUpdateId": self.last_update_id,
            "bids": _sorted_side(self.bids, True)[:limit],
            "asks": _sorted_side(self.asks, False)[:limit],
        }

    def trades(self, limit: int) -> list[dict[str, Any]]:
        """The recorded trades before the cursor, oldest first (Binance returns the latest `limit`)."""
        done = [m for m in self.messages[: self.cursor] if m["stream"].endswith("@trade")]
        return done[-limit:]

    # --- HTTP ----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get("/api/v3/trades", self._trades)
        app.router.add_get("/stream/ws/{index}", self._ws)
        return app

    def fail(self, endpoint: str, *answers: int | str) -> None:
        """Answer the next requests to `endpoint` with these faults, in order."""
        self.faults.setdefault(endpoint, deque()).extend(answers)

    async def _fault(self, endpoint: str) -> web.Response | None:
        queue = self.faults.get(endpoint)
        if not queue:
            return None
        fault = queue.popleft()
        if fault == MALFORMED:
            return web.Response(status=200, text='{"lastUpdateId": 1, "bids": [["1.0", ', content_type="application/json")
        if fault == TIMEOUT:
            await asyncio.sleep(self.timeout_delay)
            return web.json_response({})
        return web.json_response(ERROR_BODIES.get(int(fault), {"code": -1000, "msg": "An unknown error occurred."}),
                                 status=int(fault))

    async def _exchange_info(self, request: web.Request) -> web.StreamResponse:
        self.requests.append("exchangeInfo")
        return await self._fault("exchangeInfo") or web.json_response(self.exchange_info)

    async def _depth(self, request: web.Request) -> web.StreamResponse:
        self.requests.append("depth")
        if request.query.get("symbol") != "BTCUSDT":
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return await self._fault("depth") or web.json_response(self.book(int(request.query.get("limit", "100"))))

    async def _agg_trades(self, request: web.Request) -> web.StreamResponse:
        self.requests.append("aggTrades")
        fault = await self._fault("aggTrades")
        if fault is not None:
            return fault
        trades = self.trades(int(request.query.get("limit", "500")))
        body = [
            {"a": t["t"], "p": t["p"], "q": t["q"], "f": t["t"], "l": t["t"], "T": t["T"], "m": t["m"], "M": True}
            for t in trades
        ]
        return web.json_response(body)

    async def _trades(self, request: web.Request) -> web.StreamResponse:
        self.requests.append("trades")
        fault = await self._fault("trades")
        if fault is not None:
            return fault
        trades = self.trades(int(request.query.get("limit", "500")))
        body = [
            {"id": t["t"], "price": t["p"], "qty": t["q"], "quoteQty": str(Decimal(t["p"]) * Decimal(t["q"])),
             "time": t["T"], "isBuyerMaker": t["m"], "isBestMatch": True}
            for t in trades
        ]
        return web.json_response(body)

    # --- WebSocket -------------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = await accept_ws(self, request)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        pushing: list[asyncio.Task[None]] = []
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            command = json.loads(msg.data)
            if command.get("method") != "SUBSCRIBE":
                await ws.send_json({"result": None, "id": command.get("id")})
                continue
            await ws.send_json({"result": None, "id": command["id"]})
            pushing.append(asyncio.create_task(self._push(ws, command["params"])))
        for task in pushing:
            task.cancel()
        return ws

    async def _push(self, ws: web.WebSocketResponse, streams: list[str]) -> None:
        """Send the recorded events of `streams` (`btcusdt@depth@100ms`, `btcusdt@trade`) in order."""
        wanted = set(streams)
        for message in self.messages[: self.ws_until]:
            if message["stream"] in wanted:
                event = {k: v for k, v in message.items() if k != "stream"}
                await ws.send_json(event)
                await asyncio.sleep(0)


class Served(Protocol):
    """Anything that builds the aiohttp application to serve (RecordedBinance, or a venue composed with it)."""

    def app(self) -> web.Application: ...


class ServerRunner:
    """Runs a RecordedBinance (or anything Served) on 127.0.0.1 on a free port for the length of a test."""

    def __init__(self, venue: Served) -> None:
        self.venue = venue
        self._runner = web.AppRunner(venue.app())
        self.port = 0

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self._runner.cleanup()

    def urls(self) -> dict[str, str]:
        """The `urls` overrides that point ccxt.binance's spot REST and WebSocket here."""
        base = f"http://127.0.0.1:{self.port}"
        return {"api.public": f"{base}/api/v3", "api.ws.spot": f"ws://127.0.0.1:{self.port}/stream/ws"}


@contextmanager
def served_on_thread(venue: Served, timeout: float = 30.0) -> Iterator[ServerRunner]:
    """`venue` served from an event loop of its own thread, for a blocking test or a server process to call.

    The loop is closed afterwards (its self-pipe sockets too), or a ResourceWarning would fail
    whichever test the same worker runs next.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = ServerRunner(venue)
    try:
        asyncio.run_coroutine_threadsafe(runner.start(), loop).result(timeout)
        yield runner
    finally:
        asyncio.run_coroutine_threadsafe(runner.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()


async def accept_ws(server: Any, request: web.Request, label: str = "ws") -> web.StreamResponse:
    """The upgrade every fake Binance shares: recorded as `label`, refused with `server.ws_refuse` when set, else prepared."""
    server.requests.append(label)
    if server.ws_refuse:
        return web.json_response({"msg": "unavailable"}, status=server.ws_refuse)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    server.ws_connections += 1
    return ws
