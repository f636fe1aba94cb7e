"""One connection must not slow anyone else: another client's ticker rate and get_status latency, with and without it.

Issue 20's acceptance: "a client that stops reading, or subscribes to the maximum of
patterns, changes another client's ticker rate and `get_status` latency by less than 20%".
Against one real server with the demo feed, in one run, each round measures three phases of
`seconds` each, always with the same two measuring clients:

- `baseline`: a client subscribed to every ticker counts them; another calls `get_status`
  50 times a second and times each answer.
- `stalled`: as baseline, plus a viewer's connection subscribed to tickers and public trades
  that stopped reading after its own answers (4 MB of echo) filled its socket.
- `max_patterns`: as baseline, plus a viewer's connection holding the maximum of patterns
  (`ws_max_patterns` wildcard patterns for tickers and as many for public trades) that reads
  what it is sent.

Phases alternate over `rounds`, and each phase's figure is the median of its rounds (a
shared 2-core host moves a single window by more than the effect measured). The headline,
`worst_kept_pct`, is the worst of the two disturbed phases' ticker rate and median latency as
a share of the baseline's (ticker rate / baseline, baseline median / median): at or above 80%
means "less than 20% changed". p99 ratios are listed too; on this host a single scheduler
hiccup decides them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from benchmarks.lean_ws import LeanRpc
from tests.server import ServerProcess

SECONDS = 6.0  # per phase
ROUNDS = 2
SETTLE = 2.0  # seconds after a disturbing client starts before measuring (its socket fills, the server settles)
STATUS_INTERVAL = 0.02  # the get_status client's pace: 50 calls a second
MAX_PATTERNS = 100  # the default `ws_max_patterns`
VIEWER = ("vic", "viewer-password-1")


async def _tickers(url: str, seconds: float) -> float:
    """Tickers a second received by a client subscribed to every ticker."""
    async with LeanRpc(url) as rpc:
        await rpc.call("subscribe", channels=["ticker"])
        await asyncio.sleep(0.5)
        start, counted = time.perf_counter(), rpc.notifications
        await asyncio.sleep(seconds)
        return (rpc.notifications - counted) / (time.perf_counter() - start)


async def _status(url: str, seconds: float) -> list[float]:
    """get_status round trips (ms), one every STATUS_INTERVAL, for `seconds`."""
    latencies: list[float] = []
    async with LeanRpc(url) as rpc:
        await rpc.call("get_status")
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await rpc.call("get_status")
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(STATUS_INTERVAL)
    return latencies


async def _measure(url: str, seconds: float) -> dict[str, float]:
    rate, latencies = await asyncio.gather(_tickers(url, seconds), _status(url, seconds))
    latencies.sort()
    return {"ticker_per_s": rate, "status_median_ms": statistics.median(latencies),
            "status_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


async def _stalled_client(url: str) -> Any:
    """A connection subscribed to tickers and public trades whose reader has stopped, its socket full.

    A 4 KB receive buffer, and 4 MB of its own echo answers: paused for good, under the 8 MiB
    after which it would be dropped (a dropped client disturbs no one either, but is gone).
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(url.split(":")[2].split("/")[0])))
    sock.setblocking(False)
    ws = await websockets.connect(url, sock=sock, max_size=None, max_queue=1)
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"channels": ["ticker", "public_trades"]}}))
    pad = "x" * 100_000
    for n in range(40):
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2 + n, "method": "echo", "params": {"pad": pad}}))
    return ws


async def _pattern_client(url: str, patterns: int) -> LeanRpc:
    """A connection at the pattern limit (wildcards, the costly kind), reading what it is sent."""
    rpc = LeanRpc(url)
    await rpc.connect()
    chosen = [f"demo.*.x{n}" for n in range(patterns - 1)] + ["demo.usdt.btc"]
    await rpc.call("subscribe", channels=["ticker", "public_trades"], tickers=chosen, public_trades=chosen)
    return rpc


async def _round(server: ServerProcess, viewer_url: str, seconds: float) -> dict[str, dict[str, float]]:
    out = {"baseline": await _measure(server.ws, seconds)}
    stalled = await _stalled_client(viewer_url)
    try:
        await asyncio.sleep(SETTLE)
        out["stalled"] = await _measure(server.ws, seconds)
    finally:
        stalled.transport.abort()
    patterns = await _pattern_client(viewer_url, MAX_PATTERNS)
    try:
        await asyncio.sleep(SETTLE)
        out["max_patterns"] = await _measure(server.ws, seconds)
    finally:
        await patterns.close()
    return out


async def _rounds(server: ServerProcess, seconds: float, rounds: int) -> list[dict[str, dict[str, float]]]:
    token = httpx.post(server.http + "/api/v1/auth/login", json={"username": VIEWER[0], "password": VIEWER[1]}, timeout=30).json()
    viewer_url = f"{server.ws_anonymous}?access_token={token['access_token']}"
    return [await _round(server, viewer_url, seconds) for _ in range(rounds)]


def run(seconds: float = SECONDS, rounds: int = ROUNDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp))
        server.start()
        try:
            with server.client() as admin:
                admin.post("/api/v1/users", json={"username": VIEWER[0], "password": VIEWER[1], "role": "viewer"}).raise_for_status()
            measured = asyncio.run(_rounds(server, seconds, rounds))
        finally:
            server.stop()
    phase = {name: {k: statistics.median(r[name][k] for r in measured) for k in measured[0][name]} for name in measured[0]}
    base = phase["baseline"]
    result: dict[str, Any] = {"seconds_per_phase": seconds, "rounds": rounds, "max_patterns": MAX_PATTERNS}
    kept = []
    for name, figures in phase.items():
        result.update({f"{name}_{k}": round(v, 2) for k, v in figures.items()})
        if name == "baseline":
            continue
        rate = figures["ticker_per_s"] / base["ticker_per_s"]
        median = figures["status_median_ms"] / base["status_median_ms"]
        result[f"{name}_ticker_rate_ratio"] = round(rate, 3)
        result[f"{name}_status_median_ratio"] = round(median, 3)
        result[f"{name}_status_p99_ratio"] = round(figures["status_p99_ms"] / base["status_p99_ms"], 3)
        kept += [rate, 1 / median]
    result["worst_kept_pct"] = round(100 * min(min(kept), 1.0), 1)
    result["ticker_rate_rounds"] = [{name: round(r[name]["ticker_per_s"], 1) for name in r} for r in measured]
    return result


if __name__ == "__main__":  # python -m benchmarks.bench_push [seconds per phase] [rounds]: this benchmark alone
    import sys

    print(run(*(float(a) if i == 0 else int(a) for i, a in enumerate(sys.argv[1:3]))))
