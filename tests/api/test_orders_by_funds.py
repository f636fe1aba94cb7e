"""make_order by funds on a real server: "£10.00 of BTC" spends at most 10 of the quote, fee included, reported exactly.

A demo exchange quotes BTC/GBP (kripto's market) and BTC/USDT; its feed ticks once an hour, so
the book read before an order is the book the order walks, and the expected fills are computed
from it here by an independent reference (Decimal arithmetic, level by level). Two traders and
a viewer: the viewer cannot place; an idempotency_key is its owner's (the same key from another
trader is that trader's own order).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

FEE = Decimal("0.001")  # the demo markets' taker fee
EXCHANGES = [{"name": "demo", "feed": "demo", "tick_interval": 3600, "seed": 5, "symbols": ["BTC/GBP", "BTC/USDT"],
              "paper_funds": {"GBP": "1000", "USDT": "1000"}}]
STEP = {"BTC_GBP": Decimal("0.00000001"), "BTC_USDT": Decimal("0.00001")}  # the demo instruments' size steps
_serial = itertools.count(1)
_RUN = uuid.uuid4().hex[:6]


def fresh() -> str:
    return f"k-{_RUN}-{next(_serial)}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("funds")), exchanges=EXCHANGES)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    return server.users({"tom": "trader", "tess": "trader", "vic": "viewer"})


def connect(server: ServerProcess, token: str) -> RpcClient:
    return RpcClient(f"{server.ws_anonymous}?access_token={token}")


async def refusal(call: Any) -> str:
    try:
        await call
    except RpcError as exc:
        return str(exc.data.get("code") if exc.data else exc.code)
    raise AssertionError("the call was not refused")


def expected_walk(asks: list[list[str]], funds: Decimal, step: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(size, executed value, fees) of a market buy of `funds`, fee included, walking `asks` best first (the reference).

    Each level is one fill whose fee is rounded up to 18 decimals; the size taken at a level is
    the most on the step grid that keeps spent + fees <= funds; a level not taken whole is the last.
    """
    size = value = fees = Decimal(0)
    atto = Decimal("1e-18")
    for price_text, shown_text in asks:
        price, shown = Decimal(price_text), Decimal(shown_text)
        left = funds - value - fees
        take = min(shown, (left / (price * (1 + FEE)) / step).to_integral_value(ROUND_FLOOR) * step)
        while take > 0 and price * take + (price * take * FEE).quantize(atto, ROUND_CEILING) > left:
            take -= step
        if take <= 0:
            break
        notional = price * take
        size, value, fees = size + take, value + notional, fees + (notional * FEE).quantize(atto, ROUND_CEILING)
        if take < shown:
            break
    return size, value, fees


@pytest.mark.parametrize(("pair", "quote"), [("BTC_GBP", "GBP"), ("BTC_USDT", "USDT")])
async def test_ten_of_the_quote_buys_what_the_book_sells_for_it_fee_included(server, tokens, pair, quote) -> None:
    async with connect(server, tokens["tom"]) as tom:
        book = await tom.call("get_book", exchange="demo", pair=pair, depth=50)
        before = await tom.call("get_wallet", exchange="demo", currency=quote)
        order = await tom.call("make_order", exchange="demo", pair=pair, side="buy", type="market", funds="10",
                               idempotency_key=fresh())
        size, value, fees = expected_walk(book["asks"], Decimal(10), STEP[pair])
        assert size > 0
        assert order["status"] == "done" and order["settled"] is True and order["funds"] == "10"
        assert Decimal(order["filled_size"]) == size and Decimal(order["size"]) == size
        assert Decimal(order["executed_value"]) == value and Decimal(order["fill_fees"]) == fees
        assert order["fee_currency"] == quote and value + fees <= 10
        after = await tom.call("get_wallet", exchange="demo", currency=quote)
        assert Decimal(before["balance"]) - Decimal(after["balance"]) == value + fees
        assert Decimal(after["hold"]) == Decimal(before["hold"])  # the hold (the funds) is gone with the order
        fill = await tom.notification("trade", timeout=5)
        assert fill["funds"] == "10" and fill["settled"] is True and fill["filled_size"] == fill["exec_amount"]
        pushed = await tom.notification("order", timeout=5)
        assert {k: pushed[k] for k in ("id", "funds", "executed_value", "fill_fees", "settled")} == {
            k: order[k] for k in ("id", "funds", "executed_value", "fill_fees", "settled")}
        stored = next(o for o in await tom.call("list_recent_orders", limit=10) if o["id"] == order["id"])
        assert stored == {**order, "seq": stored["seq"]}  # read back from the store: the same Trade fields


