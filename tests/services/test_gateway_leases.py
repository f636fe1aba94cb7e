"""GatewayLeases on a real store: the shard's lease names, waiting for a held lease, a clean handover, stepping down."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from coinwire.config import ConfigError, load_settings
from coinwire.services.gateway_leases import GatewayLeases
from coinwire.store import Store
from coinwire.store.leases import list_leases, list_members, release_lease
from tests.server import free_port

EXCHANGES = json.dumps([{"name": "demo", "feed": "demo"}, {"name": "demo2", "feed": "demo", "seed": 3}])


def _settings(tmp_path: Path, **env: str) -> Any:
    return load_settings(env={"COINWIRE_EXCHANGES": EXCHANGES, "COINWIRE_DATA_DIR": str(tmp_path), "COINWIRE_PORT": str(free_port()),
                              **{f"COINWIRE_{k.upper()}": v for k, v in env.items()}})


def test_the_shard_names_configured_exchanges(tmp_path: Path) -> None:
    assert _settings(tmp_path).gateway_exchanges == ["demo", "demo2"]
    assert _settings(tmp_path, gateway_shard=" demo2 ").gateway_exchanges == ["demo2"]
    with pytest.raises(ConfigError, match="gateway_shard names exchanges that are not configured: kraken"):
        _settings(tmp_path, gateway_shard="demo,kraken")
    with pytest.raises(ConfigError, match="gateway_lease_seconds"):
        _settings(tmp_path, gateway_lease_seconds="0.1")


async def test_sqlite_stores_run_without_leases(tmp_path: Path) -> None:
    async with Store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        leases = GatewayLeases(store, _settings(tmp_path), holder="one")
        await leases.acquire()
        assert not leases.enabled and leases.held == {} and not store.fence.active
        assert await list_leases(store) == []
        await leases.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_second_gateway_waits_and_a_clean_stop_hands_over_at_once(store: Any, tmp_path: Path) -> None:
    settings = _settings(tmp_path, gateway_lease_seconds="30")
    other_store = Store(store.url, schema=store.schema)
    await other_store.start()
    first, second = GatewayLeases(store, settings, holder="h:1:gateway"), GatewayLeases(other_store, settings, holder="h:2:gateway")
    try:
        await first.acquire()
        assert sorted(first.held) == ["gateway:demo", "gateway:demo2"] and store.fence.active
        waiting = asyncio.create_task(second.acquire())
        await asyncio.sleep(0.5)
        assert not waiting.done() and second.waiting == "waiting for lease gateway:demo held by h:1:gateway"
        assert {m.holder for m in await list_members(store)} == {"h:1:gateway", "h:2:gateway"}
        await first.close()  # released: the second need not wait out the 30 s
        await asyncio.wait_for(waiting, 10)
        assert second.waiting is None
        assert [(v.name, v.holder, v.token) for v in await list_leases(store)] == [
            ("gateway:demo", "h:2:gateway", 2), ("gateway:demo2", "h:2:gateway", 2)]
        assert {m.holder for m in await list_members(store)} == {"h:2:gateway"}
    finally:
        await second.close()
        await other_store.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_gateway_whose_lease_is_taken_steps_down_at_its_next_renewal(store: Any, tmp_path: Path) -> None:
    settings = _settings(tmp_path, gateway_lease_seconds="0.6", gateway_shard="demo")
    leases = GatewayLeases(store, settings, holder="h:1:gateway")
    try:
        await leases.acquire()
        await asyncio.sleep(0.5)  # renewed meanwhile (every 0.2 s): still held
        assert leases.lost is None
        assert await release_lease(store, leases.held["gateway:demo"])  # ended behind its back (as by another's takeover)
        await asyncio.sleep(0.5)
        assert leases.lost is not None and "gateway:demo" in leases.lost and store.fence.lost == leases.lost
    finally:
        await leases.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_stop_signal_ends_the_wait_and_gives_the_handlers_back(store: Any, tmp_path: Path) -> None:
    """The server handles SIGTERM only once started: a gateway waiting for a lease must end its wait on it itself."""
    settings = _settings(tmp_path, gateway_lease_seconds="30", gateway_shard="demo")
    holder, waiter = GatewayLeases(store, settings, holder="h:1:gateway"), GatewayLeases(store, settings, holder="h:2:gateway")
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda sig, frame: seen.append(sig))
    try:
        await holder.acquire()
        waiting = asyncio.create_task(waiter.acquire())
        await asyncio.sleep(0.5)
        assert waiter.waiting is not None and not waiting.done()
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 5)
        assert seen == [] and waiter.held == {}
        os.kill(os.getpid(), signal.SIGTERM)  # the handler in place before the wait has it again
        await asyncio.sleep(0.1)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
        await waiter.close()
        await holder.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_renewal_the_store_does_not_answer_steps_down_by_the_deadline(store: Any, tmp_path: Path) -> None:
    """A store that hangs (here: the lease row locked by another session) does not keep a holder writing past its lease."""
    from sqlalchemy import text

    settings = _settings(tmp_path, gateway_lease_seconds="0.9", gateway_shard="demo")
    leases = GatewayLeases(store, settings, holder="h:1:gateway")
    blocker = Store(store.url, schema=store.schema)
    await blocker.start()
    try:
        await leases.acquire()
        started = asyncio.get_running_loop().time()
        async with blocker.engine.begin() as conn:
            await conn.execute(text("SELECT * FROM leases WHERE name = 'gateway:demo' FOR UPDATE"))
            while leases.lost is None and asyncio.get_running_loop().time() - started < 3:
                await asyncio.sleep(0.05)
            stepped = asyncio.get_running_loop().time() - started
        assert leases.lost is not None and "did not answer" in leases.lost, leases.lost
        assert stepped < 1.5  # by the lease's deadline (0.9 s after its last renewal was sent), not when the store answers
    finally:
        await leases.close()
        await blocker.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_leases_are_renewed_and_taken_only_while_the_bus_answers(store: Any, tmp_path: Path) -> None:
    """A bus away for less than the lease's rest: still held; away past the deadline: stepped down (the bus named);
    a gateway whose bus is away does not take a free lease until the bus is back."""
    from coinwire.bus.memory import MemoryBus

    settings = _settings(tmp_path, gateway_lease_seconds="0.9", gateway_shard="demo")
    bus = MemoryBus()
    await bus.start()
    leases = GatewayLeases(store, settings, holder="h:1:gateway", bus=bus)
    other_store = Store(store.url, schema=store.schema)
    await other_store.start()
    other_bus = MemoryBus()
    await other_bus.close()  # away from the start
    other = GatewayLeases(other_store, settings, holder="h:2:gateway", bus=other_bus)
    try:
        await leases.acquire()
        await bus.close()  # away for a moment: one renewal turn (0.3 s) skipped, the deadline not reached
        await asyncio.sleep(0.35)
        await bus.start()
        await asyncio.sleep(0.4)
        assert leases.lost is None and leases.bus_lost_at is None
        await bus.close()  # away for good: no renewal, stepped down once its own deadline passed
        await asyncio.sleep(1.5)
        assert leases.lost is not None and "the bus was lost" in leases.lost, leases.lost
        waiting = asyncio.create_task(other.acquire())  # the lease expired, but this one's bus is away
        await asyncio.sleep(0.5)
        assert not waiting.done() and other.waiting == "waiting for the bus before taking lease gateway:demo"
        await other_bus.start()
        await asyncio.wait_for(waiting, 5)
        assert [(v.holder, v.token) for v in await list_leases(store)] == [("h:2:gateway", 2)]
    finally:
        await leases.close()
        await other.close()
        await other_store.close()
