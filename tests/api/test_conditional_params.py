"""make_order's conditional parameters and make_oco over JSON-RPC and REST: every refusal has one code both ways and writes nothing.

One real `coinwire serve` process per module (tests/api/conftest.py), on the demo feed (BTC/USDT near 60,000, tick 0.01).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

EX = "demo"
FAR_BELOW = "1000"  # far under the demo market: a sell stop there rests, a buy limit never fills
FAR_ABOVE = "1000000"  # far over it
PAST = "2020-01-01T00:00:00Z"

SELL = {"exchange": EX, "pair": "BTC_USDT", "side": "sell", "size": "0.001"}
BUY = {**SELL, "side": "buy"}
BUY_LOW = {**BUY, "size": "0.01", "limit": "10000"}  # rests far under the market, above the minimum notional

# (method, parameters, stable code): each answered -32602 over JSON-RPC and 400 over REST, with nothing written
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("make_order", {**SELL, "type": "stop-market"}, "stop_price_required"),
    ("make_order", {**SELL, "type": "take-profit-market"}, "stop_price_required"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": "1000.001"}, "stop_price_off_tick"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": "0"}, "stop_price_off_tick"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": "-5"}, "stop_price_off_tick"),
    ("make_order", {**SELL, "type": "stop-limit", "stop_price": FAR_BELOW}, "limit_required"),
    ("make_order", {**SELL, "type": "take-profit-limit", "stop_price": FAR_ABOVE}, "limit_required"),
    ("make_order", {**SELL, "type": "stop-limit", "stop_price": FAR_BELOW, "limit": "999.999"}, "limit_off_tick"),
    ("make_order", {**SELL, "type": "trailing-stop"}, "trailing_delta_required"),
    ("make_order", {**SELL, "type": "trailing-stop", "trailing_delta": "0%"}, "trailing_delta_out_of_range"),
    ("make_order", {**SELL, "type": "trailing-stop", "trailing_delta": "100%"}, "trailing_delta_out_of_range"),
    ("make_order", {**SELL, "type": "trailing-stop", "trailing_delta": "-2"}, "trailing_delta_out_of_range"),
    ("make_order", {**SELL, "type": "trailing-stop", "trailing_delta": "0"}, "trailing_delta_out_of_range"),
    ("make_order", {**SELL, "type": "trailing-stop", "trailing_delta": "0.00001%"}, "trailing_delta_out_of_range"),
    ("make_order", {**SELL, "type": "trailing-stop", "trailing_delta": "25.555"}, "trailing_delta_off_tick"),
    ("make_order", {**SELL, "type": "trailing-stop", "trailing_delta": "1%", "activation_price": "70000.005"},
     "activation_price_off_tick"),
    ("make_order", {**SELL, "type": "stop-limit", "stop_price": FAR_BELOW, "limit": "999", "time_in_force": "GTD",
                    "expire_at": PAST}, "expire_at_in_past"),
    ("make_order", {**BUY, "limit": FAR_BELOW, "expire_at": 1_000}, "expire_at_in_past"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": FAR_ABOVE}, "stop_would_trigger"),
    ("make_order", {**BUY, "type": "stop-market", "stop_price": FAR_BELOW}, "stop_would_trigger"),
    ("make_order", {**SELL, "type": "take-profit-market", "stop_price": FAR_BELOW}, "stop_would_trigger"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": FAR_BELOW, "time_in_force": "IOC"}, "time_in_force_invalid"),
    ("make_order", {**SELL, "type": "stop-limit", "stop_price": FAR_BELOW, "limit": "999", "time_in_force": "GTD"},
     "time_in_force_invalid"),
    ("make_order", {**BUY, "limit": FAR_BELOW, "time_in_force": "day"}, "time_in_force_invalid"),
    ("make_order", {**BUY, "limit": FAR_BELOW, "time_in_force": "GTD"}, "time_in_force_invalid"),
    ("make_order", {**BUY, "type": "market", "time_in_force": "IOC"}, "time_in_force_invalid"),
    ("make_order", {**BUY, "limit": FAR_BELOW, "post_only": True, "time_in_force": "FOK"}, "time_in_force_invalid"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": FAR_BELOW, "trigger": "index"}, "invalid_trigger"),
    ("make_order", {**BUY, "limit": FAR_BELOW, "take_profit": {"limit": FAR_ABOVE},
                    "stop_loss": {"stop_price": "2000"}}, "bracket_stop_wrong_side"),
    ("make_order", {**BUY, "limit": "2000", "take_profit": {"limit": "1500"},
                    "stop_loss": {"stop_price": FAR_BELOW}}, "bracket_take_profit_wrong_side"),
    ("make_order", {**BUY, "type": "market", "take_profit": {"stop_price": "2000"},
                    "stop_loss": {"stop_price": FAR_BELOW}}, "bracket_take_profit_wrong_side"),
    ("make_order", {**BUY, "limit": "2000", "take_profit": {"limit": FAR_ABOVE}}, "bracket_incomplete"),
    ("make_order", {**BUY, "limit": "2000", "take_profit": {"limit": "3000.001"}, "stop_loss": {"stop_price": FAR_BELOW}},
     "take_profit_off_tick"),
    ("make_order", {**BUY, "limit": "2000", "take_profit": {"limit": "3000"}, "stop_loss": {"stop_price": "1000.001"}},
     "stop_loss_off_tick"),
    ("make_order", {**BUY, "limit": "2000", "take_profit": {"stop_price": "3000", "type": "take-profit-limit"},
                    "stop_loss": {"stop_price": FAR_BELOW}}, "limit_required"),
    ("make_order", {**BUY, "limit": "2000", "take_profit": {"limit": "3000", "type": "stop-market"},
                    "stop_loss": {"stop_price": FAR_BELOW}}, "bracket_type_invalid"),
    ("make_order", {**BUY, "limit": FAR_BELOW, "stop_price": "900"}, "invalid_params"),
    ("make_order", {**BUY, "limit": FAR_BELOW, "allow_immediate": True}, "invalid_params"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": FAR_BELOW, "limit": "900"}, "invalid_params"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": FAR_BELOW, "trailing_delta": "1%"}, "invalid_params"),
    ("make_order", {**SELL, "type": "trailing-stop", "trailing_delta": "1%", "stop_price": FAR_BELOW}, "invalid_params"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": FAR_BELOW, "expire_at": "next tuesday"}, "invalid_params"),
    ("make_order", {**SELL, "type": "stop-market", "stop_price": FAR_BELOW, "take_profit": {"lmit": "1"}}, "invalid_params"),
    ("make_oco", {**SELL, "limit": FAR_BELOW, "stop_price": "900"}, "oco_prices_wrong_side"),
    ("make_oco", {**SELL, "limit": FAR_ABOVE, "stop_price": "2000000"}, "oco_prices_wrong_side"),
    ("make_oco", {**BUY, "limit": FAR_ABOVE, "stop_price": "2000000"}, "oco_prices_wrong_side"),
    ("make_oco", {**SELL, "limit": FAR_ABOVE, "stop_price": "1000.001"}, "stop_price_off_tick"),
    ("make_oco", {**SELL, "limit": FAR_ABOVE, "stop_price": FAR_BELOW, "stop_limit": "999.999"}, "limit_off_tick"),
    ("make_oco", {**SELL, "limit": FAR_ABOVE}, "missing_parameter"),
    ("make_oco", {**SELL, "limit": FAR_ABOVE, "stop_price": FAR_BELOW, "client_oid": "x" * 59}, "invalid_client_oid"),
]
REST_PATHS = {"make_order": "/xwrap/v1/orders/new", "make_oco": "/xwrap/v1/orders/oco"}


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def state(http: httpx.Client) -> tuple[list[tuple[str, str, str, str]], list[int]]:
    """What a refused order must leave alone: every wallet and the open orders."""
    total = http.get("/xwrap/v1/wallets/total").json()
    wallets = [(w["exchange"], w["currency"], w["balance"], w["hold"]) for w in total["wallets"]]
    return wallets, [o["id"] for o in http.get("/xwrap/v1/orders/open").json()]


async def _market_ready(rpc: RpcClient) -> None:
    """The demo market has a book and a last trade: stop_would_trigger and the OCO sides are judged against them."""
    async with asyncio.timeout(20):
        while not (await rpc.call("get_ohlcv", exchange=EX, pair="BTC_USDT")):
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(("method", "params", "code"), REFUSALS, ids=[f"{m}-{c}-{i}" for i, (m, _, c) in enumerate(REFUSALS)])
async def test_every_refusal_has_one_code_over_json_rpc_and_rest_and_writes_nothing(
    rpc: RpcClient, http: httpx.Client, method: str, params: dict[str, Any], code: str
) -> None:
    await _market_ready(rpc)
    before = state(http)
    params = {"client_oid": uuid.uuid4().hex[:20], **params}
    with pytest.raises(RpcError) as info:
        await rpc.call(method, **params)
    assert (info.value.code, info.value.reason) == (-32602, code), info.value
    assert info.value.message
    response = http.post(REST_PATHS[method], json=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    assert state(http) == before


async def test_a_plain_limit_takes_its_time_in_force_as_its_type(rpc: RpcClient, http: httpx.Client) -> None:
    """IOC and FOK are the limit-immediate-cancel and limit-fill-kill types: far from the market, nothing rests."""
    await _market_ready(rpc)
    before = state(http)
    ioc = await rpc.call("make_order", **BUY_LOW, time_in_force="IOC", client_oid=uuid.uuid4().hex)
    assert (ioc["type"], ioc["status"], ioc["done_reason"]) == ("limit-immediate-cancel", "done", "cancelled")
    fok = http.post(REST_PATHS["make_order"], json={**BUY_LOW, "time_in_force": "FOK"}).json()
    assert (fok["type"], fok["status"], fok["done_reason"]) == ("limit-fill-kill", "done", "killed")
    gtc = await rpc.call("make_order", **BUY_LOW, time_in_force="gtc", client_oid=uuid.uuid4().hex)
    assert (gtc["type"], gtc["status"]) == ("limit", "open")
    await rpc.call("cancel_order", order_id=gtc["id"])
    assert state(http) == before
