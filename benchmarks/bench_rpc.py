"""make_order round trips over /rpc on loopback: 8 concurrent clients against a real server process.

Each client sends one order, waits for its answer (the answer comes after the order, its
fills and its ledger lines are committed: in the SQLite store's journal, which a helper
process of the server applies to the database), then sends the next. Half the orders are small
market orders that fill at once, half are limits resting far from the market.

The clients use `benchmarks.lean_ws.LeanRpc` on uvloop: the same round trips as
`coinwire.api.client.RpcClient` for about a third of its CPU, so on a small machine the
figure measures the server, not the load generator. `server_cpu_us_per_order` (from /proc,
the warm-up excluded) is the figure to compare between runs on a shared machine: wall-clock
throughput moves with whatever else the cores are doing. `server_busy` is that CPU over the
round's seconds: the share of one core the server used (~0.86 here: the kernel runs the client
process on the server's core, which it wakes with every answer, and the two take turns there;
pinning them apart gained as much in busy share as it lost in CPU an order, over 8 paired
rounds). `helper_cpu_us_per_order` is the journal helper's.

`server_instructions_per_order` does not move at all: the server's main thread runs under
callgrind (valgrind) for a fixed 960 orders of the same mix, and instructions are counted,
not timed. It is the figure to compare across sessions, when the host's speed changes (it
leaves out system-call time in the kernel, a tenth of the server's CPU or so).
`helper_instructions_per_order` counts the journal helper's the same way.

`direct_sqlite_*` is the same load in the same run against a server whose SQLite store commits
on the event loop (`store_journal = false`): the journal's gain, side by side. Both are the
median of `ROUNDS` alternating rounds (`*_rounds` lists them all).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.lean_ws import LeanRpc
from tests.server import ServerProcess

CLIENTS = 8
SECONDS = 10.0
ROUNDS = 3  # fresh servers per store, alternating; the median round is reported
WARMUP = 1.0
COUNTED_ORDERS_PER_CLIENT = 120  # under callgrind: 960 orders, ~20 s at ~50x slower


async def _far_limit(rpc: LeanRpc) -> str:
    """A buy limit at half the bid: it rests, never fills."""
    bid = Decimal((await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
    return str((bid * Decimal("0.5")).quantize(Decimal("0.01")))


def _order(rng: random.Random, far: str, client_oid: str) -> dict[str, Any]:
    """Half small market orders that fill at once, half limits resting far from the market.

    A market order takes 0.0002 BTC (~12 USDT, above the 5 USDT minimum): the liquidity it takes
    stays taken until the feed changes the level, and at 0.001 BTC a round of ~5,000 orders/s
    took about as much as the demo book's 150 levels a side hold (~1.2M USDT), so a fast round
    ended in `no_liquidity`. A resting limit at half the bid takes 0.001 BTC (~30 USDT).
    """
    if rng.random() < 0.5:
        params: dict[str, Any] = {"type": "market", "side": rng.choice(("buy", "sell")), "size": "0.0002"}
    else:
        params = {"type": "limit", "side": "buy", "limit": far, "size": "0.001"}
    params.update(exchange="demo", pair="BTC_USDT", client_oid=client_oid)
    return params


async def _own_orders_only(rpc: LeanRpc) -> None:
    """Follow this connection's own orders only, as every client did before accounts.

    Since accounts, every connection of a user receives the order and trade notifications of the
    user's accounts: the 8 clients (one user) would each receive all 8 clients' notifications,
    8 times the pushes of one order, which measures fan-out, not make_order. A connection that
    leaves the channels still receives its own orders' (`api.notifier`); on a server from before,
    the call changes nothing.
    """
    await rpc.call("unsubscribe", channels=["order", "trade"])


async def _client(url: str, seed: int, deadline: float, warm_until: float, latencies: list[float]) -> int:
    rng = random.Random(seed)
    prefix = uuid.uuid4().hex[:16]  # unique per client; a counter makes each client_oid unique
    done = 0
    async with LeanRpc(url) as rpc:
        await _own_orders_only(rpc)
        far = await _far_limit(rpc)
        for n in itertools.count():
            now = time.perf_counter()
            if now >= deadline:
                return done
            oid = f"{prefix}-{n}"
            params = _order(rng, far, oid)
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


def child_pids(pid: int) -> list[int]:
    """The running children of a process (the server's store-journal helper), from /proc (Linux)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def _cpu_of(pids: list[int]) -> dict[int, float]:
    return {pid: process_cpu(pid) for pid in pids}


async def _cpu_window(pid: int, warm_until: float, deadline: float) -> tuple[float, float, float]:
    """Server, server's helper processes and client CPU seconds between the end of the warm-up and the deadline."""
    await asyncio.sleep(max(0.0, warm_until - time.perf_counter()))
    helpers = child_pids(pid) if pid != os.getpid() else []
    server0, helpers0, client0 = process_cpu(pid), _cpu_of(helpers), time.process_time()
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
    helpers1 = _cpu_of(helpers)
    return (process_cpu(pid) - server0, sum(helpers1[p] - helpers0[p] for p in helpers),
            time.process_time() - client0)


async def _measure(url: str, seconds: float, server_pid: int | None = None) -> dict[str, Any]:
    latencies: list[float] = []
    start = time.perf_counter()
    warm_until = start + WARMUP
    deadline = warm_until + seconds
    window = asyncio.create_task(_cpu_window(server_pid or os.getpid(), warm_until, deadline))
    counts = await asyncio.gather(*(_client(url, i, deadline, warm_until, latencies) for i in range(CLIENTS)))
    server_cpu, helper_cpu, client_cpu = await window
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
        "server_busy": server_cpu / seconds if server_pid else None,  # share of one core; below 1: it waited for requests
        "helper_cpu_us_per_order": helper_cpu / total * 1e6 if server_pid else None,
        "client_cpu_us_per_order": client_cpu / total * 1e6,
    }


