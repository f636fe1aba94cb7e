"""A gateway cut off from NATS (a network namespace, its veth to the bus set down) while it holds the lease.

The holder runs inside a network namespace: it reaches NATS only over one veth pair, is reached
over HTTP over another, and reaches PostgreSQL and Redis over unix sockets. The standby and the
marketdata process run on the host. Cutting the bus pair leaves the holder its store: it stops
renewing (services/gateway_leases.py renews only while the bus is connected), so the standby,
which still has the bus, takes the lease, but only once the lease expired; the cut-off one steps
down, refuses orders (`gateway_unavailable`), and nothing it is sent after the takeover is stored.
With the link back it stays down (/readyz `lease_lost`) until restarted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from coinwire.api.client import RpcClient, RpcError
from coinwire.store import Store
from coinwire.store.leases import list_leases
from coinwire.store.tables import fills, orders, wallet_lines
from tests.cluster.harness import Cluster, NetNamespace, RoleProcess, netns_missing
from tests.conftest import unavailable

pytestmark = pytest.mark.services

LEASE_SECONDS = 2.0


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    missing = netns_missing()
    if missing:
        unavailable(f"the partition test needs network namespaces: {missing}")
    made = NetNamespace()
    try:
        yield made.create()
    finally:
        made.close()


@pytest.fixture
def cluster(tmp_path: Path, pg_data_template: Path, netns: NetNamespace) -> Iterator[Cluster]:
    made = Cluster(tmp_path, pg_data_template, spec=(), lease_seconds=LEASE_SECONDS, nats_listen="0.0.0.0")
    try:
        made.start_servers()
        yield made
    finally:
        made.close()


def _order(client_oid: str) -> dict[str, str]:
    return {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "market", "size": "0.001", "client_oid": client_oid}


async def _holder(cluster: Cluster) -> tuple[str, int, int, float]:
    """The demo lease's holder, token, expiry (ms, the database's clock), and when it was read (monotonic)."""
    async with Store(cluster.pg.url) as store:
        [lease] = await list_leases(store)
    return lease.holder, lease.token, lease.expires_at, time.monotonic()


async def _stored(cluster: Cluster, client_oids: list[str]) -> int:
    async with Store(cluster.pg.url) as store, store.engine.connect() as conn:
        query = select(func.count()).select_from(orders).where(orders.c.client_oid.in_(client_oids))
        return int((await conn.execute(query)).scalar_one())


async def _rows(cluster: Cluster) -> dict[str, int]:
    async with Store(cluster.pg.url) as store, store.engine.connect() as conn:
        return {t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one()) for t in (orders, fills, wallet_lines)}


async def test_a_gateway_cut_off_from_nats_lets_its_lease_expire_and_the_standby_takes_over(
        cluster: Cluster, netns: NetNamespace) -> None:
    market = cluster.add("md", "marketdata")
    market.start(wait_ready=False)
    inner = cluster.add("inner", "gateway,api", launcher=netns.launcher, sockets=True,
                        nats_url=f"nats://{netns.bus_host}:{cluster.nats.port}")
    inner.extra_env["COINWIRE_HOST"] = "0.0.0.0"
    inner.host = netns.api_inner
    inner.start(wait_ready=False)
    inner.wait_healthy(60)
    outer: RoleProcess = cluster.add("outer", "gateway,api")
    outer.start(wait_ready=False)
    market.wait_up(60)
    inner.wait_up(60)
    outer.wait_healthy(60)
    assert inner.proc is not None and outer.proc is not None
    assert (await _holder(cluster))[0].split(":")[1] != str(outer.proc.pid)
    async with RpcClient(inner.ws) as rpc:
        before = await rpc.call("make_order", **_order(uuid.uuid4().hex))
        assert before["status"] == "done"
        netns.cut_bus()
        cut = time.monotonic()
        sent: list[str] = []
        answers: list[str] = []
        last_expiry = 0
        while True:  # until the standby holds the lease; meanwhile the cut-off holder's last expiry (database clock)
            holder, token, expiry, seen = await _holder(cluster)
            if holder.split(":")[1] == str(outer.proc.pid):
                break
            last_expiry = expiry
            assert seen - cut < 15, f"no takeover:\n{cluster.logs()}"
            await asyncio.sleep(0.05)
        took = seen - cut
        taken = await _rows(cluster)
        print(f"\nthe standby holds the lease {took:.2f} s after the bus was cut (lease {LEASE_SECONDS} s)")
        assert token == 2
        # granted (its expiry less one lease, or later if already renewed) no sooner than the cut-off holder's lease expired
        assert expiry - int(LEASE_SECONDS * 1000) >= last_expiry > 0, (expiry, last_expiry)
        for _ in range(3):  # after the takeover: refused, never stored
            client_oid = uuid.uuid4().hex
            sent.append(client_oid)
            try:
                await rpc.call("make_order", timeout=10, **_order(client_oid))
                answers.append("placed")
            except RpcError as exc:
                answers.append(str(exc.reason))
        print(f"orders sent to the cut-off gateway after the takeover: {answers}")
        assert "placed" not in answers, answers
        assert answers[-1] == "gateway_unavailable", answers
        code, body = inner.readyz(timeout=5)
        assert code == 503 and "lease_lost" in [r["code"] for r in body["reasons"]], body
        netns.heal_bus()
        await asyncio.sleep(1.5)  # whatever the healed link carries
        code, body = inner.readyz(timeout=5)
        assert code == 503 and "lease_lost" in [r["code"] for r in body["reasons"]], body  # stays down until restarted
        with pytest.raises(RpcError) as again:
            await rpc.call("make_order", **_order(uuid.uuid4().hex))
        assert again.value.reason == "gateway_unavailable"
    assert await _stored(cluster, sent) == 0
    assert await _rows(cluster) == taken  # nothing written since the takeover (the standby was sent nothing yet)
    assert "the bus was lost" in inner.log_path.read_text()
    outer.wait_ready(30)
    async with RpcClient(outer.ws) as rpc:
        assert (await rpc.call("make_order", **_order(before["client_order_id"])))["id"] == before["id"]  # the same order
        assert (await rpc.call("make_order", **_order(uuid.uuid4().hex)))["status"] == "done"
