"""Portfolio capture at a 15-minute boundary: 100,000 accounts (and their 1,000 owners' totals) valued and their candles
written, on SQLite and PostgreSQL.

A real gateway (demo feed, BTC/USDT book mirrored, then held: tests.services.portfolio_rig) whose ledger holds 100,000 funded paper
accounts of 1,000 users (BTC and USDT each, so every valuation needs the book's mid and the
USDT = USD peg); the PortfolioTracker on a driven clock. Its first pass (inside a bucket) starts
every portfolio's candle; then the clock moves past the boundary and the timed part is one pass
(holdings of every portfolio, the price tables, the valuation, the closed candles queued) plus
the batched writer's flush until every row is committed. Target: 2 s (issue 26), wall time;
`*_capture_cpu_s` is the CPU this process spent on it (on a shared host, the wall time also
counts the waits for a core). Setting up the
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

from coinwire.core.numbers import str_to_atto
from coinwire.core.portfolio import BUCKET_S
from tests.services.portfolio_rig import Clock, portfolio_rig

POSTGRES_URL = os.environ.get("COINWIRE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ACCOUNTS = 100_000
USERS = 1_000
TARGET_S = 2.0
EXCHANGE = {"name": "demo", "feed": "demo", "tick_interval": 3600, "seed": 3, "symbols": ["BTC/USDT"]}
S = 1_000_000_000


async def _capture(url: str, schema: str | None, data: Path, accounts: int) -> dict[str, Any]:
    t0 = (time.time_ns() // (BUCKET_S * S)) * BUCKET_S
    clock = Clock((t0 + 60) * S)
    async with portfolio_rig(data, url, schema, clock, EXCHANGE) as rig:
        gateway, tracker, writer = rig.gateway, rig.tracker, rig.writer
        btc, usdt = str_to_atto("0.25"), str_to_atto("5000")
        for i in range(accounts):  # funded in memory (the tracker reads the ledger): the store's copy is not what is timed
            account = gateway.accounts.new(1 + i % USERS, "demo", "paper", "demo", clock.now)
            gateway.accounts.add(account)
            gateway.ledger.add_virtual_tx("demo", "BTC", btc + i, clock.now, account.id)
            gateway.ledger.add_virtual_tx("demo", "USDT", usdt, clock.now, account.id)
        gc.collect()  # as the server does after start-up (app.create_app): what was loaded leaves the collector's generations
        gc.freeze()
        try:
            await tracker.start(loop=False)  # every portfolio's first candle, inside the bucket
            portfolios = len(tracker.portfolios)
            clock.now = (t0 + BUCKET_S) * S + 5_000_000  # 5 ms past the boundary
            began, cpu = time.perf_counter(), time.process_time()
            await tracker.step()
            valued = time.perf_counter() - began
            await writer.flush()
            total = time.perf_counter() - began
            cpu = time.process_time() - cpu  # this process's threads only: PostgreSQL's own work is not in it
        finally:
            gc.unfreeze()
        assert writer.failed_rows == 0 and writer.rows_written >= portfolios, (writer.rows_written, portfolios)
        return {"portfolios": portfolios, "valuation_s": round(valued, 3), "capture_s": round(total, 3), "capture_cpu_s": round(cpu, 3),
                "rows_written": writer.rows_written, "transactions": writer.transactions}  # fmt: skip


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
