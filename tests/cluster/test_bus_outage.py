"""Orders placed while NATS is away: answered as committed, and notified once the bus is back, each seq once; and what a
gateway killed then never published, published by its next start from the store.

One all-in-one server on a private nats-server (its JetStream kept across the kill): an order before,
three while NATS is killed, one after it started again. Every order is answered `done` (before, a
command whose notifications could not be published answered an error for an order the store held),
and a replay of the account from `since=0` gives every seq from 1 to the last exactly once: what
waited in the gateway's queue (services/notify_queue.py) reached the bus in order, and a batch whose
acknowledgement was lost and that was sent again is not kept twice (its message ids).

Killed with -9 while those notifications waited (NATS still down), the server loses its queue; started
again with NATS back, it finds the account's newest seq on the bus behind the store's and publishes
the rows between (services/lost_notifications.py): the replay is whole again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coinwire.api.client import RpcClient
from coinwire.bus.nats import NatsBus
from tests.cluster.harness import PrivateNats, tools_missing
from tests.conftest import unavailable
from tests.server import ServerProcess

pytestmark = pytest.mark.services


@pytest.fixture
def nats() -> Iterator[PrivateNats]:
    missing = tools_missing()
    if missing:
        unavailable(f"a private NATS needs its binary: {missing}")
    server = PrivateNats("127.0.0.1")
    server.start()
    yield server
    server.close()


def _buy(http: httpx.Client, oid: str) -> httpx.Response:
    return http.post("/xwrap/v1/orders/new", json={"exchange": "demo", "pair": "BTC_USDT", "type": "market", "side": "buy",
                                                   "size": "0.001", "client_oid": oid})


def _waiting(http: httpx.Client) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("coinwire_notifications_waiting "):
            return float(line.split()[1])
    return 0.0


async def _replayed(server: ServerProcess, account: int) -> list[int]:
    seqs: list[int] = []
    async with RpcClient(f"{server.ws_anonymous}?access_token={server.token}&account={account}&since=0") as replay:
        with contextlib.suppress(TimeoutError):
            while True:
                method, params = await asyncio.wait_for(replay.notifications.get(), 2.0)
                if method in ("order", "trade") and params.get("account") == account:
                    seqs.append(int(params["seq"]))
    return seqs


async def _on_bus(url: str, namespace: str, account: int) -> list[int]:
    bus = NatsBus(url, namespace)
    await bus.start()
    try:
        return sorted(m.seq for _, _, m in await bus.replay(f"*.{account}.>"))  # type: ignore[union-attr]
    finally:
        await bus.close()


def _server(tmp_path: Path, nats: PrivateNats, namespace: str) -> ServerProcess:
    server = ServerProcess(tmp_path / "server", env={"COINWIRE_BUS_URL": nats.url, "COINWIRE_NAMESPACE": namespace})
    server.data_dir.mkdir()
    server.start(timeout=60)
    return server


def _orders_while_the_bus_is_away(admin: httpx.Client, nats: PrivateNats) -> tuple[int, list[dict[str, Any]]]:
    """An order, then NATS killed and three more, each answered as committed; the account and those three."""
    before = _buy(admin, "before")
    assert before.status_code == 200, before.text
    nats.kill()
    during: list[dict[str, Any]] = []
    for n in range(3):
        placed = _buy(admin, f"during-{n}")
        assert placed.status_code == 200, placed.text  # committed: answered as such, the bus or not
        during.append(placed.json())
    assert all(o["status"] == "done" for o in during), during
    assert _waiting(admin) >= 1  # kept for the bus
    return int(before.json()["account"]), during


def test_orders_placed_while_the_bus_is_away_are_answered_and_notified_once_it_is_back(tmp_path: Path,
                                                                                       nats: PrivateNats) -> None:
    server = _server(tmp_path, nats, "outage")
    try:
        with server.client(timeout=30.0) as admin:
            account, _ = _orders_while_the_bus_is_away(admin, nats)
            nats.start()
            deadline = time.monotonic() + 30
            while _waiting(admin) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _waiting(admin) == 0
            after = _buy(admin, "after")
            assert after.status_code == 200, after.text
        seqs = asyncio.run(_replayed(server, account))
        last = int(after.json()["seq"])
        assert sorted(seqs) == list(range(1, last + 1)), seqs  # every seq, each once
    finally:
        server.stop()


def test_what_a_gateway_killed_before_publishing_committed_is_published_by_its_next_start(tmp_path: Path,
                                                                                        nats: PrivateNats) -> None:
    server = _server(tmp_path, nats, "lost")
    try:
        with server.client(timeout=30.0) as admin:
            account, _ = _orders_while_the_bus_is_away(admin, nats)
        server.kill()  # what waited for the bus dies with it: committed, never published
        nats.start()
        assert asyncio.run(_on_bus(nats.url, "lost", account)) == [1, 2]  # the first order's fill and order only
        server.start(timeout=60)
        with server.client(timeout=30.0) as admin:
            after = _buy(admin, "after")
            assert after.status_code == 200, after.text
        last = int(after.json()["seq"])
        deadline = time.monotonic() + 30
        while sorted(seqs := asyncio.run(_replayed(server, account))) != list(range(1, last + 1)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sorted(seqs) == list(range(1, last + 1)), seqs
        assert "published again from the store" in server.log_path.read_text()
    finally:
        server.stop()
