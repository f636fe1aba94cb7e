"""Every JSON-RPC method through a running server and a real WebSocket client: success and errors."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from coinwire.api.client import RpcClient, RpcError
from coinwire.api.methods import METHOD_NAMES
from tests.server import ServerProcess

EX = "demo"


def oid() -> str:
    return uuid.uuid4().hex


async def best(rpc: RpcClient, pair: str = "BTC_USDT") -> tuple[Decimal, Decimal]:
    pricing = await rpc.call("get_pricing", exchange=EX)
    return Decimal(pricing[pair]["bid"]), Decimal(pricing[pair]["ask"])


async def expect_error(coro: object, rpc_code: int, code: str) -> RpcError:
    with pytest.raises(RpcError) as info:
        await coro  # type: ignore[misc]
    assert info.value.code == rpc_code, info.value
    assert info.value.reason == code, info.value
    assert info.value.message
    return info.value


async def test_seed_method_names_are_all_served(rpc: RpcClient) -> None:
    seed = {
        "echo", "echo_notify", "get_status", "get_exchanges", "get_pricing", "get_book", "make_order",
        "cancel_order", "list_open_orders", "list_recent_orders", "create_wallet_set", "deactivate_wallet_set",
        "get_wallet_set", "get_all_wallet_sets", "get_allocated_wallet_set", "get_unallocated_wallet_set",
        "get_total_wallet_set", "get_unallocated_per_exchange", "add_virtual_wallet_tx", "convert_to_usd",
        "get_wallet", "allocate_to_wallet_set",
    }
    assert seed <= set(METHOD_NAMES)


async def test_echo_and_echo_notify(rpc: RpcClient, server: ServerProcess) -> None:
    assert await rpc.call("echo", foo="bar", baz=9) == {"foo": "bar", "baz": 9}
    async with RpcClient(server.ws) as other:
        result = await rpc.call("echo_notify", hello="world")
        assert result["status"] == "ok" and result["receivers"] >= 2
        assert await other.notification("echo_ret") == {"hello": "world"}
        assert await rpc.notification("echo_ret") == {"hello": "world"}


async def test_protocol_errors(rpc: RpcClient) -> None:
    await expect_error(rpc.call("no_such_method"), -32601, "method_not_found")
    await expect_error(rpc.call("get_pricing"), -32602, "invalid_params")  # exchange missing
    await expect_error(rpc.call("get_pricing", exchange=EX, bogus=1), -32602, "invalid_params")
    await rpc.send_raw("{not json")  # answered with id null (see test_batch_and_notification_requests)
    assert await rpc.call("echo", ok=True) == {"ok": True}  # the connection survives it


async def test_status_exchanges_pricing_book(rpc: RpcClient) -> None:
    status = await rpc.call("get_status")
    assert status["status"] == "online" and EX in status["config"]["exchanges"]
    exchanges = await rpc.call("get_exchanges")
    demo = next(e for e in exchanges if e["exchange"] == EX)
    assert demo["status"] == "ready" and demo["mode"] == "paper" and "BTC_USDT" in demo["pairs"]
    assert await rpc.call("get_exchanges", mode="live") == []
    await expect_error(rpc.call("get_exchanges", mode="moon"), -32602, "invalid_mode")
    bid, ask = await best(rpc)
    assert bid < ask
    book = await rpc.call("get_book", exchange=EX, pair="BTC_USDT", depth=100)
    assert len(book["bids"]) == 100 and len(book["asks"]) == 100
    prices = [Decimal(p) for p, _ in book["bids"]]
    assert prices == sorted(prices, reverse=True)
    assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])
    same = await rpc.call("get_book", exchange=EX, symbol="BTC/USDT", depth=5)
    assert len(same["asks"]) == 5
    await expect_error(rpc.call("get_pricing", exchange="nope"), -32001, "unknown_exchange")
    await expect_error(rpc.call("get_book", exchange=EX, pair="DOGE_USDT"), -32001, "unknown_symbol")
    await expect_error(rpc.call("get_book", exchange=EX, pair="BTCUSDT"), -32602, "invalid_symbol")


async def test_limit_order_rests_lists_and_cancels(rpc: RpcClient) -> None:
    await rpc.call("subscribe", channels=["order"])
    bid, _ = await best(rpc)
    price = (bid * Decimal("0.8")).quantize(Decimal("0.01"))
    client_oid = oid()
    order = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="limit", size="0.01", limit=str(price),
                           client_oid=client_oid)
    assert order["status"] == "open" and order["filled_size"] == "0" and order["client_order_id"] == client_oid
    note = await rpc.notification("order")
    assert note["id"] == order["id"]
    open_orders = await rpc.call("list_open_orders")
    assert order["id"] in [o["id"] for o in open_orders]
    # the hold is visible in the unallocated USDT wallet
    unallocated = await rpc.call("get_unallocated_wallet_set")
    usdt = next(w for w in unallocated["wallets"] if w["currency"] == "USDT")
    assert Decimal(usdt["hold"]) >= Decimal("0.01") * price
    cancelled = await rpc.call("cancel_order", order_id=order["id"])
    assert cancelled["status"] == "done" and cancelled["done_reason"] == "cancelled"
    await expect_error(rpc.call("cancel_order", order_id=order["id"]), -32002, "order_done")
    await expect_error(rpc.call("cancel_order", order_id=10**9), -32001, "order_not_found")
    recent = await rpc.call("list_recent_orders")
    assert order["id"] in [o["id"] for o in recent]


async def test_market_order_fills_and_settles(rpc: RpcClient) -> None:
    await rpc.call("subscribe", channels=["trade"])
    before = await rpc.call("get_unallocated_wallet_set")
    btc_before = Decimal(next(w for w in before["wallets"] if w["currency"] == "BTC")["balance"])
    order = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="market", size="0.05", client_oid=oid())
    assert order["status"] == "done" and order["done_reason"] == "filled"
    assert Decimal(order["filled_size"]) == Decimal("0.05") and Decimal(order["avg_price"]) > 0
    trade = await rpc.notification("trade")
    assert trade["client_order_id"] == order["client_order_id"] and trade["maker"] is False
    after = await rpc.call("get_unallocated_wallet_set")
    btc_after = Decimal(next(w for w in after["wallets"] if w["currency"] == "BTC")["balance"])
    assert btc_after - btc_before == Decimal("0.05")


async def test_order_types_ioc_fok_post_only(rpc: RpcClient) -> None:
    bid, ask = await best(rpc)
    far = (bid * Decimal("0.5")).quantize(Decimal("0.01"))
    ioc = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="limit-immediate-cancel", size="0.01", limit=str(far),
                         client_oid=oid())
    assert ioc["status"] == "done" and ioc["done_reason"] == "cancelled" and ioc["filled_size"] == "0"
    fok = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="limit-fill-kill", size="0.01", limit=str(far),
                         client_oid=oid())
    assert fok["status"] == "done" and fok["done_reason"] == "killed"
    high = (ask * Decimal("1.05")).quantize(Decimal("0.01"))
    fok_ok = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="limit-fill-kill", size="0.001", limit=str(high),
                            client_oid=oid())
    assert fok_ok["done_reason"] == "filled"
    await expect_error(
        rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="limit-post-only", size="0.01", limit=str(high),
                 client_oid=oid()),
        -32000, "post_only_would_take",
    )
    po = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="limit", post_only=True, size="0.01", limit=str(far),
                        client_oid=oid())
    assert po["type"] == "limit-post-only" and po["status"] == "open"
    await rpc.call("cancel_order", client_oid=po["client_order_id"])


async def test_client_oid_is_an_idempotency_key(rpc: RpcClient) -> None:
    bid, _ = await best(rpc)
    far = str((bid * Decimal("0.7")).quantize(Decimal("0.01")))
    key = oid()
    first, second = await asyncio.gather(
        rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", size="0.01", limit=far, client_oid=key),
        rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", size="0.01", limit=far, client_oid=key),
    )
    assert first["id"] == second["id"]
    again = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", size="0.01", limit=far, client_oid=key)
    assert again["id"] == first["id"]
    opened = [o for o in await rpc.call("list_open_orders") if o["client_order_id"] == key]
    assert len(opened) == 1
    await expect_error(
        rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="sell", size="0.01", limit=far, client_oid=key),
        -32002, "duplicate_client_oid",
    )
    await rpc.call("cancel_order", order_id=first["id"])


@pytest.mark.parametrize(
    ("params", "rpc_code", "code"),
    [
        ({"exchange": "nope", "pair": "BTC_USDT", "side": "buy", "size": "1", "limit": "1"}, -32001, "unknown_exchange"),
        ({"pair": "XYZ_USDT", "side": "buy", "size": "1", "limit": "1"}, -32001, "unknown_symbol"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "-1", "limit": "100"}, -32602, "invalid_size"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "abc", "limit": "100"}, -32602, "invalid_number"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "0.01", "limit": "100.001"}, -32602, "too_precise"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "0.000001", "limit": "100"}, -32602, "too_precise"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "0.01", "limit": "100", "type": "stop"}, -32602, "unknown_order_type"),
        ({"pair": "BTC_USDT", "side": "sell", "size": "0.01", "type": "liquidation"}, -32602, "unknown_order_type"),
        ({"pair": "BTC_USDT", "side": "up", "size": "0.01", "limit": "100"}, -32602, "invalid_side"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "0.01", "type": "limit"}, -32602, "missing_limit"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "5000", "limit": "100000"}, -32003, "insufficient_funds"),
        ({"pair": "BTC_USDT", "side": "sell", "size": "500", "limit": "100"}, -32003, "insufficient_funds"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "0.01", "limit": "100", "wallet_set_id": 999999}, -32001, "wallet_set_not_found"),
        ({"pair": "BTC_USDT", "side": "buy", "size": "0.01", "limit": "100", "cancel_after": -1}, -32602, "invalid_cancel_after"),
    ],
)
async def test_make_order_bad_input_writes_nothing(rpc: RpcClient, params: dict, rpc_code: int, code: str) -> None:
    before_open = await rpc.call("list_open_orders")
    before_total = await rpc.call("get_total_wallet_set")
    params = {"exchange": EX, **params}
    await expect_error(rpc.call("make_order", client_oid=oid(), **params), rpc_code, code)
    assert await rpc.call("list_open_orders") == before_open
    after_total = await rpc.call("get_total_wallet_set")
    assert [(w["currency"], w["balance"], w["hold"]) for w in after_total["wallets"]] == [
        (w["currency"], w["balance"], w["hold"]) for w in before_total["wallets"]
    ]


async def test_wallet_sets_allocate_trade_and_deactivate(rpc: RpcClient) -> None:
    run = f"run-{oid()[:8]}"
    created = await rpc.call("create_wallet_set", run_id=run, wallets=[
        {"exchange": EX, "currency": "USDT", "allocation": "5000"},
        {"exchange": EX, "currency": "BTC", "allocation": "0.5"},
    ])
    set_id = created["id"]
    ws = await rpc.call("get_wallet_set", set_id=set_id)
    assert ws["run_id"] == run and ws["type"] == "logical"
    balances = {w["currency"]: w for w in ws["wallets"]}
    assert balances["USDT"]["balance"] == "5000" and balances["BTC"]["available"] == "0.5"
    assert balances["USDT"]["present_value"]["balance_usd"] == "5000"
    # a set can only spend what it was given
    bid, _ = await best(rpc)
    await expect_error(
        rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="sell", size="0.6", limit=str(bid), wallet_set_id=set_id,
                 client_oid=oid()),
        -32003, "insufficient_funds",
    )
    far = str((bid * Decimal("0.5")).quantize(Decimal("0.01")))
    resting = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", size="0.01", limit=far, wallet_set_id=set_id,
                             client_oid=oid())
    filled = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="sell", type="market", size="0.1", wallet_set_id=set_id,
                            client_oid=oid())
    assert filled["done_reason"] == "filled"
    ws = await rpc.call("get_wallet_set", set_id=set_id)
    balances = {w["currency"]: w for w in ws["wallets"]}
    assert Decimal(balances["BTC"]["balance"]) == Decimal("0.4")
    assert Decimal(balances["USDT"]["hold"]) > 0
    all_sets = await rpc.call("get_all_wallet_sets")
    assert str(set_id) in all_sets and {"total", "allocated", "unallocated"} <= set(all_sets)
    total = {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in all_sets["total"]["wallets"]}
    alloc = {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in all_sets["allocated"]["wallets"]}
    unalloc = {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in all_sets["unallocated"]["wallets"]}
    for key, value in total.items():
        assert value == alloc.get(key, 0) + unalloc.get(key, 0)
    assert (await rpc.call("get_allocated_wallet_set"))["type"] == "allocated"
    per_exchange = await rpc.call("get_unallocated_per_exchange")
    assert EX in per_exchange
    history = await rpc.call("get_wallet_set_history", set_id=set_id)
    assert history["id"] == set_id and len(history["data"]) >= 4
    result = await rpc.call("deactivate_wallet_set", set_id=set_id)
    assert result == {"id": set_id, "active": False}
    assert resting["id"] not in [o["id"] for o in await rpc.call("list_open_orders")]
    await expect_error(rpc.call("deactivate_wallet_set", set_id=set_id), -32002, "wallet_set_inactive")
    await expect_error(rpc.call("get_wallet_set", set_id=424242), -32001, "wallet_set_not_found")


async def test_wallet_set_errors(rpc: RpcClient) -> None:
    await expect_error(rpc.call("create_wallet_set", run_id="x", wallets=[{"exchange": EX, "currency": "USDT", "allocation": "1e12"}]),
                       -32003, "insufficient_funds")
    await expect_error(rpc.call("create_wallet_set", run_id="x", wallets=[{"exchange": EX, "currency": "DOGE", "allocation": "1"}]),
                       -32000, "bad_wallet_config")
    await expect_error(rpc.call("create_wallet_set", run_id="x", wallets=[{"exchange": "nope", "currency": "USDT", "allocation": "1"}]),
                       -32001, "unknown_exchange")
    await expect_error(rpc.call("create_wallet_set", run_id="x", wallets=[]), -32602, "bad_wallet_config")
    await expect_error(rpc.call("create_wallet_set", run_id="x", wallets=[{"exchange": EX, "currency": "USDT"}]), -32602, "invalid_params")


async def test_virtual_wallet_tx_and_convert(rpc: RpcClient) -> None:
    before = await rpc.call("get_unallocated_wallet_set")
    sol = Decimal(next(w for w in before["wallets"] if w["currency"] == "SOL")["balance"])
    tx = await rpc.call("add_virtual_wallet_tx", exchange=EX, base="SOL", movement="12.5")
    assert isinstance(tx["id"], int)
    after = await rpc.call("get_unallocated_wallet_set")
    assert Decimal(next(w for w in after["wallets"] if w["currency"] == "SOL")["balance"]) == sol + Decimal("12.5")
    await rpc.call("add_virtual_wallet_tx", exchange=EX, base="SOL", movement="-12.5")
    await expect_error(rpc.call("add_virtual_wallet_tx", exchange=EX, base="SOL", movement="-1e9"), -32003, "insufficient_funds")
    await expect_error(rpc.call("add_virtual_wallet_tx", exchange=EX, base="SOL", movement="0"), -32602, "invalid_amount")
    await expect_error(rpc.call("add_virtual_wallet_tx", exchange="nope", base="SOL", movement="1"), -32001, "unknown_exchange")
    assert await rpc.call("convert_to_usd", currency="USDT", value="12.5") == "12.5"
    bid, _ = await best(rpc)
    assert Decimal(await rpc.call("convert_to_usd", currency="BTC", value="2")) == 2 * bid
    assert await rpc.call("convert_to_usd", currency="XYZ", value="1") is None
    await expect_error(rpc.call("convert_to_usd", currency="BTC", value="1", side="mid"), -32602, "invalid_side")


async def test_cancel_after_expires_a_resting_order(rpc: RpcClient) -> None:
    bid, _ = await best(rpc)
    far = str((bid * Decimal("0.6")).quantize(Decimal("0.01")))
    order = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", size="0.01", limit=far, cancel_after=1, client_oid=oid())
    assert order["status"] == "open" and order["cancel_after"] == 1
    for _ in range(40):
        await asyncio.sleep(0.1)
        if order["id"] not in [o["id"] for o in await rpc.call("list_open_orders")]:
            break
    recent = {o["id"]: o for o in await rpc.call("list_recent_orders", limit=50)}
    assert recent[order["id"]]["done_reason"] == "expired"


async def test_batch_and_notification_requests(rpc: RpcClient, server: ServerProcess) -> None:
    import msgspec
    import websockets

    async with websockets.connect(server.ws) as ws:
        await ws.send(msgspec.json.encode([
            {"jsonrpc": "2.0", "method": "echo", "params": {"a": 1}, "id": 1},
            {"jsonrpc": "2.0", "method": "echo", "params": {"b": 2}},
            {"jsonrpc": "2.0", "method": "nope", "id": 2},
        ]).decode())
        answer = msgspec.json.decode(await ws.recv())
        assert {a["id"] for a in answer} == {1, 2}
        await ws.send("{broken")
        parse = msgspec.json.decode(await ws.recv())
        assert parse["error"]["code"] == -32700 and parse["id"] is None
        await ws.send(msgspec.json.encode({"jsonrpc": "2.0", "method": "echo", "params": [1, 2], "id": 3}).decode())
        positional = msgspec.json.decode(await ws.recv())
        assert positional["error"]["code"] == -32602
        await ws.send(msgspec.json.encode({"method": "echo", "id": 4}).decode())
        invalid = msgspec.json.decode(await ws.recv())
        assert invalid["error"]["code"] == -32600


async def test_logmessages_notifications(rpc: RpcClient) -> None:
    await rpc.call("subscribe", channels=["logmessages"])
    order = await rpc.call("make_order", exchange=EX, pair="BTC_USDT", side="buy", type="market", size="0.001", client_oid=oid())
    note = await rpc.notification("logmessages")
    assert note["name"] == "user.orders.manual" and note["levelname"] == "INFO"
    assert note["message"] == f"Order {order['client_order_id']} is done (filled)"
    await expect_error(rpc.call("subscribe", channels=["nope"]), -32602, "unknown_channel")


async def test_the_seeds_args_member_is_refused_naming_params_and_runs_nothing(rpc: RpcClient, server: ServerProcess) -> None:
    import msgspec
    import websockets

    await rpc.call("subscribe", channels=["echo_ret"])
    before = await rpc.call("list_recent_orders", include_open=True, limit=5)
    async with websockets.connect(server.ws) as ws:
        async def answer(request: dict) -> dict:
            await ws.send(msgspec.json.encode(request).decode())
            return msgspec.json.decode(await ws.recv())

        order = {"exchange": EX, "pair": "BTC_USDT", "side": "buy", "type": "market", "size": "0.001"}
        for method, args in (("make_order", order), ("echo", {"a": 1}), ("get_status", {})):
            got = await answer({"jsonrpc": "2.0", "id": 7, "method": method, "args": args})
            error = got["error"]
            assert (got["id"], error["code"], error["data"]["code"]) == (7, -32602, "use_params"), got
            assert '"args"' in error["message"] and '"params"' in error["message"]
        # with "params" too, "args" is still not JSON-RPC: refused, not half-read
        got = await answer({"jsonrpc": "2.0", "id": 8, "method": "echo", "params": {"a": 1}, "args": {"b": 2}})
        assert got["error"]["data"]["code"] == "use_params"
        # any other member a JSON-RPC 2.0 request does not have: an invalid request, named
        got = await answer({"jsonrpc": "2.0", "id": 9, "method": "echo", "params": {"a": 1}, "kwargs": {"b": 2}})
        assert (got["error"]["code"], got["error"]["data"]) == (-32600, {"code": "unknown_member", "members": ["kwargs"]})
        assert "kwargs" in got["error"]["message"]
        # a notification (no id) with "args" gets no answer and does not run: no echo_ret reaches the subscriber
        await ws.send(msgspec.json.encode({"jsonrpc": "2.0", "method": "echo_notify", "args": {"x": 1}}).decode())
        got = await answer({"jsonrpc": "2.0", "id": 10, "method": "echo", "params": {"still": "here"}})
        assert got == {"jsonrpc": "2.0", "result": {"still": "here"}, "id": 10}
    with pytest.raises(asyncio.TimeoutError):
        await rpc.notification("echo_ret", timeout=0.5)
    assert await rpc.call("list_recent_orders", include_open=True, limit=5) == before  # no order was placed


async def test_deactivate_wallet_set_takes_the_seeds_wallet_set_id_or_set_id_exactly_one(rpc: RpcClient) -> None:
    wallets = [{"exchange": EX, "currency": "USDT", "allocation": "10"}]
    first = (await rpc.call("create_wallet_set", wallets=wallets))["id"]
    second = (await rpc.call("create_wallet_set", wallets=wallets))["id"]
    await expect_error(rpc.call("deactivate_wallet_set"), -32602, "missing_parameter")
    await expect_error(rpc.call("deactivate_wallet_set", set_id=first, wallet_set_id=first), -32602, "conflicting_parameters")
    await expect_error(rpc.call("deactivate_wallet_set", set_id=first, wallet_set_id=second), -32602, "conflicting_parameters")
    assert (await rpc.call("get_wallet_set", set_id=first))["active"] is True  # a refused call changed nothing
    assert await rpc.call("deactivate_wallet_set", wallet_set_id=first) == {"id": first, "active": False}
    assert await rpc.call("deactivate_wallet_set", set_id=second) == {"id": second, "active": False}
    await expect_error(rpc.call("deactivate_wallet_set", wallet_set_id=first), -32002, "wallet_set_inactive")
    await expect_error(rpc.call("deactivate_wallet_set", wallet_set_id=424242), -32001, "wallet_set_not_found")


async def test_add_virtual_wallet_tx_honours_wallet_id_or_refuses_it(rpc: RpcClient) -> None:
    before = await rpc.call("get_total_wallet_set")
    set_id = (await rpc.call("create_wallet_set", wallets=[{"exchange": EX, "currency": "SOL", "allocation": "1"}]))["id"]
    wallet_id = (await rpc.call("get_wallet_set", set_id=set_id))["wallets"][0]["id"]
    error = await expect_error(  # a wallet set's wallet: virtual funds go to an account's unallocated wallet only
        rpc.call("add_virtual_wallet_tx", exchange=EX, base="SOL", movement="5", wallet_id=wallet_id), -32602, "not_unallocated"
    )
    assert "wallet set" in error.message and error.data["field"] == "wallet_id"
    unallocated = await rpc.call("get_wallet", exchange=EX, currency="SOL")
    await rpc.call("add_virtual_wallet_tx", exchange=EX, movement="5", wallet_id=unallocated["id"])  # honoured: that wallet
    assert Decimal((await rpc.call("get_wallet", exchange=EX, currency="SOL"))["balance"]) == Decimal(unallocated["balance"]) + 5
    await rpc.call("add_virtual_wallet_tx", exchange=EX, base="SOL", movement="-5")
    await rpc.call("deactivate_wallet_set", set_id=set_id)
    after = await rpc.call("get_total_wallet_set")
    assert [(w["currency"], w["balance"]) for w in after["wallets"]] == [(w["currency"], w["balance"]) for w in before["wallets"]]


async def test_an_id_that_cannot_come_back_as_sent_is_refused(server: ServerProcess) -> None:
    """JSON-RPC ids are strings, integers or null: a fraction would come back as text, an object or list is no id."""
    import msgspec
    import websockets

    async with websockets.connect(server.ws) as ws:
        for raw_id in ("1.5", "1e400", "{\"a\": 1}", "[1]", "true"):
            await ws.send('{"jsonrpc": "2.0", "method": "echo", "params": {}, "id": ' + raw_id + "}")
            answer = msgspec.json.decode(await asyncio.wait_for(ws.recv(), 10))
            assert answer["id"] is None and answer["error"]["code"] == -32600, (raw_id, answer)
            assert answer["error"]["data"]["code"] == "invalid_id"
        for good in ('"x-1"', "7", "null"):
            await ws.send('{"jsonrpc": "2.0", "method": "echo", "params": {"ok": 1}, "id": ' + good + "}")
            answer = msgspec.json.decode(await asyncio.wait_for(ws.recv(), 10))
            assert answer["result"] == {"ok": 1} and answer["id"] == msgspec.json.decode(good), answer
