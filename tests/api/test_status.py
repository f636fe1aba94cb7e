"""get_status and /readyz tell the truth: `online`, or `degraded` with stable reasons, from the running server's real signals."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from coinwire.api.client import RpcClient, RpcError
from tests.conftest import POSTGRES_URL, REQUIRE_SERVICES, require_service, shared_data
from tests.feeds.binance_server import RecordedBinance, ServerRunner, load_capture
from tests.server import DEMO_EXCHANGES, ServerProcess, free_port

EX = "demo"


def rest_status(server: ServerProcess) -> dict[str, Any]:
    r = httpx.get(server.http + "/xwrap/v1/status", headers=server.headers, timeout=10)
    assert r.status_code == 200, r.text  # degraded is an answer, never an error
    return dict(r.json())


def readyz(server: ServerProcess) -> tuple[int, dict[str, Any]]:
    r = httpx.get(server.http + "/readyz", timeout=10)
    assert r.status_code in (200, 503), r.text
    return r.status_code, dict(r.json())


def readyz_when_listening(server: ServerProcess) -> tuple[int, dict[str, Any]] | None:
    try:
        return readyz(server)
    except httpx.TransportError:  # still starting
        return None


def codes(reasons: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    return {(r["code"], r.get("exchange")) for r in reasons}


async def until(probe: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    """Calls `probe` (sync or async) until `check` holds on its answer; the last answer is in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if asyncio.iscoroutine(answer):
            answer = await answer
        if check(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {answer}")
        await asyncio.sleep(0.2)


def online(status: dict[str, Any]) -> bool:
    return status["status"] == "online" and status["reasons"] == []


# --- a healthy server -------------------------------------------------------------------------------
async def test_a_healthy_server_is_online_with_no_reasons(server: ServerProcess, rpc: RpcClient) -> None:
    status = await rpc.call("get_status")
    assert status["status"] == "online" and status["reasons"] == [], status
    assert status["exchanges"] == {EX: "ready"}
    assert online(rest_status(server))
    code, ready = readyz(server)
    assert code == 200 and ready["ready"] is True and ready["status"] == "online" and ready["reasons"] == []
    assert ready["checks"] == {"store": True, "bus": True, "cache": True}


# --- an exchange that cannot connect ----------------------------------------------------------------
async def test_an_exchange_that_cannot_connect_degrades_the_server_and_names_only_itself(tmp_path: Path) -> None:
    """A paper exchange on a ccxt feed and a live exchange, both pointed at a local port nobody listens on."""
    closed = f"http://127.0.0.1:{free_port()}"
    ccxt = {"feed": "ccxt", "ccxt_id": "binance", "symbols": ["BTC/USDT"], "poll_interval": 0.05, "ccxt_websocket": False,
            "ccxt_timeout": 1.0, "ccxt_urls": {"api.public": f"{closed}/api/v3", "api.private": f"{closed}/api/v3"},
            "ccxt_options": {"fetchMarkets": {"types": ["spot"]}}}
    exchanges = [*DEMO_EXCHANGES, {"name": "mirror", **ccxt}, {"name": "venue", "mode": "live", **ccxt}]
    env = {"COINWIRE_VENUE_API_KEY": "key-" + "k" * 20, "COINWIRE_VENUE_SECRET": "secret-" + "s" * 20}
    server = ServerProcess(tmp_path, exchanges=exchanges, env=env)
    server.start(wait_ready=False)
    try:
        await until(lambda: readyz_when_listening(server), lambda a: a is not None and a[0] == 200 and a[1]["exchanges"].get(EX) == "ready")
        async with RpcClient(server.ws) as rpc:
            status = await rpc.call("get_status")
        assert status["status"] == "degraded", status
        assert codes(status["reasons"]) == {("feed_not_connected", "mirror"), ("feed_not_connected", "venue"),
                                            ("venue_not_connected", "venue")}, status["reasons"]
        for reason in status["reasons"]:
            assert reason["message"] and EX not in reason["message"].split() and closed not in reason["message"]
        assert status["exchanges"] == {EX: "ready", "mirror": "starting", "venue": "starting"}
        assert rest_status(server)["reasons"] == status["reasons"]
        code, ready = readyz(server)  # the ports answer: ready for traffic, with the same reasons
        assert code == 200 and ready["status"] == "degraded" and ready["reasons"] == status["reasons"]
    finally:
        server.stop()


# --- a store that becomes unreachable, then comes back --------------------------------------------
@pytest.fixture
async def pg_database() -> AsyncIterator[tuple[str, str]]:
    """A throwaway PostgreSQL database beside the test one: (its name, its URL)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    base, _, test_db = POSTGRES_URL.rpartition("/")
    name = f"{test_db}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield name, f"{base}/{name}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_a_postgresql_store_that_goes_away_degrades_the_server_and_its_return_brings_it_back(
    tmp_path: Path, pg_database: tuple[str, str]
) -> None:
    name, url = pg_database
    server = ServerProcess(tmp_path, env={"COINWIRE_STORE_URL": url})
    server.start()
    try:
        async with RpcClient(server.ws) as rpc:
            assert (await rpc.call("get_status"))["status"] == "online"
            # an outage: the database refuses new connections and loses the ones it had
            await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            status = await until(lambda: rpc.call("get_status"), lambda s: s["status"] == "degraded")
            assert outage(codes(status["reasons"])), status
            assert url not in str(status) and name not in str(status)  # no URL, no database name
            # a request that must read its session from the store is refused with a stable code, never a 500
            r = httpx.get(server.http + "/xwrap/v1/status", headers=server.headers, timeout=10)
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable", (r.status_code, r.text)
            with pytest.raises(RpcError) as refused:  # a call that reads the store: the same code
                await rpc.call("list_recent_orders")
            assert refused.value.data["code"] == "store_unavailable", refused.value
            code, ready = readyz(server)
            assert code == 503 and ready["ready"] is False and ready["checks"]["store"] is False
            assert ready["status"] == "degraded" and outage(codes(ready["reasons"])), ready
            # it comes back
            await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await until(lambda: rpc.call("get_status"), online)
            assert readyz(server)[0] == 200
            assert await rpc.call("list_recent_orders") == []
        # a connection confirmed less than 10 s ago needs no store for get_status: a fresh one for what follows
        async with RpcClient(server.ws) as rpc:
            # the database goes for good: still an answer, never an error
            await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')
            status = await until(lambda: rpc.call("get_status"), lambda s: s["status"] == "degraded")
            assert outage(codes(status["reasons"])), status
            assert readyz(server)[0] == 503
    finally:
        server.stop()


def outage(reasons: set[tuple[str, str | None]]) -> bool:
    """A store outage's reasons: unreachable, and the gateway's lease lost once it outlasted the lease (PostgreSQL)."""
    return ("store_unreachable", None) in reasons and reasons <= {("store_unreachable", None), ("lease_lost", None)}


def _journal_helper(server: ServerProcess) -> int | None:
    """The pid of the server's store journal helper (a child process), if one runs."""
    assert server.proc is not None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == server.proc.pid and b"coinwire.store.journal_helper" in cmdline:
            return int(entry.name)
    return None


async def test_a_sqlite_store_whose_journal_helper_stops_degrades_the_server(tmp_path: Path) -> None:
    """The helper killed more often than it is replaced: reads would wait in vain, and the status says so."""
    server = ServerProcess(tmp_path)
    server.start()
    try:
        async with RpcClient(server.ws) as rpc:
            assert (await rpc.call("get_status"))["status"] == "online"
            killed: set[int] = set()
            for _ in range(4):  # replaced three times, then the store is unavailable
                pid = await until(lambda: _journal_helper(server), lambda p: p is not None and p not in killed)
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            status = await until(lambda: rpc.call("get_status"), lambda s: s["status"] == "degraded")
            assert codes(status["reasons"]) == {("store_journal_stopped", None)}, status
            assert str(tmp_path) not in str(status)  # no path
            code, ready = readyz(server)
            assert code == 503 and ready["reasons"] == status["reasons"]
        server.stop()
        server.start()  # the next start applies what the journal kept
        async with RpcClient(server.ws) as rpc:
            assert online(await rpc.call("get_status"))
    finally:
        server.stop()


# --- a bus and a cache that go away, then come back -------------------------------------------------
class Service:
    """A private nats-server or redis-server on a free loopback port, stopped and started again on that port."""

    def __init__(self, name: str, argv: Callable[[int], list[str]]) -> None:
        binary = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
        if binary is None:
            if REQUIRE_SERVICES:
                pytest.fail(f"{name} is not installed, and COINWIRE_REQUIRE_SERVICES=1 requires it")
            pytest.skip(f"{name} is not installed")
        self.port = free_port()
        self.argv = [binary, *argv(self.port)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def nats_and_redis(tmp_path: Path) -> Iterator[tuple[Service, Service]]:
    nats = Service("nats-server", lambda port: ["-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path / "nats")])
    redis = Service("redis-server", lambda port: ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                                                  "--dir", str(tmp_path)])
    try:
        nats.start()
        redis.start()
        yield nats, redis
    finally:
        nats.stop()
        redis.stop()


async def test_a_bus_or_cache_that_goes_away_degrades_the_server_until_it_is_back(
    tmp_path: Path, nats_and_redis: tuple[Service, Service]
) -> None:
    nats, redis = nats_and_redis
    server = ServerProcess(tmp_path / "server", env={"COINWIRE_BUS_URL": f"nats://127.0.0.1:{nats.port}",
                                                     "COINWIRE_CACHE_URL": f"redis://127.0.0.1:{redis.port}/0"})
    server.data_dir.mkdir()
    server.start()
    try:
        for service, reason in ((redis, "cache_unreachable"), (nats, "bus_unreachable")):
            async with RpcClient(server.ws) as rpc:
                assert online(await rpc.call("get_status"))
                service.stop()
                status = await until(lambda: rpc.call("get_status"), lambda s: s["status"] == "degraded")
                assert codes(status["reasons"]) == {(reason, None)}, status
                code, ready = readyz(server)
                assert code == 503 and ready["reasons"] == status["reasons"], ready
                service.start()
                await until(lambda: rpc.call("get_status"), online)
                assert readyz(server)[0] == 200
    finally:
        server.stop()


# --- a feed whose venue fails for a while -----------------------------------------------------------
async def test_a_feed_that_stops_flowing_degrades_its_exchange_until_it_flows_again(tmp_path: Path) -> None:
    """A paper exchange mirroring a local Binance (recorded data) whose depth endpoint fails three times in a row."""
    venue = RecordedBinance(load_capture(shared_data("binance-spot-l2", "btcusdt_20240808.gz"), 3000))
    binance = ServerRunner(venue)
    await binance.start()
    mirror = {"name": "mirror", "feed": "ccxt", "ccxt_id": "binance", "symbols": ["BTC/USDT"], "poll_interval": 0.05,
              "ccxt_websocket": False, "ccxt_urls": binance.urls(), "ccxt_options": {"fetchMarkets": {"types": ["spot"]}}}
    server = ServerProcess(tmp_path, exchanges=[*DEMO_EXCHANGES, mirror])
    server.start(wait_ready=False)  # the local Binance answers from this test's event loop: no blocking wait
    try:
        await until(lambda: readyz_when_listening(server),
                    lambda a: a is not None and a[0] == 200 and a[1]["status"] == "online", timeout=60)
        async with RpcClient(server.ws) as rpc:
            assert online(await rpc.call("get_status"))
            venue.fail("depth", 500, 503, 500)  # about 3.5 s of the feed's backoff
            status = await until(lambda: rpc.call("get_status"), lambda s: s["status"] == "degraded")
            assert status["reasons"] == [{"code": "feed_stale", "exchange": "mirror", "symbols": ["BTC/USDT"],
                                          "message": "market data for BTC/USDT on exchange mirror is not flowing "
                                                     "(the feed is retrying)"}], status
            assert status["exchanges"] == {EX: "ready", "mirror": "degraded"}
            venue.advance(300)
            await until(lambda: rpc.call("get_status"), online)
    finally:
        server.stop()
        await binance.stop()


async def test_a_feed_that_stopped_with_an_error_is_named(tmp_path: Path) -> None:
    """A replay feed whose recording is missing: it announces its market, then its task ends with an error."""
    missing = tmp_path / "missing-capture.gz"
    exchanges = [*DEMO_EXCHANGES, {"name": "rec", "feed": "replay", "replay_paths": [str(missing)]}]
    server = ServerProcess(tmp_path, exchanges=exchanges)
    server.start(wait_ready=False)
    try:
        status = await until(lambda: readyz_when_listening(server),
                             lambda a: a is not None and a[1]["exchanges"].get(EX) == "ready" and a[1]["status"] == "degraded"
                             and ("feed_stopped", "rec") in codes(a[1]["reasons"]))
        assert codes(status[1]["reasons"]) == {("feed_stopped", "rec"), ("book_not_synced", "rec")}, status
        assert status[0] == 200 and "missing-capture" not in str(status)  # no path
        async with RpcClient(server.ws) as rpc:
            assert (await rpc.call("get_status"))["reasons"] == status[1]["reasons"]
    finally:
        server.stop()
