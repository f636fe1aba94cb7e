"""Order and trade streams every connection of a user follows, and replay from `since`, over /rpc and /ws/orders, on the
in-process bus and on NATS JetStream.

Each test runs a real server (tests/server.py) with two traders and a viewer. A storm of orders
is placed by one connection while another disconnects and comes back with `?account=&since=`:
it must get every notification it missed once, in `seq` order, then live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from coinwire.api.client import RpcClient, RpcError
from tests.conftest import NATS_URL, nats_namespace
from tests.server import ServerProcess

STORM = 1_000  # orders placed while a follower is away
IN_FLIGHT = 16  # orders the placing connection keeps outstanding


@contextlib.contextmanager
def _server(tmp: Path, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp, env=env)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def server(bus_server: ServerProcess) -> ServerProcess:
    """A server on the in-process bus, then one on NATS JetStream (tests/api/conftest.py)."""
    return bus_server


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    """Two traders and a viewer, signed in."""
    names = {"tom": "trader", "tess": "trader", "vic": "viewer"}
    with server.client() as admin:
        for name, role in names.items():
            admin.post("/api/v1/users", json={"username": name, "password": f"{name}-password", "role": role}).raise_for_status()
    return {name: server.login(name, f"{name}-password")["access_token"] for name in names}


def rpc(server: ServerProcess, token: str, **query: int) -> RpcClient:
    """An /rpc client of the user; `account=` and `since=` go in the query (a replay from the connection's start)."""
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return RpcClient(f"{server.ws_anonymous}?access_token={token}{extra}")


def orders_ws(server: ServerProcess, token: str, **query: int) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"ws://127.0.0.1:{server.port}/ws/orders?access_token={token}{extra}"


async def market_buy(client: RpcClient, oid: str | None = None) -> dict[str, Any]:
    params = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "market", "size": "0.001"}
    if oid is not None:
        params["client_oid"] = oid
    return dict(await client.call("make_order", **params))


async def drain(client: RpcClient, quiet: float = 0.3) -> list[tuple[str, Any]]:
    """Every notification that arrives until none has for `quiet` seconds."""
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            got.append(await asyncio.wait_for(client.notifications.get(), quiet))
    return got


def events(notes: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(m, p) for m, p in notes if m in ("order", "trade")]


async def own_account(server: ServerProcess, token: str) -> tuple[int, int]:
    """The trader's own demo account (made by its first order) and its latest seq."""
    async with rpc(server, token) as client:
        view = await market_buy(client)
        await asyncio.sleep(0.2)
        notes = events(await drain(client, 0.2))
        return int(view["account"]), max(int(p["seq"]) for _, p in notes)


