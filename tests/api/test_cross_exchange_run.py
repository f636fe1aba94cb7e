"""A run whose wallet set spans two paper exchanges, through a real server: a trader's `cross_exchange` run trades on both.

Two traders and a viewer: the run is funded from its starter's own account on each exchange,
its orders and fills land in those accounts and reach that trader's connections only; the
other trader's funds and the viewer see nothing of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.api.signed_in import wait_for
from tests.server import DEMO_EXCHANGES, ServerProcess

EXCHANGES = [*DEMO_EXCHANGES, {**DEMO_EXCHANGES[0], "name": "demo2", "demo_premium_bp": 80}]  # demo2 quotes 0.8% dearer
BALANCES = {"demo:USDT": "5000", "demo:BTC": "0.1", "demo2:USDT": "5000", "demo2:BTC": "0.1"}
USERS = {"tom": "trader", "tess": "trader", "vic": "viewer"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("xex")), exchanges=EXCHANGES)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def tokens(server: ServerProcess) -> dict[str, str]:
    return server.users(USERS)


def http(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, timeout=30, headers={"Authorization": f"Bearer {token}"})


def connect(server: ServerProcess, token: str) -> RpcClient:
    return RpcClient(f"{server.ws_anonymous}?access_token={token}")


Amounts = dict[tuple[str, str], Decimal]  # (exchange, currency) -> balance


async def funds(rpc: RpcClient) -> dict[str, Amounts]:
    """The caller's `total`, `allocated` and `unallocated` balances per exchange and currency."""
    every = await rpc.call("get_all_wallet_sets")
    return {kind: {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in every[kind]["wallets"]}
            for kind in ("total", "allocated", "unallocated")}


async def notified(rpc: RpcClient, run_id: str, trades: int, orders: set[str]) -> list[tuple[str, Any]]:
    """Every notification the connection got, read until `trades` trade notifications of the run and one of each order are there."""
    out: list[tuple[str, Any]] = []

    def of(method: str) -> list[Any]:
        return [params for name, params in out if name == method and params.get("run_id") == run_id]

    while len(of("trade")) < trades or {o["client_order_id"] for o in of("order")} != orders:
        out.append(await asyncio.wait_for(rpc.notifications.get(), 10))
    return out


