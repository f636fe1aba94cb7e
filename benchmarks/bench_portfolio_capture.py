"""Portfolio capture at a 15-minute boundary: 100,000 accounts (and their 1,000 owners' totals) valued and their candles
written, on SQLite and PostgreSQL.

A real gateway (demo feed, BTC/USDT book mirrored) whose ledger holds 100,000 funded paper
accounts of 1,000 users (BTC and USDT each, so every valuation needs the book's mid and the
USDT = USD peg); the PortfolioTracker on a driven clock. Its first pass (inside a bucket) starts
every portfolio's candle; then the clock moves past the boundary and the timed part is one pass
(holdings of every portfolio, the price tables, the valuation, the closed candles queued) plus
the batched writer's flush until every row is committed. Target: 2 s (issue 26). Setting up the
ledger is not timed. `python -m benchmarks.bench_portfolio_capture [accounts]` runs it alone.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from coinwire.app import build_feed
from coinwire.bus.memory import MemoryBus
from coinwire.cache.memory import MemoryCache
from coinwire.config import load_settings
from coinwire.core.numbers import str_to_atto
from coinwire.core.portfolio import BUCKET_S
from coinwire.services.gateway import Gateway
from coinwire.services.market_data import MarketData
from coinwire.services.portfolio_tracker import PortfolioTracker
from coinwire.store import Store
from coinwire.store.portfolio_candles import PortfolioCandleWriter

POSTGRES_URL = os.environ.get("COINWIRE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ACCOUNTS = 100_000
USERS = 1_000
TARGET_S = 2.0
EXCHANGE = {"name": "demo", "feed": "demo", "tick_interval": 3600, "seed": 3, "symbols": ["BTC/USDT"]}
S = 1_000_000_000


class _Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


async def _capture(url: str, schema: str | None, data: Path, accounts: int) -> dict[str, Any]:
    t0 = (time.time_ns() // (BUCKET_S * S)) * BUCKET_S
    clock = _Clock((t0 + 60) * S)
    settings = load_settings(env={}, overrides={"data_dir": str(data), "exchanges": [EXCHANGE]})
    store = Store(url, schema=schema)
    await store.start()
    bus = MemoryBus()
    await bus.start()
    gateway = Gateway(settings, store, bus, clock=clock)
    feed = build_feed(settings.exchanges[0])
    await gateway.start()
    gateway.snapshot_sources["demo"] = feed
    feeding = asyncio.create_task(feed.run(bus.publish))
    writer = PortfolioCandleWriter(store)
    await writer.start()
    tracker = PortfolioTracker(gateway, MarketData(settings.market_data, bus, MemoryCache(), store, streamers=[]), store, writer,
                               clock=clock)  # fmt: skip
    try:
        for _ in range(200):
            if gateway.venues["demo"].status == "ready":
                break
            await asyncio.sleep(0.05)
        await feed.close()
        feeding.cancel()
        btc, usdt = str_to_atto("0.25"), str_to_atto("5000")
        for i in range(accounts):  # funded in memory (the tracker reads the ledger): the store's copy is not what is timed
            account = gateway.accounts.new(1 + i % USERS, "demo", "paper", "demo", clock.now)
            gateway.accounts.add(account)
            gateway.ledger.add_virtual_tx("demo", "BTC", btc + i, clock.now, account.id)
            gateway.ledger.add_virtual_tx("demo", "USDT", usdt, clock.now, account.id)
        gc.collect()  # as the server does after start-up (app.create_app): what was loaded leaves the collector's generations
        gc.freeze()
        await tracker.start(loop=False)  # every portfolio's first candle, inside the bucket
        portfolios = len(tracker.portfolios)
        clock.now = (t0 + BUCKET_S) * S + 5_000_000  # 5 ms past the boundary
        began = time.perf_counter()
        await tracker.step()
        valued = time.perf_counter() - began
        await writer.flush()
        total = time.perf_counter() - began
        assert writer.failed_rows == 0 and writer.rows_written >= portfolios, (writer.rows_written, portfolios)
        return {"portfolios": portfolios, "valuation_s": round(valued, 3), "capture_s": round(total, 3),
                "rows_written": writer.rows_written, "transactions": writer.transactions}  # fmt: skip
    finally:
        gc.unfreeze()
        await tracker.close()
        await writer.close()
        await gateway.close()
        await bus.close()
        await store.close()


async def _postgres(data: Path, accounts: int) -> dict[str, Any] | str:
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        return f"skipped: PostgreSQL not reachable ({exc.__class__.__name__})"
    try:
        return await _capture(POSTGRES_URL, schema, data, accounts)
    finally:
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def run(accounts: int = ACCOUNTS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = asyncio.run(_capture(f"sqlite:///{tmp}/capture.db", None, Path(tmp) / "a", accounts))
    with tempfile.TemporaryDirectory() as tmp:
        postgres = asyncio.run(_postgres(Path(tmp), accounts))
    result: dict[str, Any] = {"capture_sqlite_s": sqlite["capture_s"], "target_s": TARGET_S,
                              **{f"sqlite_{k}": v for k, v in sqlite.items()}}  # fmt: skip
    if isinstance(postgres, dict):
        result["capture_postgres_s"] = postgres["capture_s"]
        result.update({f"postgres_{k}": v for k, v in postgres.items()})
    else:
        result["capture_postgres_s"] = postgres
    return result


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else ACCOUNTS))
