"""make_order round trips over /rpc on loopback: 8 concurrent clients against a real server process.

Each client sends one order, waits for its answer (the answer comes after the order, its
fills and its ledger lines are committed), then sends the next. Half the orders are small
market orders that fill at once, half are limits resting far from the market.

The clients use `benchmarks.lean_ws.LeanRpc` on uvloop: the same round trips as
`coinwire.api.client.RpcClient` for about a third of its CPU, so on a small machine the
figure measures the server, not the load generator. `server_cpu_us_per_order` (from /proc,
the warm-up excluded) is the figure to compare between runs on a shared machine: wall-clock
throughput moves with whatever else the cores are doing.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.lean_ws import LeanRpc
from tests.server import ServerProcess

CLIENTS = 8
SECONDS = 10.0
WARMUP = 1.0


async def _client(url: str, seed: int, deadline: float, warm_until: float, latencies: list[float]) -> int:
    rng = random.Random(seed)
    prefix = uuid.uuid4().hex[:16]  # unique per client; a counter makes each client_oid unique
    done = 0
    async with LeanRpc(url) as rpc:
        bid = Decimal((await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
        far = str((bid * Decimal("0.5")).quantize(Decimal("0.01")))
        for n in itertools.count():
            now = time.perf_counter()
            if now >= deadline:
                return done
            if rng.random() < 0.5:
                params: dict[str, Any] = {"type": "market", "side": rng.choice(("buy", "sell"))}
            else:
                params = {"type": "limit", "side": "buy", "limit": far}
            oid = f"{prefix}-{n}"
            params.update(exchange="demo", pair="BTC_USDT", size="0.001", client_oid=oid)
            start = time.perf_counter()
            answer = await rpc.call_raw("make_order", params)
            end = time.perf_counter()
            if oid.encode() not in bytes(answer):  # the answer is this order's, not another's
                raise RuntimeError(f"answer to {oid} is not about it: {bytes(answer)[:200]!r}")
            if start >= warm_until:
                latencies.append(end - start)
                done += 1
        return done


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _cpu_window(pid: int, warm_until: float, deadline: float) -> tuple[float, float]:
    """Server and client CPU seconds spent between the end of the warm-up and the deadline."""
    await asyncio.sleep(max(0.0, warm_until - time.perf_counter()))
    server0, client0 = process_cpu(pid), time.process_time()
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    return process_cpu(pid) - server0, time.process_time() - client0


async def _measure(url: str, seconds: float, server_pid: int | None = None) -> dict[str, Any]:
    latencies: list[float] = []
    start = time.perf_counter()
    warm_until = start + WARMUP
    deadline = warm_until + seconds
    window = asyncio.create_task(_cpu_window(server_pid or os.getpid(), warm_until, deadline))
    counts = await asyncio.gather(*(_client(url, i, deadline, warm_until, latencies) for i in range(CLIENTS)))
    server_cpu, client_cpu = await window
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
        "server_cpu_us_per_order": server_cpu / total * 1e6 if server_pid else None,
        "client_cpu_us_per_order": client_cpu / total * 1e6,
    }


def _run_loop(main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """uvloop when present (the server runs on it too): the client's share of the 2 cores shrinks."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it on Linux
        return asyncio.run(main)
    return uvloop.run(main)


def run(seconds: float = SECONDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        exchanges = [{"name": "demo", "feed": "demo", "tick_interval": 0.25, "seed": 3,
                      "paper_funds": {"USDT": "100000000", "BTC": "1000", "ETH": "1000", "SOL": "1000"}}]
        server = ServerProcess(Path(tmp), exchanges=exchanges)
        server.start()
        try:
            result = _run_loop(_measure(server.ws, seconds, server.proc.pid if server.proc else None))
        finally:
            server.stop()
    result["store"] = "sqlite (WAL, group commit)"
    return result


if __name__ == "__main__":
    print(run())