@pytest.mark.timeout(180)
async def test_a_traders_cross_exchange_run_trades_both_exchanges_from_their_accounts_only(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    async with connect(server, tokens["tom"]) as tom, connect(server, tokens["tess"]) as tess, connect(server, tokens["vic"]) as vic:
        mine = {ex: (await tom.call("get_wallet", exchange=ex, currency="USDT"))["account"] for ex in ("demo", "demo2")}
        theirs = {ex: (await tess.call("get_wallet", exchange=ex, currency="USDT"))["account"] for ex in ("demo", "demo2")}
        assert not set(mine.values()) & set(theirs.values())
        tess_before, tom_before = await funds(tess), await funds(tom)

        with http(server, tokens["vic"]) as viewer:  # a viewer starts nothing
            refused = viewer.put("/runnables/cross_exchange/start", json={"mode": "paper", "balances": BALANCES})
            assert refused.status_code == 403, refused.text
        with http(server, tokens["tom"]) as api:
            started = api.put("/runnables/cross_exchange/start", json={"mode": "paper", "balances": BALANCES})
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            fills = wait_for(api, f"/runs/{run_id}/messages?method=venue.fill&limit=1000",
                             lambda page: len({m["params"]["exchange"] for m in page["messages"]}) == 2 and page["total"] >= 4)
            assert {(m["params"]["exchange"], m["params"]["side"]) for m in fills["messages"]} == {("demo", "buy"), ("demo2", "sell")}
            running = await funds(tom)
            orders = [o for o in await tom.call("list_recent_orders", include_open=True, limit=1000) if o.get("run_id") == run_id]
            assert {(o["exchange"], o["account"]) for o in orders} == {("demo", mine["demo"]), ("demo2", mine["demo2"])}
            set_id = orders[0]["wallet_set_id"]
            assert {o["wallet_set_id"] for o in orders} == {set_id}
            wallet_set = await tom.call("get_wallet_set", set_id=set_id)
            assert wallet_set["active"] and wallet_set["run_id"] == run_id
            assert {(w["exchange"], w["account"]) for w in wallet_set["wallets"]} == {("demo", mine["demo"]), ("demo2", mine["demo2"])}
            stopped = api.put(f"/runs/{run_id}/stop")
            assert stopped.status_code == 200, stopped.text
            report = stopped.json()["report"]
            assert report["exchanges"] == ["demo", "demo2"] and {t["exchange"] for t in report["trades"]} == {"demo", "demo2"}
            run_orders = [o for o in await tom.call("list_recent_orders", include_open=True, limit=1000) if o.get("run_id") == run_id]
            fill_count = api.get(f"/runs/{run_id}/messages?method=venue.fill&limit=1").json()["total"]
        assert len(report["trades"]) == fill_count and all(o["status"] == "done" for o in run_orders)

        # while it ran, tom's accounts held the set: total = allocated + unallocated on each exchange, the set's share allocated
        total, allocated, unallocated = running["total"], running["allocated"], running["unallocated"]
        for pair, amount in total.items():
            assert amount == allocated.get(pair, 0) + unallocated.get(pair, 0)
        assert allocated[("demo", "BTC")] + allocated[("demo2", "BTC")] == Decimal("0.2")

        # tom's connection was told of every trade and order of the run; tess's and vic's of none
        told = await notified(tom, run_id, fill_count, {o["client_order_id"] for o in run_orders})
        trades = [params for name, params in told if name == "trade"]
        assert len(trades) == fill_count and {t["run_id"] for t in trades} == {run_id}
        assert {(t["exchange"], t["account"]) for t in trades} == {("demo", mine["demo"]), ("demo2", mine["demo2"])}
        # after it: nothing allocated, and the run's trades are all that moved tom's funds
        after = await funds(tom)
        assert not any(after["allocated"].values())
        moved: Amounts = {}
        for trade in trades:
            sign = 1 if trade["side"] == "buy" else -1
            base, quote = (trade["exchange"], "BTC"), (trade["exchange"], "USDT")
            moved[base] = moved.get(base, Decimal(0)) + sign * Decimal(trade["exec_amount"])
            moved[quote] = moved.get(quote, Decimal(0)) - sign * Decimal(trade["notional"]) - Decimal(trade["fee"])
        for pair, amount in moved.items():
            assert after["total"][pair] - tom_before["total"][pair] == amount, pair
        assert sum(moved[(ex, "USDT")] for ex in ("demo", "demo2")) > 0  # the spread paid for the fees
        assert not [n for n in drain(tess) + drain(vic) if n[0] in ("order", "trade")]
        # tess: her funds untouched, the run, its set and its orders unknown to her
        assert await funds(tess) == tess_before
        assert not [o for o in await tess.call("list_recent_orders", include_open=True, limit=1000) if o.get("run_id") == run_id]
        with pytest.raises(RpcError) as hidden:
            await tess.call("get_wallet_set", set_id=set_id)
        assert hidden.value.data is not None and hidden.value.data["code"] == "unknown_wallet_set"  # as one that does not exist
        with http(server, tokens["tess"]) as other:
            assert other.get(f"/runs/{run_id}").status_code == 404
            assert run_id not in {r["run_id"] for r in other.get("/runs").json()}
        with http(server, tokens["vic"]) as viewer:
            assert run_id not in {r["run_id"] for r in viewer.get("/runs").json()}


def drain(rpc: RpcClient) -> list[tuple[str, Any]]:
    out = []
    while not rpc.notifications.empty():
        out.append(rpc.notifications.get_nowait())
    return out


async def test_a_run_naming_an_exchange_twice_or_a_missing_one_is_refused_and_takes_nothing(
    server: ServerProcess, tokens: dict[str, str]
) -> None:
    async with connect(server, tokens["tess"]) as tess:
        before = await funds(tess)
        with http(server, tokens["tess"]) as api:
            runs_before = len(api.get("/runs").json())
            for balances, status, code in (
                ({"demo:USDT": "10", "demo3:USDT": "10"}, 404, "unknown_exchange"),
                ({"demo:USDT": "10", "demo2:USDT": "1000000000"}, 400, "insufficient_funds"),
                (["demo:USDT=10", "demo2:BTC=1", "demo2:btc=2"], 422, "invalid_balance"),
            ):
                r = api.put("/runnables/cross_exchange/start", json={"mode": "paper", "balances": balances})
                assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
            assert len(api.get("/runs").json()) == runs_before
        await asyncio.sleep(0.2)
        assert await funds(tess) == before
