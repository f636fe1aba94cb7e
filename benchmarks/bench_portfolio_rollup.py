"""Portfolio chart: a year of one portfolio's 15-minute candles rolled up to daily candles in a named zone, through the API.

A year (35,040 buckets) of seeded 15-minute value candles of one user's total is stored with
the portfolio candle writer's upsert in the server's SQLite store before it starts; then
GET /api/v1/portfolio/user/{id}/ohlcv?timeframe=1d&tz=America/New_York over the year is asked
of a real server with no exchange configured (so no feed competes for the CPU), signed in, over a
local socket, through the guard: median ms of 20 calls
(target 50 ms); the first call reads the year from the store (`first_call_ms`), the others
find it in memory and read only the rows written since. `daily_1y_kathmandu_ms` is the same
in +05:45 (its days lie on the 15-minute grid too).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from coinwire.core.portfolio import BUCKET_S, PortfolioCandle
from coinwire.store import Store
from coinwire.store.portfolio_candles import PortfolioCandleRow, write_portfolio_candles
from tests.server import ServerProcess

YEAR_START = 1_767_225_600  # 2026-01-01 UTC
BUCKETS = 365 * 96  # 35,040
RUNS = 20


def _candles() -> list[PortfolioCandle]:
    rnd = random.Random(2026)
    out, value = [], 1_000_000_000_000  # 10,000.00000000
    for i in range(BUCKETS):
        opened = value
        value = max(1, value + rnd.randint(-2_000_000_000, 2_000_000_000))
        high, low = max(opened, value) + rnd.randint(0, 10**9), min(opened, value) - rnd.randint(0, min(value, 10**9) - 1)
        out.append(PortfolioCandle(YEAR_START + i * BUCKET_S, *(Decimal(x).scaleb(-8) for x in (opened, high, low, value)),
                                   Decimal(rnd.randint(0, 10**11)).scaleb(-8)))
    return out


async def _store_year(url: str, user_id: int) -> None:
    store = Store(url)
    await store.start()
    try:
        rows = [PortfolioCandleRow.of("user", str(user_id), "USD", c, 1) for c in _candles()]
        for i in range(0, len(rows), 10_000):
            await write_portfolio_candles(store, rows[i : i + 10_000])
    finally:
        await store.close()


def _ready(server: ServerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.http + "/readyz", timeout=2).json().get("ready"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server not ready in {timeout}s:\n{server.log()}")


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'portfolio.db'}"
        asyncio.run(_store_year(url, 1))  # admin, the first user, is id 1 on a new store
        server = ServerProcess(Path(tmp), exchanges=[], env={"COINWIRE_STORE_URL": url})  # no feed competing for the CPU
        server.start(wait_ready=False)  # ready means every exchange synced: here there is none
        _ready(server)
        try:
            timings: dict[str, list[float]] = {"America/New_York": [], "Asia/Kathmandu": []}
            days = 0
            with httpx.Client(base_url=server.http, headers=server.headers, timeout=30) as client:
                me = client.get("/api/v1/me").json()["id"]
                assert me == 1, me
                for tz in timings:
                    params = {"timeframe": "1d", "tz": tz, "start": YEAR_START, "end": YEAR_START + BUCKETS * BUCKET_S}
                    for _ in range(RUNS):
                        began = time.perf_counter()
                        response = client.get(f"/api/v1/portfolio/user/{me}/ohlcv", params=params)
                        timings[tz].append((time.perf_counter() - began) * 1000)
                        assert response.status_code == 200, response.text
                        days = max(days, len(response.json()))
        finally:
            server.stop()
    return {
        "daily_1y_new_york_ms": round(statistics.median(timings["America/New_York"]), 2),
        "daily_1y_kathmandu_ms": round(statistics.median(timings["Asia/Kathmandu"]), 2),
        "first_call_ms": round(timings["America/New_York"][0], 2),
        "stored_15m_candles": BUCKETS,
        "days": days,
    }


if __name__ == "__main__":
    print(run())
