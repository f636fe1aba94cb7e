"""Leases in the store (SQLite and PostgreSQL): atomic acquire/renew/release by the database's clock, fencing of commits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from coinwire.core.wallets import WalletSet
from coinwire.store import ChangeSet, Store
from coinwire.store.fence import LeaseLost, check_fence
from coinwire.store.leases import (
    acquire_lease,
    heartbeat,
    leave,
    list_leases,
    list_members,
    release_lease,
    renew_lease,
)
from coinwire.store.tables import wallet_sets
from tests.conftest import POSTGRES_URL

LONG = 60_000


def _other(store: Store) -> Store:
    """A second process's store on the same database."""
    return Store(POSTGRES_URL, schema=store.schema) if store.dialect == "postgresql" else Store(store.url)


async def _count(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(wallet_sets))).scalar_one())


async def test_one_holder_at_a_time_and_the_token_grows_on_takeover(store: Any) -> None:
    granted, _ = await acquire_lease(store, "gateway:demo", "a", LONG)
    assert granted is not None and granted.token == 1 and granted.holder == "a"
    refused, current = await acquire_lease(store, "gateway:demo", "b", LONG)
    assert refused is None and current == granted
    again, _ = await acquire_lease(store, "gateway:demo", "a", LONG)  # the holder itself: same token, extended
    assert again is not None and again.token == 1 and again.expires_at >= granted.expires_at
    assert await release_lease(store, again)
    assert not await release_lease(store, again)  # already over
    taken, _ = await acquire_lease(store, "gateway:demo", "b", LONG)
    assert taken is not None and taken.holder == "b" and taken.token == 2
    assert await renew_lease(store, again, LONG) is None  # the old holder's token no longer renews
    renewed = await renew_lease(store, taken, LONG)
    assert renewed is not None and renewed.token == 2 and renewed.expires_at >= taken.expires_at
    [view] = await list_leases(store)
    assert (view.name, view.holder, view.token) == ("gateway:demo", "b", 2) and 0 < view.expires_in_ms <= LONG


