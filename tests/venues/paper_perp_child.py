"""A real gateway process trading the demo's perpetual until it is killed: the SIGKILL test's child (test_paper_perp_crash.py).

Usage: python -m tests.venues.paper_perp_child STORE_URL FOLDER [SCHEMA]. It opens alice's 20x isolated long
and bob's cross short on the demo's BTC/USDT:USDT (funding every second: the instrument's 8 hours compressed
28_800 times), writes FOLDER/ready, then keeps running (marks, funding, a cycle of orders) until killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from coinwire.core.orders import OrderRequest, OrderType, Side
from tests.services.gateway_running import running_gateway

EXCHANGE = {"name": "perp", "feed": "demo", "symbols": ["BTC/USDT:USDT"], "tick_interval": 0.02, "funding_speedup": 28_800,
            "paper_funds": {"USDT": "20000"}}


def order(gateway: object, owner: int, side: str, size: str, oid: str, reduce_only: bool = False) -> OrderRequest:
    inst = gateway.venues["perp"].markets["BTC/USDT:USDT"].instrument  # type: ignore[attr-defined]
    return OrderRequest(exchange="perp", instrument=inst, side=Side(side), type=OrderType.MARKET, size=inst.parse_size(size),
                        limit=0, cancel_after=0, client_oid=oid, wallet_set_id=None, run_id=None, owner_id=owner,
                        reduce_only=reduce_only)


async def main(url: str, folder: Path, schema: str | None) -> None:
    async with running_gateway(folder, url, schema, EXCHANGE) as gateway:
        alice = (await gateway.account_for(1, "perp")).id
        await gateway.account_for(2, "perp")  # bob's account, funded with the exchange's paper funds
        await gateway.set_margin_mode(account_id=alice, exchange="perp", symbol="BTC/USDT:USDT", mode="isolated")
        await gateway.set_leverage(account_id=alice, exchange="perp", symbol="BTC/USDT:USDT", leverage=20)
        await gateway.make_order(order(gateway, 1, "buy", "0.5", "alice-long"))
        await gateway.make_order(order(gateway, 2, "sell", "0.3", "bob-short"))
        (folder / f"ready-{os.getpid()}").write_text("ready")
        n = 0
        while True:  # trading on: bob adds and takes back a little, so the kill lands among commits
            n += 1
            await gateway.make_order(order(gateway, 2, "sell", "0.01", f"add-{n}"))
            await gateway.make_order(order(gateway, 2, "buy", "0.01", f"cut-{n}", reduce_only=True))
            await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