def _run_loop(main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """uvloop when present (the server runs on it too): the client's share of the 2 cores shrinks."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it on Linux
        return asyncio.run(main)
    return uvloop.run(main)


def _exchanges(tick_interval: float) -> list[dict[str, Any]]:
    return [{"name": "demo", "feed": "demo", "tick_interval": tick_interval, "seed": 3,
             "paper_funds": {"USDT": "100000000", "BTC": "1000", "ETH": "1000", "SOL": "1000"}}]


async def _fixed_orders(url: str, per_client: int) -> None:
    """`per_client` orders from each of the clients, each waiting for its answer, as `_client` does."""
    async def one(seed: int) -> None:
        rng, prefix = random.Random(seed), uuid.uuid4().hex[:16]
        async with LeanRpc(url) as rpc:
            await _own_orders_only(rpc)
            far = await _far_limit(rpc)
            for n in range(per_client):
                await rpc.call_raw("make_order", _order(rng, far, f"{prefix}-{n}"))

    await asyncio.gather(*(one(seed) for seed in range(CLIENTS)))


def instructions_per_order(per_client: int = COUNTED_ORDERS_PER_CLIENT, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Instructions the server's main thread, and its journal helper's, execute per make_order, counted by callgrind.

    Counting starts after a warm-up (imports, first orders) and stops after the load, so only
    the orders are counted. The demo market ticks once an hour here: its updates would be
    counted too, and under valgrind a run lasts long enough for many of them. `env` is added to
    the server's environment (benchmarks/bench_rpc_ab.py points PYTHONPATH at another source tree).
    """
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        return {"instructions_skipped": "valgrind (callgrind) is not installed"}
    with tempfile.TemporaryDirectory() as tmp:
        launcher = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out.%p", "--instr-atstart=no",
                    "--separate-threads=yes", "--dump-instr=no", "--trace-children=yes"]
        server = ServerProcess(Path(tmp), exchanges=_exchanges(3600.0), env=env, launcher=launcher)
        server.start(timeout=600)
        try:
            pid = server.proc.pid if server.proc else 0
            _run_loop(_fixed_orders(server.ws, 5))
            pids = [str(p) for p in [pid, *child_pids(pid)]]  # the server and its store-journal helper
            _callgrind_control(pids, ["-i", "on"], ["-z"])  # count from zero, from now
            _run_loop(_fixed_orders(server.ws, per_client))
            _callgrind_control(pids, ["-i", "off"], ["-d"])  # stop counting, write the counts out
        finally:
            server.stop()
        main_thread = _instructions(Path(tmp), pids[0])  # thread 1: the event loop
        helper = sum(_instructions(Path(tmp), p) for p in pids[1:])
    orders = per_client * CLIENTS
    return {"server_instructions_per_order": round(main_thread / orders),
            "helper_instructions_per_order": round(helper / orders), "instructions_orders": orders}