async def test_expiry_is_judged_by_the_database_clock(store: Any) -> None:
    first, _ = await acquire_lease(store, "gateway:x", "a", 300)
    assert first is not None
    refused, _ = await acquire_lease(store, "gateway:x", "b", 300)
    assert refused is None
    await asyncio.sleep(0.4)
    assert await renew_lease(store, first, 300) is None  # expired: not renewed, even though nobody took it
    second, _ = await acquire_lease(store, "gateway:x", "b", 300)
    assert second is not None and second.token == 2
    assert [v.expires_in_ms > 0 for v in await list_leases(store)] == [True]


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_concurrent_first_acquires_grant_one(store: Any) -> None:
    others = [_other(store) for _ in range(4)]
    try:
        for other in others:
            await other.start()
        results = await asyncio.gather(*(acquire_lease(s, "gateway:race", f"h{i}", LONG) for i, s in enumerate([store, *others])))
    finally:
        for other in others:
            await other.close()
    granted = [g for g, _ in results if g is not None]
    assert len(granted) == 1 and granted[0].token == 1
    assert {c.holder for g, c in results if g is None} == {granted[0].holder}


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_stale_holders_commit_is_refused_by_the_store(store: Any) -> None:
    """Fencing: A's lease expires, B takes it; A's next change set is refused and nothing of it is written."""
    lease, _ = await acquire_lease(store, "gateway:f", "a", 300)
    assert lease is not None
    store.fence.hold(lease.name, "a", lease.token)
    await store.apply(ChangeSet(wallet_sets=[WalletSet(id=1, run_id=None, description="under the lease", created_at=1)]))
    await asyncio.sleep(0.4)
    other = _other(store)
    await other.start()
    try:
        taken, _ = await acquire_lease(other, "gateway:f", "b", LONG)
        assert taken is not None and taken.token == lease.token + 1
        with pytest.raises(LeaseLost) as caught:
            await store.apply(ChangeSet(wallet_sets=[WalletSet(id=2, run_id=None, description="late", created_at=2)]))
        assert caught.value.code == "lease_lost" and caught.value.http_status == 503
        assert store.fence.lost is not None
        with pytest.raises(LeaseLost):  # stepped down: refused at once from now on
            await store.apply(ChangeSet(wallet_sets=[WalletSet(id=3, run_id=None, description="later", created_at=3)]))
        assert await _count(other) == 1
        other.fence.hold(taken.name, "b", taken.token)  # the new holder writes
        await other.apply(ChangeSet(wallet_sets=[WalletSet(id=2, run_id=None, description="new holder", created_at=2)]))
        assert await _count(other) == 2
    finally:
        await other.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_commit_under_way_orders_before_a_takeover(store: Any) -> None:
    """The fence's rows are read FOR SHARE: a takeover's lock waits until the holder's transaction ends."""
    other = _other(store)
    await other.start()  # before the lease: a loaded machine's migration check must not outlast it
    lease, _ = await acquire_lease(store, "gateway:o", "a", 1500)
    assert lease is not None
    store.fence.hold(lease.name, "a", lease.token, 1500)
    try:
        async with store.engine.begin() as conn:  # a commit's transaction holding the check's lock
            await check_fence(conn, store.fence)
            takeover = asyncio.create_task(acquire_lease(other, "gateway:o", "b", LONG))
            await conn.execute(text("SELECT pg_sleep(1.8)"))  # working (not idle) past the expiry: the takeover waits
            assert not takeover.done()
        taken, _ = await takeover
        assert taken is not None and taken.holder == "b"
    finally:
        await other.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_holder_stalled_mid_commit_holds_a_takeover_back_no_longer_than_its_lease(store: Any) -> None:
    """A paused holder's open transaction is ended by PostgreSQL after a lease's time idle; its commit never lands."""
    other = _other(store)
    await other.start()  # before the lease: a loaded machine's migration check must not outlast it
    lease, _ = await acquire_lease(store, "gateway:s", "a", 1500)
    assert lease is not None
    store.fence.hold(lease.name, "a", lease.token, 1500)
    try:
        with pytest.raises(DBAPIError):
            async with store.engine.begin() as conn:
                await check_fence(conn, store.fence)
                started = time.monotonic()
                taken, _ = await acquire_lease(other, "gateway:s", "b", LONG)  # this transaction sits idle meanwhile
                waited = time.monotonic() - started
                assert taken is not None and taken.holder == "b" and waited < 5
                await conn.execute(wallet_sets.insert().values(id=9, description="stalled", created_at=1))
        assert await _count(other) == 0
    finally:
        await other.close()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
async def test_a_stale_holder_cannot_store_its_checkpoint(store: Any) -> None:
    """Its client_oid filter lacks the new holder's keys: a checkpoint from it would let a later start miss duplicates."""
    lease, _ = await acquire_lease(store, "gateway:c", "a", 300)
    assert lease is not None
    store.fence.hold(lease.name, "a", lease.token, 300)
    await store.apply(ChangeSet(wallet_sets=[WalletSet(id=1, run_id=None, description="x", created_at=1)]))
    await asyncio.sleep(0.4)
    taken, _ = await acquire_lease(store, "gateway:c", "b", LONG)
    assert taken is not None
    with pytest.raises(LeaseLost):
        await store.checkpoint_ledger(lambda: b"stale filter", 1)
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM checkpoints WHERE name = 'client_oids'"))).scalar_one() == 0


async def test_members_heartbeat_and_leave(store: Any) -> None:
    await heartbeat(store, "host:1:gateway", "gateway")
    await heartbeat(store, "host:2:api", "api")
    await asyncio.sleep(0.05)
    await heartbeat(store, "host:1:gateway", "gateway")
    members = await list_members(store)
    assert [m.holder for m in members] == ["host:1:gateway", "host:2:api"]
    assert members[0].last_seen > members[0].started_at and all(m.age_ms >= 0 for m in members)
    await leave(store, "host:2:api")
    assert [m.holder for m in await list_members(store)] == ["host:1:gateway"]
    await asyncio.sleep(0.3)
    await heartbeat(store, "host:3:api", "api", forget_after_ms=200)  # the first, unseen for 0.3 s, is forgotten
    assert [m.holder for m in await list_members(store)] == ["host:3:api"]