def test_the_rest_order_route_takes_funds_and_an_idempotency_key(server, tokens) -> None:
    with httpx.Client(base_url=server.http, timeout=10, headers={"Authorization": f"Bearer {tokens['tom']}"}) as http:
        key = fresh()
        body = {"exchange": "demo", "pair": "BTC_GBP", "side": "buy", "type": "market", "funds": "10.00", "idempotency_key": key}
        first = http.post("/xwrap/v1/orders/new", json=body)
        assert first.status_code == 200, first.text
        order = first.json()
        assert order["client_order_id"] == key and order["funds"] == "10" and order["settled"] is True
        assert Decimal(order["executed_value"]) + Decimal(order["fill_fees"]) <= 10
        assert http.post("/xwrap/v1/orders/new", json=body).json()["id"] == order["id"]  # the key answers its order
        refused = http.post("/xwrap/v1/orders/new", json={**body, "idempotency_key": fresh(), "funds": "0"})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "funds_not_positive"


async def test_bad_funds_are_refused_with_a_code_and_nothing_is_stored(server, tokens) -> None:
    async with connect(server, tokens["tom"]) as tom:
        base = {"exchange": "demo", "pair": "BTC_GBP", "side": "buy", "type": "market"}
        cases = [
            ({**base, "funds": "0"}, "funds_not_positive"),
            ({**base, "funds": "-10"}, "funds_not_positive"),
            ({**base, "funds": "5"}, "funds_below_min_notional"),  # 5 less the fee is under the minimum of 5
            ({**base, "side": "sell", "funds": "10"}, "funds_market_buy_only"),
            ({**base, "type": "limit", "limit": "100", "funds": "10"}, "funds_market_buy_only"),
            ({**base, "funds": "10", "size": "0.001"}, "size_and_funds"),
            ({**base, "funds": "abc"}, "invalid_number"),
            ({**base, "funds": "10", "client_oid": "a-1", "idempotency_key": "a-2"}, "idempotency_key_mismatch"),
            (dict(base), "missing_parameter"),
        ]
        before = await tom.call("list_recent_orders", include_open=True, limit=1000)
        for params, code in cases:
            assert await refusal(tom.call("make_order", **params)) == code, params
        assert await tom.call("list_recent_orders", include_open=True, limit=1000) == before


async def test_an_idempotency_key_is_its_owners_and_a_viewer_cannot_place(server, tokens) -> None:
    key = fresh()
    params = {"exchange": "demo", "pair": "BTC_GBP", "side": "buy", "type": "market", "funds": "10", "idempotency_key": key}
    async with connect(server, tokens["tom"]) as tom, connect(server, tokens["tess"]) as tess, \
            connect(server, tokens["vic"]) as vic:
        mine = await tom.call("make_order", **params)
        again = await tom.call("make_order", **params)  # a repeat answers the same order, nothing spent twice
        assert again["id"] == mine["id"] and again["executed_value"] == mine["executed_value"]
        by_oid = await tom.call("make_order", **{**{k: v for k, v in params.items() if k != "idempotency_key"}, "client_oid": key})
        assert by_oid["id"] == mine["id"]  # the same key under its other name
        assert await refusal(tom.call("make_order", **{**params, "funds": "11"})) == "duplicate_client_oid"
        theirs = await tess.call("make_order", **params)  # tess's own order under the same key
        assert theirs["id"] != mine["id"] and theirs["client_order_id"] == key
        assert await refusal(vic.call("make_order", **{**params, "idempotency_key": fresh()})) in ("forbidden", "not_allowed")
        tess_orders = await tess.call("list_recent_orders", limit=100)
        assert mine["id"] not in {o["id"] for o in tess_orders}
        vic_orders = await vic.call("list_recent_orders", limit=100)
        assert not {mine["id"], theirs["id"]} & {o["id"] for o in vic_orders}
