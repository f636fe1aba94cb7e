"""SIGKILL the server in the middle of an order storm; after a restart the ledger balances and
every acknowledged order is present exactly once."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from coinwire.api.client import RpcClient, RpcError
from tests.server import ServerProcess

CLIENTS = 8


async def storm(url: str, seed: int, acked: dict[str, dict], stop: asyncio.Event) -> None:
    rng = random.Random(seed)
    try:
        async with RpcClient(url) as rpc:
            pricing = await rpc.call("get_pricing", exchange="demo")
            bid = Decimal(pricing["BTC_USDT"]["bid"])
            resting: list[int] = []
            while not stop.is_set():
                roll = rng.random()
                client_oid = uuid.uuid4().hex
                try:
                    if roll < 0.45:
                        price = (bid * Decimal(rng.uniform(0.7, 0.95))).quantize(Decimal("0.01"))
                        order = await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", size="0.001", limit=str(price),
                                               client_oid=client_oid)
                        resting.append(order["id"])
                    elif roll < 0.65 and resting:
                        order = await rpc.call("cancel_order", order_id=resting.pop(rng.randrange(len(resting))))
                        client_oid = order["client_order_id"]
                    else:
                        side = "buy" if roll < 0.85 else "sell"
                        order = await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side=side, type="market", size="0.001",
                                               client_oid=client_oid)
                except RpcError:
                    continue
                acked[client_oid] = order
    except (TimeoutError, ConnectionError, OSError, Exception):  # noqa: BLE001 - the server dies under us: expected
        return


def wallet_sums(db: Path) -> tuple[dict[int, tuple[Decimal, Decimal]], dict[int, tuple[str, str, int | None]]]:
    con = sqlite3.connect(db)
    try:
        sums: dict[int, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for wallet_id, movement, hold in con.execute("select wallet_id, movement, hold from wallet_lines"):
            sums[wallet_id][0] += Decimal(movement)
            sums[wallet_id][1] += Decimal(hold)
        wallets = {row[0]: (row[1], row[2], row[3]) for row in con.execute("select id, exchange, currency, wallet_set_id from wallets")}
    finally:
        con.close()
    return {k: (v[0], v[1]) for k, v in sums.items()}, wallets


async def test_sigkill_mid_storm_loses_nothing_acknowledged(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    server.start()
    acked: dict[str, dict] = {}
    stop = asyncio.Event()
    tasks = [asyncio.create_task(storm(server.ws, seed, acked, stop)) for seed in range(CLIENTS)]
    await asyncio.sleep(2.0)
    server.kill()  # SIGKILL while the clients are still sending
    stop.set()
    await asyncio.gather(*tasks)
    assert len(acked) > 100, f"the storm acknowledged only {len(acked)} orders"

    server.start()  # recovery: the ledger is rebuilt from its lines and checked on start
    try:
        db = tmp_path / "coinwire.db"
        con = sqlite3.connect(db)
        rows = con.execute("select client_oid, status, filled_size from orders").fetchall()
        con.close()
        counts = Counter(r[0] for r in rows)
        by_oid = {r[0]: r for r in rows}
        missing = [oid for oid in acked if oid not in counts]
        assert not missing, f"{len(missing)} acknowledged orders are missing after the crash"
        assert all(n == 1 for n in counts.values())
        for oid, order in acked.items():
            _, status, filled = by_oid[oid]
            if order["status"] == "done":
                assert status == "done", (oid, order, status)
                assert Decimal(filled) == Decimal(order["filled_size"])

        sums, wallets = wallet_sums(db)
        for wallet_id, (balance, hold) in sums.items():
            assert hold >= 0 and balance - hold >= 0, (wallets[wallet_id], balance, hold)

        async with RpcClient(server.ws) as rpc:
            all_sets = await rpc.call("get_all_wallet_sets")
            total = {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in all_sets["total"]["wallets"]}
            unalloc = {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in all_sets["unallocated"]["wallets"]}
            alloc = {(w["exchange"], w["currency"]): Decimal(w["balance"]) for w in all_sets["allocated"]["wallets"]}
            for key, value in total.items():
                assert value == unalloc.get(key, 0) + alloc.get(key, 0)
            per_wallet: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
            for wallet_id, (balance, _) in sums.items():
                exchange, currency, _ = wallets[wallet_id]
                per_wallet[(exchange, currency)] += balance
            assert dict(per_wallet) == dict(total)
            # open orders survived with their holds, and the server trades again
            open_orders = {o["client_order_id"] for o in await rpc.call("list_open_orders")}
            for oid, order in acked.items():
                if order["status"] == "open" and by_oid[oid][1] == "open":
                    assert oid in open_orders
            order = await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.001")
            assert order["status"] == "done"
    finally:
        server.stop()
