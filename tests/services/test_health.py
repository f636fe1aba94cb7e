"""Health from the real store, bus and cache: the journal's refused records and stopped helper, and the ping's TTL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from coinwire.bus.memory import MemoryBus
from coinwire.cache.memory import MemoryCache
from coinwire.config import load_settings
from coinwire.services.gateway import Gateway
from coinwire.services.health import Health
from coinwire.store import ChangeSet, Store
from tests.store.test_store_contract import BTC_USDT, fill, ledger, order


def _health(tmp_path: Path, store: Store, clock: list[float] | None = None) -> Health:
    bus, cache = MemoryBus(), MemoryCache()
    gateway = Gateway(load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": []}), store, bus)
    if clock is None:
        return Health(store, bus, cache, gateway)
    return Health(store, bus, cache, gateway, clock=lambda: clock[0])


async def test_a_record_the_database_refused_degrades_but_keeps_the_store_ready(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", journal=True)
    await store.start()
    try:
        health = _health(tmp_path, store)
        assert (await health.report())["status"] == "online"
        await store.apply(ledger())
        await store.apply(ChangeSet().add_order(order(1), BTC_USDT).add_fill(fill(1, 404), BTC_USDT))  # refused when applied
        await store.settled()
        report = await health.report()
        assert report["status"] == "degraded" and report["ready"] is True
        assert [r["code"] for r in report["reasons"]] == ["store_journal_refused"]
        assert report["reasons"][0]["message"].startswith("1 acknowledged change set(s)")
        assert str(tmp_path) not in str(report)
    finally:
        await store.close()


async def test_a_stopped_journal_helper_is_reported_at_once_and_the_store_not_ready(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    store = Store(f"sqlite:///{database}", journal=True)
    await store.start()
    try:
        health = _health(tmp_path, store)
        assert (await health.report())["ready"] is True  # the store's ping is now cached for a second
        await store.apply(ledger())
        await store.settled()
        con = sqlite3.connect(database)
        con.execute("DROP TABLE fills")  # not one record's fault: the helper stops
        con.close()
        await store.apply(ChangeSet().add_order(order(1), BTC_USDT).add_fill(fill(1, 1), BTC_USDT))
        while store.journal is not None and store.journal.failure is None:
            await asyncio.sleep(0.01)
        report = await health.report()  # within the ping's TTL: the journal's state is read every time
        assert report["status"] == "degraded" and report["ready"] is False and report["checks"]["store"] is False
        assert [r["code"] for r in report["reasons"]] == ["store_journal_stopped"]
    finally:
        await store.close()


async def test_a_ping_answers_for_its_ttl_then_a_new_one_is_taken(tmp_path: Path) -> None:
    now = [100.0]
    store = Store(f"sqlite:///{tmp_path / 'store.db'}", journal=False)
    await store.start()
    health = _health(tmp_path, store, now)
    first = await asyncio.gather(*(health.report() for _ in range(5)))  # one ping, shared
    assert all(r["status"] == "online" for r in first)
    await store.close()  # the database is gone from this process
    now[0] += 0.5
    assert (await health.report())["status"] == "online"  # the last ping still answers, as documented
    now[0] += 0.6
    report = await health.report()
    assert report["status"] == "degraded" and report["checks"] == {"store": False, "bus": True, "cache": True}
    assert [r["code"] for r in report["reasons"]] == ["store_unreachable"]
    await health.close()
