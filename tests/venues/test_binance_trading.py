"""The local Binance trading server itself speaks Binance's authentication as documented (checked without CCXT).

Signed endpoints take `X-MBX-APIKEY` and an HMAC-SHA256 `signature` of the query string
followed by the body; a request whose `timestamp` is older than its `recvWindow` when it is
processed is refused. These are the refusals the venue tests rely on, pinned down here with
plain HTTP so a CCXT change cannot hide a server that accepts anything.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal
from typing import Any

import aiohttp

from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_trading import API_KEY, SECRET, TradingBinance


def signed(query: str, secret: str = SECRET) -> str:
    return f"{query}&signature={hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def call(
    server: ServerRunner, method: str, path: str, *, query: str = "", body: str = "", key: str | None = API_KEY
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if key is not None:
        headers["X-MBX-APIKEY"] = key
    url = f"http://127.0.0.1:{server.port}{path}" + (f"?{query}" if query else "")
    async with aiohttp.ClientSession() as session, session.request(method, url, data=body or None, headers=headers) as response:
        return response.status, await response.json()


async def test_api_key_signature_and_time_are_checked(server: ServerRunner, exchange: TradingBinance) -> None:
    query = f"timestamp={now_ms()}&recvWindow=5000"
    assert await call(server, "GET", "/api/v3/account", query=signed(query), key=None) == (
        401, {"code": -2014, "msg": "API-key format invalid."}
    )
    status, body = await call(server, "GET", "/api/v3/account", query=signed(query), key="someone-else")
    assert (status, body["code"]) == (401, -2015)
    status, body = await call(server, "GET", "/api/v3/account", query=signed(query, "not-the-secret"))
    assert (status, body) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    status, body = await call(server, "GET", "/api/v3/account", query=query)  # unsigned
    assert (status, body["code"]) == (400, -1102)
    stale = f"timestamp={now_ms() - 6000}&recvWindow=5000"
    status, body = await call(server, "GET", "/api/v3/account", query=signed(stale))
    assert (status, body["code"]) == (400, -1021)
    status, body = await call(server, "GET", "/api/v3/account", query=signed(f"timestamp={now_ms()}&recvWindow=70000"))
    assert (status, body["code"]) == (400, -1131)
    status, body = await call(server, "GET", "/api/v3/account", query=signed(query))
    assert status == 200 and {b["asset"]: b["free"] for b in body["balances"]} == {"BTC": "1.00000000", "USDT": "100000.00000000"}


async def test_an_order_signed_over_its_body_is_placed_and_reported_in_binance_s_shape(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    body = signed(
        f"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01000&price=50000.00"
        f"&newClientOrderId=raw-1&newOrderRespType=RESULT&timestamp={now_ms()}"
    )
    status, order = await call(server, "POST", "/api/v3/order", body=body)
    assert status == 200
    assert {k: order[k] for k in ("clientOrderId", "status", "type", "timeInForce", "origQty", "price", "executedQty")} == {
        "clientOrderId": "raw-1", "status": "NEW", "type": "LIMIT", "timeInForce": "GTC",
        "origQty": "0.01000000", "price": "50000.00000000", "executedQty": "0.00000000",
    }
    tampered = body.replace("quantity=0.01000", "quantity=0.02000")
    status, refusal = await call(server, "POST", "/api/v3/order", body=tampered)
    assert (status, refusal["code"]) == (400, -1022)
    status, refusal = await call(server, "POST", "/api/v3/order", body=signed(
        f"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01000&price=50000.00"
        f"&newClientOrderId=raw-1&timestamp={now_ms()}"
    ))
    assert (status, refusal) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    status, found = await call(
        server, "GET", "/api/v3/order", query=signed(f"symbol=BTCUSDT&origClientOrderId=raw-1&timestamp={now_ms()}")
    )
    assert (status, found["orderId"]) == (200, order["orderId"])
    assert exchange.locked["USDT"] == 500  # 0.01 x 50000 held by the resting order


async def test_the_websocket_api_subscription_is_signed_too(server: ServerRunner, exchange: TradingBinance) -> None:
    params = {"apiKey": API_KEY, "timestamp": now_ms()}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    good = {**params, "signature": hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()}
    async with aiohttp.ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{server.port}/ws-api/v3") as ws:
        await ws.send_json({"id": "1", "method": "userDataStream.subscribe.signature", "params": {**good, "signature": "0" * 64}})
        assert await ws.receive_json() == {
            "id": "1", "status": 400, "error": {"code": -1022, "msg": "Signature for this request is not valid."}
        }
        await ws.send_json({"id": "2", "method": "userDataStream.subscribe.signature", "params": good})
        assert await ws.receive_json() == {"id": "2", "status": 200, "result": {"subscriptionId": 0}}
        assert exchange.subscribed == 1


async def test_a_market_buy_by_quote_order_qty_spends_at_most_that_quote_on_the_lot_size_grid(
    server: ServerRunner, exchange: TradingBinance
) -> None:
    """As Binance documents quoteOrderQty: the quantity follows from the book and the quote amount, never breaking LOT_SIZE."""
    body = signed(f"symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=100.00&newClientOrderId=q-1&timestamp={now_ms()}")
    status, order = await call(server, "POST", "/api/v3/order", body=body)
    assert status == 200, order
    assert (order["status"], order["origQuoteOrderQty"]) == ("FILLED", "100.00000000")
    qty, spent = Decimal(order["executedQty"]), Decimal(order["cummulativeQuoteQty"])
    assert qty == Decimal(order["origQty"]) > 0 and qty % Decimal("0.00001") == 0
    assert spent == sum(Decimal(f["price"]) * Decimal(f["qty"]) for f in order["fills"]) <= 100
    assert 100 - spent < Decimal(order["fills"][-1]["price"]) * Decimal("0.00001")  # one more step would not fit
    assert {f["commissionAsset"] for f in order["fills"]} == {"BTC"}  # the fee is in the asset received
    both = signed(f"symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=100&quantity=0.001&timestamp={now_ms()}")
    status, refusal = await call(server, "POST", "/api/v3/order", body=both)
    assert (status, refusal["code"]) == (400, -1106)
    small = signed(f"symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=4.99&timestamp={now_ms()}")
    status, refusal = await call(server, "POST", "/api/v3/order", body=small)
    assert (status, refusal["code"]) == (400, -1013)