# --- every connection of a user, and nobody else ------------------------------------------------------
async def test_a_second_connection_gets_orders_placed_by_the_first_and_by_rest_and_no_one_else_does(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    async with rpc(server, tokens["tom"]) as first, rpc(server, tokens["tom"]) as second, \
            rpc(server, tokens["tess"]) as other, rpc(server, tokens["vic"]) as viewer:
        placed = await market_buy(first, f"rpc-{uuid.uuid4().hex[:8]}")
        with httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {tokens['tom']}"}, timeout=10) as tom:
            r = tom.post("/xwrap/v1/orders/new", json={"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "market",
                                                       "size": "0.001", "client_oid": f"rest-{uuid.uuid4().hex[:8]}"})
            assert r.status_code == 200, r.text
            rested = r.json()
        got = events(await drain(second, 0.5))
        by_oid = {}
        for method, params in got:
            by_oid.setdefault(params["client_order_id"], []).append((method, params["status"] if method == "order" else None))
        for view in (placed, rested):
            assert by_oid[view["client_order_id"]][-1] == ("order", "done"), got  # its order notification
            assert ("trade", None) in by_oid[view["client_order_id"]], got  # and its trade
        assert all(p["account"] == placed["account"] for _, p in got)
        seqs = [p["seq"] for _, p in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert events(await drain(other, 0.2)) == []
        assert events(await drain(viewer, 0.2)) == []
        # the placing connection got its own too, once each
        own = events(await drain(first, 0.2))
        assert [p["seq"] for _, p in own if p["client_order_id"] == placed["client_order_id"]] == \
            [p["seq"] for _, p in got if p["client_order_id"] == placed["client_order_id"]]


# --- replay --------------------------------------------------------------------------------------------
async def _storm(client: RpcClient, count: int, placed: list[int]) -> None:
    """`count` market buys, `IN_FLIGHT` at a time; `placed[0]` counts the answered ones."""
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        async with sem:
            await market_buy(client)
            placed[0] += 1

    await asyncio.gather(*(one() for _ in range(count)))


def contiguous(seqs: list[int], start: int) -> int:
    """The highest seq up to which every one after `start` was seen."""
    seen = set(seqs)
    last = start
    while last + 1 in seen:
        last += 1
    return last


async def test_a_client_that_reconnects_during_a_storm_with_since_gets_each_missed_event_once_in_order_then_live_ones(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    account, before = await own_account(server, tokens["tom"])
    async with rpc(server, tokens["tom"]) as placer:
        follower = rpc(server, tokens["tom"])
        await follower.connect()
        placed = [0]
        storm = asyncio.create_task(_storm(placer, STORM, placed))
        seen: list[int] = []
        while len(seen) < 100:
            method, params = await asyncio.wait_for(follower.notifications.get(), 10)
            if method in ("order", "trade"):
                seen.append(params["seq"])
        await follower.close()  # gone in the middle of the storm
        since = contiguous(seen, before)
        while placed[0] < STORM // 2:
            await asyncio.sleep(0.01)
        assert not storm.done(), "the storm ended before the follower came back: nothing to test"
        async with rpc(server, tokens["tom"], account=account, since=since) as back:
            await storm
            tail = await market_buy(placer)  # a live one after the storm
            notes = await drain(back, 1.0)
    got = events(notes)
    seqs = [p["seq"] for _, p in got]
    last = tail["seq"]
    assert seqs == list(range(since + 1, last + 1)), [b for a, b in itertools.pairwise(seqs) if b != a + 1][:10]
    assert all(p["account"] == account for _, p in got)
    assert sum(1 for m, _ in got if m == "order") >= STORM // 2 and sum(1 for m, _ in got if m == "trade") >= STORM // 2
    (at, replay), = [(i, p) for i, (m, p) in enumerate(notes) if m == "replayed"]
    assert replay["account"] == account and replay["since"] == since and since < replay["last_seq"] <= last
    assert replay["replayed"] == replay["last_seq"] - since
    assert len(events(notes[:at])) >= replay["replayed"]  # all it counted came before it (live ones may too)


async def test_subscribe_with_since_replays_on_a_connection_the_account_has_not_reached_yet(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    account, since = await own_account(server, tokens["tess"])
    async with rpc(server, tokens["tess"]) as placer:
        missed = [await market_buy(placer) for _ in range(3)]
        async with rpc(server, tokens["tess"]) as back:
            answer = await back.call("subscribe", channels=["order", "trade"], account=account, since=since)
            live = await market_buy(placer)
            got = events(await drain(back, 0.5))
    assert answer["replay"] == {"account": account, "since": since, "replayed": missed[-1]["seq"] - since, "last_seq": missed[-1]["seq"]}
    assert [p["seq"] for _, p in got] == list(range(since + 1, live["seq"] + 1))


async def test_since_refusals_old_foreign_future_and_not_first(server: ServerProcess, tokens: dict[str, str]) -> None:
    tom_account, latest = await own_account(server, tokens["tom"])
    tess_account, _ = await own_account(server, tokens["tess"])
    async with rpc(server, tokens["tess"]) as tess:
        with pytest.raises(RpcError) as foreign:
            await tess.call("subscribe", channels=["order"], account=tom_account, since=0)
        assert foreign.value.reason == "account_not_found"
    async with rpc(server, tokens["tom"]) as tom:
        with pytest.raises(RpcError) as ahead:
            await tom.call("subscribe", channels=["order", "trade"], account=tom_account, since=latest + 5)
        assert ahead.value.reason == "invalid_since" and ahead.value.data["latest_seq"] >= latest
        with pytest.raises(RpcError) as alone:
            await tom.call("subscribe", channels=["order", "trade"], since=0)
        assert alone.value.reason == "invalid_params"
        await market_buy(tom)  # its notifications reach this connection live
        with pytest.raises(RpcError) as late:
            await tom.call("subscribe", channels=["order", "trade"], account=tom_account, since=0)
        assert late.value.reason == "since_not_first" and f"account={tom_account}&since=0" in late.value.message
    async with rpc(server, tokens["vic"]) as vic:
        with pytest.raises(RpcError) as viewer:
            await vic.call("subscribe", channels=["order"], account=tess_account, since=0)
        assert viewer.value.reason == "account_not_found"
    for query, code in (({"account": tom_account, "since": 0}, "account_not_found"), ({"since": 0}, "invalid_params")):
        async with websockets.connect(rpc(server, tokens["tess"], **query).url) as ws:  # in the query: refused, then closed
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert answer["id"] is None and answer["error"]["data"]["code"] == code
        assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, code)


async def test_ws_orders_replays_then_follows_live_as_plain_objects(server: ServerProcess, tokens: dict[str, str]) -> None:
    account, since = await own_account(server, tokens["tess"])
    async with rpc(server, tokens["tess"]) as placer:
        await placer.call("get_status")
        missed = [await market_buy(placer) for _ in range(5)]
        async with websockets.connect(orders_ws(server, tokens["tess"], account=account, since=since)) as ws, \
                websockets.connect(orders_ws(server, tokens["tom"])) as foreign:
            frames = []
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                frames.append(frame)
                if frame["channel"] == "replayed":
                    break
            live = await market_buy(placer)
            while not frames or frames[-1].get("seq") != live["seq"]:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(foreign.recv(), 0.5)
        marker = next(f for f in frames if f["channel"] == "replayed")
        notes = [f for f in frames if f["channel"] in ("order", "trade")]
        assert [f["seq"] for f in notes] == list(range(since + 1, live["seq"] + 1))
        assert marker["replayed"] >= len(missed) * 2 and marker["last_seq"] >= missed[-1]["seq"]
        assert {f["client_order_id"] for f in notes if f["channel"] == "order"} == {v["client_order_id"] for v in [*missed, live]}
        assert all(f["account"] == account for f in notes)


async def test_ws_orders_refuses_another_users_account_with_a_reason(server: ServerProcess, tokens: dict[str, str]) -> None:
    account, _ = await own_account(server, tokens["tom"])
    async with websockets.connect(orders_ws(server, tokens["tess"], account=account)) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert frame["channel"] == "error" and frame["code"] == "account_not_found"
    assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "account_not_found")
    async with websockets.connect(orders_ws(server, tokens["tess"], since=3)) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["code"] == "invalid_params"
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/orders"):
            pass


async def test_a_connection_that_sends_nothing_gets_its_accounts_notifications(server: ServerProcess, tokens: dict[str, str]) -> None:
    """A listening tab sends no request; whatever its user places reaches it at once."""
    async with rpc(server, tokens["tess"]) as placer, rpc(server, tokens["tess"]) as listener:
        view = await market_buy(placer)
        got = events(await drain(listener, 0.3))
    assert [p["client_order_id"] for m, p in got if m == "order"] == [view["client_order_id"]]


async def test_ws_orders_without_account_follows_every_account_the_user_reads_live(server: ServerProcess, tokens: dict[str, str]) -> None:
    async with websockets.connect(orders_ws(server, tokens["tom"])) as mine, websockets.connect(orders_ws(server, tokens["vic"])) as viewer:
        async with rpc(server, tokens["tom"]) as placer:
            view = await market_buy(placer, f"wsall-{uuid.uuid4().hex[:8]}")
        frames = []
        while not frames or frames[-1].get("seq") != view["seq"]:
            frames.append(json.loads(await asyncio.wait_for(mine.recv(), 10)))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(viewer.recv(), 0.5)
    assert {f["channel"] for f in frames} == {"order", "trade"}
    assert all(f["account"] == view["account"] for f in frames)
    assert frames[-1] == {"channel": "order", **view}  # the same object the answer was


# --- what the bus keeps ---------------------------------------------------------------------------------
async def test_since_older_than_the_in_process_bus_keeps_is_replay_unavailable_with_the_oldest_kept_and_a_restart_forgets(
    tmp_path: Path,
) -> None:
    with _server(tmp_path, {"COINWIRE_BUS_MAX_LOG": "40"}) as server:
        token = server.traders("tina")["tina"]
        async with rpc(server, token) as placer:
            views = [await market_buy(placer) for _ in range(30)]  # 60 or more notifications: the bus keeps 40
        account, latest = views[0]["account"], views[-1]["seq"]
        async with rpc(server, token) as late:
            with pytest.raises(RpcError) as gone:
                await late.call("subscribe", channels=["order", "trade"], account=account, since=0)
        oldest = gone.value.data["oldest_seq"]
        assert gone.value.reason == "replay_unavailable" and 1 < oldest <= latest - 39
        async with websockets.connect(orders_ws(server, token, account=account, since=oldest - 2)) as ws:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (frame["channel"], frame["code"], frame["oldest_seq"]) == ("error", "replay_unavailable", oldest)
        async with rpc(server, token) as back:  # from the oldest kept on: all of it
            answer = await back.call("subscribe", channels=["order", "trade"], account=account, since=oldest - 1)
            got = events(await drain(back, 0.3))
        assert [p["seq"] for _, p in got] == list(range(oldest, latest + 1))
        assert answer["replay"] == {"account": account, "since": oldest - 1, "replayed": latest - oldest + 1, "last_seq": latest}
        server.stop()
        server.start()  # the in-process bus starts empty: nothing before the restart can be replayed
        async with rpc(server, token) as after:
            with pytest.raises(RpcError) as forgotten:
                await after.call("subscribe", channels=["order"], account=account, since=latest - 1)
        assert forgotten.value.reason == "replay_unavailable" and forgotten.value.data["oldest_seq"] == latest + 1
        async with rpc(server, token) as current, rpc(server, token) as placer:
            answer = await current.call("subscribe", channels=["order", "trade"], account=account, since=latest)
            view = await market_buy(placer)
            got = events(await drain(current, 0.3))
        assert answer["replay"]["replayed"] == 0 and view["seq"] > latest
        assert [p["seq"] for _, p in got] == list(range(latest + 1, view["seq"] + 1))  # the counter went on where it stopped


@pytest.mark.services
async def test_nats_jetstream_keeps_an_accounts_history_across_a_restart(tmp_path: Path) -> None:
    with nats_namespace() as namespace, _server(tmp_path, {"COINWIRE_BUS_URL": NATS_URL, "COINWIRE_BUS_NAMESPACE": namespace}) as server:
        token = server.traders("nora")["nora"]
        async with rpc(server, token) as placer:
            views = [await market_buy(placer) for _ in range(5)]
        server.stop()
        server.start()
        async with rpc(server, token) as back:
            answer = await back.call("subscribe", channels=["order", "trade"], account=views[0]["account"], since=0)
            got = events(await drain(back, 0.3))
    assert [p["seq"] for _, p in got] == list(range(1, views[-1]["seq"] + 1))
    assert answer["replay"]["replayed"] == views[-1]["seq"]
    assert [p["client_order_id"] for m, p in got if m == "order"] == [v["client_order_id"] for v in views]
