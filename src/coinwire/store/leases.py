"""Leases and cluster members in the store: acquire, renew and release atomically, by the database's clock.

Every decision is core.leases's, taken inside one transaction that locks the lease's row
(PostgreSQL `SELECT ... FOR UPDATE`; SQLite's writer begins IMMEDIATE, one writer at a time), with
`now` read from the database's clock (PostgreSQL `clock_timestamp()`, SQLite `julianday('now')`) in
that transaction: processes on different machines judge expiry by one clock, whatever their own
clocks say. A row is made on first use with token 0 (never granted), so two first acquirers lock
the same row instead of racing on an insert.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from coinwire.core import leases as decide
from coinwire.core.leases import Lease
from coinwire.store.fence import db_now
from coinwire.store.store import Store
from coinwire.store.tables import cluster_members, leases

__all__ = ["LeaseView", "Member", "acquire_lease", "as_rows", "heartbeat", "leave", "list_leases",
           "list_members", "release_lease", "renew_lease"]


class LeaseView(msgspec.Struct, frozen=True):
    """A lease as `coinwire cluster status` shows it: `expires_in_ms` < 0 once expired (another may take it)."""

    name: str
    holder: str
    token: int
    expires_at: int
    expires_in_ms: int


class Member(msgspec.Struct, frozen=True):
    """A process that says it runs: its holder id (host:pid:roles), roles, start and last heartbeat (ms), seen `age_ms` ago."""

    holder: str
    roles: str
    started_at: int
    last_seen: int
    age_ms: int


async def _locked(conn: AsyncConnection, name: str) -> Lease | None:
    """The lease's row, locked for this transaction; made (never granted: token 0) if absent."""
    row = {"name": name, "holder": "", "token": 0, "expires_at": 0}
    upsert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(leases).values(row)
    await conn.execute(upsert.on_conflict_do_nothing(index_elements=["name"]))
    c = leases.c
    found = (await conn.execute(select(c.holder, c.token, c.expires_at).where(c.name == name).with_for_update())).one()
    if int(found.token) == 0:
        return None
    return Lease(name, str(found.holder), int(found.token), int(found.expires_at))


async def _write(conn: AsyncConnection, lease: Lease) -> None:
    await conn.execute(update(leases).where(leases.c.name == lease.name)
                       .values(holder=lease.holder, token=lease.token, expires_at=lease.expires_at))


async def acquire_lease(store: Store, name: str, holder: str, ttl_ms: int) -> tuple[Lease | None, Lease | None]:
    """Try once: (the lease granted to `holder`, None) or (None, the lease another holds unexpired)."""
    async with store.writer.begin() as conn:
        current = await _locked(conn, name)
        now = await db_now(conn)  # read once the row is ours: a wait for the lock counts
        granted = decide.acquire(current, name, holder, now, ttl_ms)
        if granted is not None:
            await _write(conn, granted)
        return granted, (current if granted is None else None)


async def renew_lease(store: Store, lease: Lease, ttl_ms: int) -> Lease | None:
    """Extend the lease `lease.holder` holds with `lease.token`; None when it no longer does (expired or taken)."""
    async with store.writer.begin() as conn:
        current = await _locked(conn, lease.name)
        renewed = decide.renew(current, lease.holder, lease.token, await db_now(conn), ttl_ms)
        if renewed is not None:
            await _write(conn, renewed)
        return renewed


async def release_lease(store: Store, lease: Lease) -> bool:
    """End the lease now (a clean stop: the next holder need not wait for the expiry); False when it was not held."""
    async with store.writer.begin() as conn:
        current = await _locked(conn, lease.name)
        ended = decide.release(current, lease.holder, lease.token, await db_now(conn))
        if ended is not None:
            await _write(conn, ended)
        return ended is not None


async def list_leases(store: Store) -> list[LeaseView]:
    """Every lease ever granted, by name, with how long until it expires by the database's clock."""
    async with store.engine.connect() as conn:
        now = await db_now(conn)
        c = leases.c
        rows = (await conn.execute(select(c.name, c.holder, c.token, c.expires_at).where(c.token > 0).order_by(c.name))).all()
    return [LeaseView(str(r.name), str(r.holder), int(r.token), int(r.expires_at), int(r.expires_at) - now) for r in rows]


async def heartbeat(store: Store, holder: str, roles: str, forget_after_ms: int | None = None) -> None:
    """Say this process runs (its `last_seen` is the database's now; the first beat is its `started_at`).

    `forget_after_ms`: members not seen for that long are removed in the same transaction (a process
    killed without a clean stop would otherwise stay listed, older and older, for ever).
    """
    async with store.writer.begin() as conn:
        now = await db_now(conn)
        c = cluster_members.c
        if forget_after_ms is not None:
            await conn.execute(delete(cluster_members).where(c.last_seen < now - forget_after_ms))
        done = await conn.execute(update(cluster_members).where(c.holder == holder).values(last_seen=now, roles=roles))
        if not getattr(done, "rowcount", 0):
            await conn.execute(insert(cluster_members).values(holder=holder, roles=roles, started_at=now, last_seen=now))


async def leave(store: Store, holder: str) -> None:
    """A clean stop: this process is no longer a member."""
    async with store.writer.begin() as conn:
        await conn.execute(delete(cluster_members).where(cluster_members.c.holder == holder))


async def list_members(store: Store) -> list[Member]:
    """The processes that said they run, most recently seen first, with how long ago (a dead one's age keeps growing)."""
    async with store.engine.connect() as conn:
        now = await db_now(conn)
        c = cluster_members.c
        rows = (await conn.execute(select(c.holder, c.roles, c.started_at, c.last_seen).order_by(c.last_seen.desc()))).all()
    return [Member(str(r.holder), str(r.roles), int(r.started_at), int(r.last_seen), now - int(r.last_seen)) for r in rows]


def as_rows(items: list[Any]) -> list[dict[str, Any]]:
    """Plain dicts (for `--json`)."""
    return [msgspec.to_builtins(item) for item in items]