def _callgrind_control(pids: list[str], *commands: list[str]) -> None:
    for args in commands:
        for pid in pids:
            subprocess.run(["callgrind_control", *args, pid], check=True, capture_output=True)


def _instructions(folder: Path, pid: str) -> int:
    """The instructions callgrind counted in a process's main thread (its dumps' `totals:` lines)."""
    total = 0
    for path in folder.glob(f"callgrind.out.{pid}*-01"):
        for line in path.read_text().splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total


def serve_and_measure(
    seconds: float, env: dict[str, str] | None = None, check: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """One round: a fresh server (its own data folder and store) and `seconds` of load after the warm-up.

    `env` is added to the server's environment; `check`, when given, is called with the server's
    pid after the load, while the server still runs (benchmarks/bench_rpc_ab.py checks there
    which source tree the server imported).
    """
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), exchanges=_exchanges(0.25), env=env)
        server.start()
        try:
            pid = server.proc.pid if server.proc else None
            try:
                result = _run_loop(_measure(server.ws, seconds, pid))
            except Exception as exc:  # the server's folder goes with the round: say what its log said first
                raise RuntimeError(f"{exc!r}; the server's log ends:\n{server.log()}") from exc
            if check is not None and pid is not None:
                check(pid)
            return result
        finally:
            server.stop()


def run(seconds: float = SECONDS, rounds: int = ROUNDS) -> dict[str, Any]:
    """The embedded default (SQLite through its journal), then, side by side, SQLite committed on the loop.

    Each store is measured in `rounds` fresh servers, alternating, and the median round is the
    figure (every round's orders/s is listed): on a shared 2-core machine one 10 s round can
    move by a fifth with what else runs, and a median of alternating rounds is what a paired
    comparison of the two stores needs.
    """
    journal_runs, direct_runs = [], []
    for _ in range(rounds):
        journal_runs.append(serve_and_measure(seconds))
        direct_runs.append(serve_and_measure(seconds, env={"COINWIRE_STORE_JOURNAL": "false"}))
    result, direct = _median_round(journal_runs), _median_round(direct_runs)
    result["orders_per_s_rounds"] = [round(r["orders_per_s"]) for r in journal_runs]
    result["store"] = "sqlite (WAL) through its journal, group commit"
    result["direct_sqlite_orders_per_s"] = direct["orders_per_s"]
    result["direct_sqlite_orders_per_s_rounds"] = [round(r["orders_per_s"]) for r in direct_runs]
    result["direct_sqlite_p99_ms"] = direct["p99_ms"]
    result["direct_sqlite_server_cpu_us_per_order"] = direct["server_cpu_us_per_order"]
    result["journal_over_direct_sqlite"] = round(result["orders_per_s"] / direct["orders_per_s"], 2)
    result.update(instructions_per_order())
    return result


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round whose orders/s is the median (the lower middle one for an even count)."""
    return dict(sorted(rounds, key=lambda r: r["orders_per_s"])[(len(rounds) - 1) // 2])


if __name__ == "__main__":
    print(run())
