"""Candles: batched 1-minute ingest into SQLite and PostgreSQL, a year of minutes for 100 symbols rolled up to
days, and a year's daily chart through the GET /api/v1/ohlcv route.

- ingest: 2,000 series closing together every minute for 60 minutes (120,000 rows), put into
  the CandleWriter minute by minute and flushed: rows/s to the commit, on SQLite (one writer)
  and PostgreSQL (two writers; skipped with a note when it is not reachable).
- rollup: seeded synthetic 1-minute series, 525,600 rows (a year) for each of 100 symbols,
  rolled up to Europe/London days (core.rollup: boundaries once, then searchsorted +
  reduceat per symbol); generating the data is not timed.
- daily chart: one symbol's year stored as the recorder stores it (1m and 1h rows) in SQLite;
  GET /api/v1/ohlcv/...?timeframe=1d&tz=Europe/London over the year through the real route
  (httpx ASGI transport, no socket): median ms of 20 calls. The query reads the 8,760 hourly
  rows (London days lie on the hour grid). `chart_kathmandu_ms` is the same for
  Asia/Kathmandu (+05:45), whose days need the 525,600 minute rows.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from coinwire.core.rollup import OHLCV, Timeframe, bucket_starts, rollup
from coinwire.store import Store
from coinwire.store.candle_writer import CandleWriter
from coinwire.store.candles import CandleRow, write_candles

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
YEAR_START = 1_609_459_200  # 2021-01-01 UTC
MINUTES = 525_600
SERIES, INGEST_MINUTES = 2_000, 60


def _row(symbol: str, interval: int, t: int, o: int, h: int, lo: int, c: int, v: int) -> CandleRow:
    return CandleRow(
        exchange="bench", symbol=symbol, interval_s=interval, open_time=t, close_time=t + interval,
        price_decimals=2, size_decimals=8, open=o, high=h, low=lo, close=c, volume=v, trades=10, updated_at=t * 10**9,
    )  # fmt: skip


async def _ingest(store: Store) -> float:
    writer = CandleWriter(store)
    await writer.start()
    symbols = [f"S{i:04d}/USDT" for i in range(SERIES)]
    minutes = [[_row(s, 60, YEAR_START + m * 60, 100, 110, 90, 105, 10**8) for s in symbols] for m in range(INGEST_MINUTES)]
    began = time.perf_counter()
    for batch in minutes:
        writer.put(batch)
        await asyncio.sleep(0)  # the minute's rows arrive together; writers start as the next minute queues
    await writer.flush()
    seconds = time.perf_counter() - began
    await writer.close()
    assert writer.rows_written == SERIES * INGEST_MINUTES and writer.failed_rows == 0
    return SERIES * INGEST_MINUTES / seconds


async def _postgres_ingest() -> float | str:
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        store = Store(POSTGRES_URL, schema=schema)
        await store.start()
    except (OSError, asyncpg.PostgresError) as exc:
        return f"skipped: PostgreSQL not reachable ({exc.__class__.__name__})"
    try:
        return await _ingest(store)
    finally:
        await store.close()
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def _walk(seed: int, n: int = MINUTES) -> OHLCV:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[100.0, close[:-1]]
    spread = np.abs(rng.normal(0, 5e-4, n)) * close
    time_ = YEAR_START + np.arange(n, dtype=np.int64) * 60
    return OHLCV(time_, open_, np.maximum(open_, close) + spread, np.minimum(open_, close) - spread, close, rng.random(n) * 10)


def _rollup_100_symbols() -> tuple[float, int]:
    tz = ZoneInfo("Europe/London")
    end = YEAR_START + MINUTES * 60
    total, days = 0.0, 0
    for seed in range(100):
        series = _walk(seed)
        began = time.perf_counter()
        out = rollup(series, bucket_starts(Timeframe(1, "d"), tz, YEAR_START, end), end)
        total += time.perf_counter() - began
        days = len(out.time)
    return total, days


async def _chart(path: Path) -> tuple[float, float, int]:
    import httpx
    from fastapi import FastAPI

    from coinwire.api.ohlcv_routes import add_ohlcv_routes
    from coinwire.services.ohlcv import OhlcvQuery

    store = Store(f"sqlite:///{path}")
    await store.start()
    walk = _walk(7)
    cents = [np.round(col * 100).astype(np.int64) for col in walk[1:5]]
    vol = np.round(walk.volume * 1e8).astype(np.int64)
    minutes = [_row("BTC/USDT", 60, int(t), *map(int, vals)) for t, *vals in zip(walk.time, *cents, vol, strict=True)]
    hours_starts = np.arange(YEAR_START, YEAR_START + MINUTES * 60, 3600, dtype=np.int64)
    hourly = rollup(OHLCV(walk.time, *cents, vol), hours_starts)
    hours = [_row("BTC/USDT", 3600, int(t), *map(int, vals)) for t, *vals in zip(*hourly, strict=True)]
    for i in range(0, len(minutes), 50_000):
        await write_candles(store, minutes[i : i + 50_000])
    await write_candles(store, hours)
    app = FastAPI()
    add_ohlcv_routes(app, OhlcvQuery(store, None, None, max_points=5_000))
    timings: dict[str, list[float]] = {"Europe/London": [], "Asia/Kathmandu": []}
    rows = 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for tz, runs in (("Europe/London", 20), ("Asia/Kathmandu", 5)):
            params = {"timeframe": "1d", "tz": tz, "start": YEAR_START, "end": YEAR_START + MINUTES * 60}
            for _ in range(runs):
                began = time.perf_counter()
                response = await client.get("/api/v1/ohlcv/bench/BTC_USDT", params=params)
                timings[tz].append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, response.text
                rows = max(rows, len(response.json()))
    await store.close()
    return statistics.median(timings["Europe/London"]), statistics.median(timings["Asia/Kathmandu"]), rows


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:

        async def databases() -> tuple[float, float | str, tuple[float, float, int]]:
            sqlite_store = Store(f"sqlite:///{Path(tmp) / 'ingest.db'}")
            await sqlite_store.start()
            try:
                sqlite_rate = await _ingest(sqlite_store)
            finally:
                await sqlite_store.close()
            return sqlite_rate, await _postgres_ingest(), await _chart(Path(tmp) / "chart.db")

        sqlite_rate, pg_rate, (london_ms, kathmandu_ms, days) = asyncio.run(databases())
    rollup_s, rolled_days = _rollup_100_symbols()
    return {
        "ingest_sqlite_rows_per_s": round(sqlite_rate),
        "ingest_postgres_rows_per_s": round(pg_rate) if isinstance(pg_rate, float) else pg_rate,
        "ingest_rows": SERIES * INGEST_MINUTES,
        "rollup_100x1y_1m_to_1d_s": round(rollup_s, 3),
        "rollup_rows": 100 * MINUTES,
        "rollup_days_per_symbol": rolled_days,
        "chart_1y_daily_ms": round(london_ms, 2),
        "chart_kathmandu_ms": round(kathmandu_ms, 1),
        "chart_days": days,
    }


if __name__ == "__main__":
    print(run())
