"""make_order round trips over /rpc on loopback: 8 concurrent clients against a real server process.

Each client sends one order, waits for its answer (the answer comes after the order, its
fills and its ledger lines are committed), then sends the next. Half the orders are small
market orders that fill at once, half are limits resting far from the market.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from coinwire.api.client import RpcClient
from tests.server import ServerProcess

CLIENTS = 8
SECONDS = 10.0
WARMUP = 1.0


async def _client(url: str, seed: int, deadline: float, warm_until: float, latencies: list[float]) -> int:
    rng = random.Random(seed)
    done = 0
    async with RpcClient(url) as rpc:
        bid = Decimal((await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
        far = str((bid * Decimal("0.5")).quantize(Decimal("0.01")))
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return done
            if rng.random() < 0.5:
                params: dict[str, Any] = {"type": "market", "side": rng.choice(("buy", "sell"))}
            else:
                params = {"type": "limit", "side": "buy", "limit": far}
            start = time.perf_counter()
            await rpc.call("make_order", exchange="demo", pair="BTC_USDT", size="0.001", client_oid=uuid.uuid4().hex, **params)
            end = time.perf_counter()
            if start >= warm_until:
                latencies.append(end - start)
                done += 1


async def _measure(url: str, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    start = time.perf_counter()
    warm_until = start + WARMUP
    deadline = warm_until + seconds
    counts = await asyncio.gather(*(_client(url, i, deadline, warm_until, latencies) for i in range(CLIENTS)))
    total = sum(counts)
    latencies.sort()
    return {
        "clients": CLIENTS,
        "orders": total,
        "seconds": seconds,
        "orders_per_s": total / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def run(seconds: float = SECONDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        exchanges = [{"name": "demo", "feed": "demo", "tick_interval": 0.25, "seed": 3,
                      "paper_funds": {"USDT": "100000000", "BTC": "1000", "ETH": "1000", "SOL": "1000"}}]
        server = ServerProcess(Path(tmp), exchanges=exchanges)
        server.start()
        try:
            result = asyncio.run(_measure(server.ws, seconds))
        finally:
            server.stop()
    result["store"] = "sqlite (WAL, group commit)"
    return result


if __name__ == "__main__":
    print(run())
