"""Two gateway servers on one PostgreSQL store and one NATS: one writes, the other waits and takes over; a stale one is fenced.

Real processes (`python -m coinwire.cli serve`), a database of their own, a NATS namespace of their
own, 2-second leases. (a) the second waits (its /readyz says for which lease and whom) while the
first runs; kill -9 the first: the second takes over within the lease and a renewal and serves
the orders placed before. (b) SIGSTOP the holder past its expiry: the other takes over; SIGCONT:
the stale one writes nothing more (its order is refused, no row of it appears), steps down and
reports not ready.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from coinwire.api.client import RpcClient, RpcError
from coinwire.store import Store
from coinwire.store.leases import acquire_lease, list_leases, release_lease
from coinwire.store.tables import fills, orders, wallet_lines
from tests.conftest import NATS_URL, postgres_database, require_service
from tests.server import ServerProcess

LEASE_SECONDS = 2.0


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def namespace() -> Iterator[str]:
    """A NATS namespace of this test's own (prefix t28lease), its JetStream stream deleted afterwards."""
    from urllib.parse import urlsplit

    from coinwire.bus.nats import NatsBus

    url = urlsplit(NATS_URL)
    require_service("NATS", url.hostname or "127.0.0.1", url.port or 4222)
    name = f"t28lease{uuid.uuid4().hex[:12]}"
    yield name

    async def delete() -> None:
        bus = NatsBus(NATS_URL, name)
        await bus.start()
        try:
            await bus.delete_stream()
        finally:
            await bus.close()

    with ThreadPoolExecutor(1) as thread:  # a thread of its own: an async test's loop may still be running here
        thread.submit(asyncio.run, delete()).result()


def _servers(tmp_path: Path, database: str, namespace: str) -> tuple[ServerProcess, ServerProcess]:
    env = {"COINWIRE_STORE_URL": database, "COINWIRE_BUS_URL": NATS_URL, "COINWIRE_BUS_NAMESPACE": namespace,
           "COINWIRE_GATEWAY_LEASE_SECONDS": str(LEASE_SECONDS), "COINWIRE_LOG_LEVEL": "info"}
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    return ServerProcess(first, env=env), ServerProcess(second, env=env)


def _wait_until_waiting(server: ServerProcess, holder_pid: int, timeout: float = 20.0) -> str:
    """Until the standby's /readyz says it waits for the demo gateway's lease held by the process `holder_pid`."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(server.http + "/readyz", timeout=1.0)
            last = answer.text
            reasons = answer.json().get("reasons", [])
            if answer.status_code == 503 and reasons and reasons[0]["code"] == "lease_waiting":
                message = str(reasons[0]["message"])
                assert message.startswith("waiting for lease gateway:demo held by "), message
                assert f":{holder_pid}:" in message, message
                assert httpx.get(server.http + "/healthz", timeout=1.0).status_code == 200
                return message
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the standby never said it waits (last: {last}):\n{server.log()}")


async def _place(server: ServerProcess, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """`count` resting limit buys and one market buy, as admin: each one's parameters and answer."""
    async with RpcClient(server.ws) as rpc:
        bid = Decimal((await rpc.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
        limit = str((bid * Decimal("0.6")).quantize(Decimal("0.01")))
        asked: list[dict[str, Any]] = [{"limit": limit} for _ in range(count)] + [{"type": "market"}]
        placed = []
        for params in asked:
            params.update(exchange="demo", pair="BTC_USDT", side="buy", size="0.001", client_oid=uuid.uuid4().hex)
            placed.append((params, await rpc.call("make_order", **params)))
    return placed


async def _rows(database: str) -> dict[str, int]:
    async with Store(database) as store:
        async with store.engine.connect() as conn:
            return {t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
                    for t in (orders, fills, wallet_lines)}


async def _lease_holder(database: str) -> tuple[str, int]:
    async with Store(database) as store:
        [lease] = await list_leases(store)
    return lease.holder, lease.token


async def test_the_standby_waits_then_takes_over_when_the_holder_is_killed(tmp_path: Path, database: str,
                                                                          namespace: str) -> None:
    first, second = _servers(tmp_path, database, namespace)
    first.start()
    try:
        placed = await _place(first, 3)
        assert first.proc is not None and second is not None
        second.start(wait_ready=False)
        _wait_until_waiting(second, first.proc.pid)
        assert (await _lease_holder(database))[0].split(":")[1] == str(first.proc.pid)
        first.kill()
        killed = time.monotonic()
        assert second.proc is not None
        while (holder := await _lease_holder(database))[0].split(":")[1] != str(second.proc.pid):
            assert time.monotonic() - killed < 10, holder
            await asyncio.sleep(0.05)
        leased = time.monotonic() - killed
        assert holder[1] == 2
        # at most the rest of the lease (renewed a third of it before the kill at the latest) and a waiting retry
        assert leased < LEASE_SECONDS + LEASE_SECONDS / 6 + 1.0, leased
        second.wait_ready(timeout=20)
        took = time.monotonic() - killed
        print(f"after kill -9: lease taken over in {leased:.2f} s, ready in {took:.2f} s (lease {LEASE_SECONDS} s)")
        async with RpcClient(second.ws) as rpc:
            resting = {o["id"]: o for o in await rpc.call("list_open_orders")}
            assert {o["id"] for _, o in placed[:-1]} <= set(resting)
            # the same idempotency key on the new holder answers the order the old one placed, not a second one
            for params, answer in placed:
                assert (await rpc.call("make_order", **params))["id"] == answer["id"]
        later = await _place(second, 1)
        assert min(o["id"] for _, o in later) > max(o["id"] for _, o in placed)
        assert (await _rows(database))["orders"] == len(placed) + len(later)
    finally:
        first.kill()
        second.kill()


async def test_a_stale_holder_resumed_after_the_takeover_writes_nothing_and_steps_down(tmp_path: Path, database: str,
                                                                                      namespace: str) -> None:
    first, second = _servers(tmp_path, database, namespace)
    first.start()
    assert first.proc is not None
    stopped = False
    try:
        await _place(first, 1)
        second.start(wait_ready=False)
        _wait_until_waiting(second, first.proc.pid)
        async with RpcClient(first.ws) as stale:  # connected before the pause: its order arrives as the process resumes
            bid = Decimal((await stale.call("get_pricing", exchange="demo"))["BTC_USDT"]["bid"])
            os.kill(first.proc.pid, signal.SIGSTOP)
            stopped = True
            second.wait_ready(timeout=20)  # took over while the first sleeps past its lease
            await _place(second, 1)
            before = await _rows(database)
            late_oid = uuid.uuid4().hex
            late = asyncio.create_task(stale.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market",
                                                  size="0.001", client_oid=late_oid))
            await asyncio.sleep(0.2)
            os.kill(first.proc.pid, signal.SIGCONT)
            stopped = False
            with pytest.raises(RpcError) as refused:
                await asyncio.wait_for(late, 10)
            print(f"the stale holder's order after SIGCONT: refused with {refused.value.reason}")
            assert refused.value.reason in ("lease_lost", "gateway_unavailable"), refused.value
            with pytest.raises(RpcError) as again:  # stepped down: every later order is refused as retryable
                await stale.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.001",
                                 client_oid=uuid.uuid4().hex)
            assert again.value.reason == "gateway_unavailable"
            assert bid > 0
        await asyncio.sleep(1.0)  # whatever the resumed process's market data would have filled
        assert await _rows(database) == before
        async with Store(database) as store, store.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(orders).where(orders.c.client_oid == late_oid))).scalar_one() == 0
        ready = httpx.get(first.http + "/readyz", timeout=5)
        assert ready.status_code == 503
        assert [r["code"] for r in ready.json()["reasons"]] == ["lease_lost"]
        assert httpx.get(second.http + "/readyz", timeout=5).status_code == 200
        assert "gateway stepping down" in first.log_path.read_text()
    finally:
        if stopped:
            os.kill(first.proc.pid, signal.SIGCONT)
        first.kill()
        second.kill()



