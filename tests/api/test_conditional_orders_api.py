"""Conditional orders, OCOs and brackets placed over JSON-RPC and REST on the paper venue, end to end.

One real `coinwire serve` process per module (tests/api/conftest.py), on the demo feed: BTC/USDT near
60,000. Levels far from the market keep every order armed for the test's length; a stop the market
has passed is placed with allow_immediate and fires at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

EX = "demo"
PAIR = {"exchange": EX, "pair": "BTC_USDT"}


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def oid() -> str:
    return uuid.uuid4().hex[:24]


async def touch(rpc: RpcClient) -> tuple[Decimal, Decimal]:
    async with asyncio.timeout(20):
        while True:
            quote = (await rpc.call("get_pricing", exchange=EX))["BTC_USDT"]
            if quote["bid"] and (await rpc.call("get_ohlcv", **PAIR)):
                return Decimal(quote["bid"]), Decimal(quote["ask"])
            await asyncio.sleep(0.2)


def price(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def holds(http: httpx.Client) -> dict[str, Decimal]:
    total = http.get("/xwrap/v1/wallets/total").json()
    return {w["currency"]: Decimal(w["hold"]) for w in total["wallets"] if w["exchange"] == EX}


async def test_each_conditional_type_rests_untriggered_with_its_parameters_and_cancels(rpc: RpcClient, http: httpx.Client) -> None:
    bid, ask = await touch(rpc)
    before = holds(http)
    expire = time.time() + 3600
    placed = [
        await rpc.call("make_order", **PAIR, side="sell", size="0.01", type="stop-market", stop_price=price(bid / 2), client_oid=oid()),
        await rpc.call("make_order", **PAIR, side="sell", size="0.01", type="stop-limit", stop_price=price(bid / 2),
                       limit=price(bid / 2 - 10), time_in_force="GTD", expire_at=int(expire * 1000), trigger="bid_ask",
                       client_oid=oid()),
        await rpc.call("make_order", **PAIR, side="sell", size="0.01", type="take-profit-market", stop_price=price(ask * 2),
                       trigger="mark", client_oid=oid()),
        http.post("/xwrap/v1/orders/new", json={**PAIR, "side": "buy", "size": "0.01", "type": "take-profit-limit",
                                                 "stop_price": price(bid / 2), "limit": price(bid / 2), "client_oid": oid()}).json(),
        http.post("/xwrap/v1/orders/new", json={**PAIR, "side": "sell", "size": "0.01", "type": "trailing-stop",
                                                 "trailing_delta": "1.5%", "activation_price": price(ask * 2),
                                                 "client_oid": oid()}).json(),
        await rpc.call("make_order", **PAIR, side="buy", size="0.01", type="trailing-stop", trailing_delta="250.5",
                       activation_price=price(bid / 2), client_oid=oid()),
    ]
    assert [o["status"] for o in placed] == ["untriggered"] * 6, placed
    assert [o["type"] for o in placed] == ["stop-market", "stop-limit", "take-profit-market", "take-profit-limit", "trailing-stop",
                                           "trailing-stop"]
    assert [o["trigger"] for o in placed] == ["last", "bid_ask", "mark", "last", "last", "last"]
    assert Decimal(placed[0]["stop_price"]) == Decimal(price(bid / 2))
    assert (placed[1]["time_in_force"], Decimal(placed[1]["limit"])) == ("GTD", Decimal(price(bid / 2 - 10)))
    assert placed[1]["expire_at"].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(expire)))
    assert (placed[4]["trailing_delta"], Decimal(placed[4]["activation_price"])) == ("1.5%", Decimal(price(ask * 2)))
    assert placed[5]["trailing_delta"] == "250.5"
    assert holds(http)["BTC"] > before["BTC"] and holds(http)["USDT"] > before["USDT"]  # held from acceptance
    listed = {o["id"]: o["status"] for o in await rpc.call("list_open_orders")}
    assert all(listed.get(o["id"]) == "untriggered" for o in placed), listed
    for o in placed:
        assert (await rpc.call("cancel_order", order_id=o["id"]))["status"] == "done"
    assert holds(http) == before


async def test_a_stop_the_market_passed_fires_at_once_only_with_allow_immediate(rpc: RpcClient) -> None:
    bid, _ = await touch(rpc)
    params = {**PAIR, "side": "sell", "size": "0.001", "type": "stop-market", "stop_price": price(bid * 2)}
    with pytest.raises(RpcError) as refused:
        await rpc.call("make_order", **params, client_oid=oid())
    assert refused.value.reason == "stop_would_trigger"
    fired = await rpc.call("make_order", **params, allow_immediate=True, client_oid=oid())
    assert fired["status"] in ("triggered", "done"), fired
    async with asyncio.timeout(10):
        while fired["status"] != "done":
            await asyncio.sleep(0.1)
            fired = next(o for o in await rpc.call("list_recent_orders", include_open=True) if o["id"] == fired["id"])
    assert fired["triggered_at"] and Decimal(fired["filled_size"]) == Decimal("0.001")


async def test_a_plain_limit_good_till_a_date_carries_it(rpc: RpcClient) -> None:
    bid, _ = await touch(rpc)
    expire = time.time() + 3600
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expire))
    placed = await rpc.call("make_order", **PAIR, side="buy", size="0.01", limit=price(bid / 2), expire_at=iso, client_oid=oid())
    assert (placed["type"], placed["status"], placed["time_in_force"], placed["expire_at"][:19]) == ("limit", "open", "GTD", iso[:19])
    await rpc.call("cancel_order", order_id=placed["id"])


async def test_an_oco_places_both_legs_holds_once_answers_a_repeat_and_cancels_as_one(rpc: RpcClient, http: httpx.Client) -> None:
    bid, ask = await touch(rpc)
    before = holds(http)
    key = oid()
    params: dict[str, Any] = {**PAIR, "side": "sell", "size": "0.02", "limit": price(ask * 2), "stop_price": price(bid / 2),
                              "stop_limit": price(bid / 2 - 10), "client_oid": key}
    legs = await rpc.call("make_oco", **params)
    assert [(o["type"], o["client_order_id"]) for o in legs] == [("limit", f"{key}:limit"), ("stop-limit", f"{key}:stop")]
    assert legs[0]["oco_id"] == legs[1]["oco_id"] == legs[0]["id"]
    assert [o["status"] for o in legs] == ["open", "untriggered"]
    assert holds(http)["BTC"] - before["BTC"] == Decimal("0.02")  # the pair holds its base once
    again = http.post("/xwrap/v1/orders/oco", json=params).json()
    assert [o["id"] for o in again] == [o["id"] for o in legs]  # a repeat answers the list it made
    cancelled = await rpc.call("cancel_order", order_id=legs[1]["id"])
    assert cancelled["status"] == "done"
    recent = {o["id"]: o for o in await rpc.call("list_recent_orders", include_open=True)}
    assert [recent[o["id"]]["status"] for o in legs] == ["done", "done"]  # cancelling a leg cancels the list
    assert holds(http) == before
    rest = http.post("/xwrap/v1/orders/oco", json={**PAIR, "side": "buy", "size": "0.01", "limit": price(bid / 2),
                                                    "stop_price": price(ask * 2)}).json()
    assert [o["type"] for o in rest] == ["limit", "stop-market"] and rest[0]["oco_id"] == rest[0]["id"]
    await rpc.call("cancel_order", order_id=rest[0]["id"])


async def test_a_bracket_parent_rests_with_its_children_pending_and_a_cancel_ends_them(rpc: RpcClient, http: httpx.Client) -> None:
    bid, ask = await touch(rpc)
    before = holds(http)
    entry = bid / 2
    parent = await rpc.call("make_order", **PAIR, side="buy", size="0.01", limit=price(entry), client_oid=oid(),
                            take_profit={"stop_price": price(entry * 2), "limit": price(entry * 2)},
                            stop_loss={"stop_price": price(entry * Decimal("0.9"))})
    assert (parent["type"], parent["status"]) == ("limit", "open")
    legs = {k: {f: Decimal(v) if f != "type" and v is not None else v for f, v in leg.items()}
            for k, leg in parent["bracket"].items() if k != "trigger"}
    assert (legs, parent["bracket"]["trigger"]) == ({  # the children as parsed: a take-profit-limit and a stop-market
        "take_profit": {"type": "take-profit-limit", "stop_price": Decimal(price(entry * 2)), "limit": Decimal(price(entry * 2)),
                        "percent": None, "trailing_delta": None},
        "stop_loss": {"type": "stop-market", "stop_price": Decimal(price(entry * Decimal("0.9"))), "limit": None, "percent": None,
                      "trailing_delta": None}}, "last")
    assert (await rpc.call("cancel_order", order_id=parent["id"]))["status"] == "done"
    assert holds(http) == before
    market = http.post("/xwrap/v1/orders/new", json={**PAIR, "side": "buy", "size": "0.001", "type": "market", "client_oid": oid(),
                                                     "take_profit": {"limit": price(ask * 2)},
                                                     "stop_loss": {"stop_price": price(bid / 2)}}).json()
    assert market["status"] == "done" and Decimal(market["filled_size"]) == Decimal("0.001"), market
    async with asyncio.timeout(10):
        while len(children := [o for o in await rpc.call("list_open_orders") if o["parent_id"] == market["id"]]) < 2:
            await asyncio.sleep(0.1)
    assert sorted((o["type"], o["side"], o["size"]) for o in children) == [("limit", "sell", "0.001"), ("stop-market", "sell", "0.001")]
    assert children[0]["oco_id"] == children[1]["oco_id"]
    await rpc.call("cancel_order", order_id=children[0]["id"])
    recent = {o["id"]: o["status"] for o in await rpc.call("list_recent_orders", include_open=True)}
    assert [recent[o["id"]] for o in children] == ["done", "done"]