async def test_a_clean_stop_hands_over_long_before_the_expiry(tmp_path: Path, database: str, namespace: str) -> None:
    first, second = _servers(tmp_path, database, namespace)
    for server in (first, second):
        server.extra_env["COINWIRE_GATEWAY_LEASE_SECONDS"] = "30"
    first.start()
    assert first.proc is not None
    try:
        second.start(wait_ready=False)
        _wait_until_waiting(second, first.proc.pid)
        first.stop()  # SIGTERM: the leases are released, not left to expire
        stopped = time.monotonic()
        second.wait_ready(timeout=20)
        took = time.monotonic() - stopped
        print(f"takeover after a clean stop: {took:.2f} s (lease 30 s)")
        assert took < 12
    finally:
        first.kill()
        second.kill()



async def test_a_gateway_that_stepped_down_takes_its_shard_back_once_it_is_free(tmp_path: Path, database: str,
                                                                                 namespace: str) -> None:
    """Its lease is taken behind its back: it steps down and refuses; once the lease is free it takes it back and trades on."""
    server, _ = _servers(tmp_path, database, namespace)
    server.start()
    try:
        placed = await _place(server, 1)
        async with Store(database) as store:
            [lease] = await list_leases(store)
            assert await release_lease(store, lease)  # another process takes the shard (as after a missed renewal)
            intruder, _ = await acquire_lease(store, "gateway:demo", "intruder:1:gateway", 60_000)
            assert intruder is not None and intruder.token == lease.token + 1
        down = server.until_readyz(503, 20)
        assert "lease_lost" in [r["code"] for r in down["reasons"]], down
        async with RpcClient(server.ws) as rpc:
            with pytest.raises(RpcError) as refused:
                await rpc.call("make_order", exchange="demo", pair="BTC_USDT", side="buy", type="market", size="0.001",
                               client_oid=uuid.uuid4().hex)
            assert refused.value.reason == "gateway_unavailable"
        async with Store(database) as store:
            assert await release_lease(store, intruder)  # the shard is free again
        server.until_readyz(200, 20)
        async with Store(database) as store:
            [back] = await list_leases(store)
        assert server.proc is not None and back.holder.split(":")[1] == str(server.proc.pid) and back.token > intruder.token
        again = await _place(server, 1)  # it writes again, its memory reloaded from the store
        async with RpcClient(server.ws) as rpc:
            recent = {o["id"] for o in await rpc.call("list_recent_orders", limit=20)}  # done: the market buys
            recent |= {o["id"] for o in await rpc.call("list_open_orders")}  # resting: the limit buys, reloaded
        assert {answer["id"] for _, answer in placed + again} <= recent
        assert "gateway took its shard back after stepping down" in server.log_path.read_text()
    finally:
        server.kill()
