"""The fence of one process's change sets: the leases it writes under, checked inside each commit's transaction.

Why in the store: a holder paused past its lease's expiry (a long GC, SIGSTOP, a partition) cannot
know it lost the lease before its next write; only the database, which granted the lease, can
refuse that write. The store checks the lease rows in the same transaction as the change set
(PostgreSQL, `FOR SHARE`: a takeover waits for the commit under way) and refuses it once a token no
longer holds. After one refusal the fence stays lost: the process has stepped down, until it takes
its shard back with new leases and a memory reloaded from the store (services.gateway_leases).
"""

from __future__ import annotations

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from coinwire.core.errors import NotReady
from coinwire.core.leases import Lease, fence_holds
from coinwire.store.tables import leases

__all__ = ["Fence", "LeaseLost", "check_fence", "db_now"]

_PG_NOW = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_NOW = {
    "postgresql": f"SELECT {_PG_NOW}",
    "sqlite": "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
}


class LeaseLost(NotReady):
    """A change set written under a lease this process no longer holds: refused (code `lease_lost`), retry elsewhere."""

    def __init__(self, message: str, **data: object) -> None:
        super().__init__("lease_lost", message, **data)


class Fence:
    """The leases (name -> holder, token) a process's change sets carry; `lost` says why it stepped down, if it did."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, int]] = {}
        self.lost: str | None = None
        self.stall_ms: int | None = None  # the shortest lease held: how long a fenced transaction may sit idle

    def hold(self, name: str, holder: str, token: int, stall_ms: int | None = None) -> None:
        """From now on every change set carries this lease's token (set when granted, before the state is read).

        `stall_ms` (the lease's duration): a fenced transaction left idle longer than that (its
        process paused or cut off mid-commit) is ended by PostgreSQL, so its row locks do not hold
        a takeover back for longer than a lease.
        """
        self.tokens[name] = (holder, token)
        if stall_ms is not None:
            self.stall_ms = stall_ms if self.stall_ms is None else min(self.stall_ms, stall_ms)

    def release(self, name: str) -> None:
        """The lease was given back at a clean stop: nothing more is written under it."""
        self.tokens.pop(name, None)

    def lose(self, reason: str) -> None:
        """Step down: every later change set is refused without asking the database."""
        if self.lost is None:
            self.lost = reason

    def regain(self) -> None:
        """The shard was taken back (new leases held, memory reloaded from the store): change sets are written again."""
        self.lost = None

    @property
    def active(self) -> bool:
        """Whether change sets are fenced at all (a process under a lease, or one that lost it)."""
        return bool(self.tokens) or self.lost is not None


async def db_now(conn: AsyncConnection) -> int:
    """The database's clock in unix milliseconds (the one clock every holder's expiry is judged by)."""
    return int((await conn.execute(text(_NOW[conn.dialect.name]))).scalar_one())


async def check_fence(conn: AsyncConnection, fence: Fence) -> None:
    """Inside a commit's transaction: raise LeaseLost (and mark the fence lost) unless every lease held still holds.

    PostgreSQL: the rows are read `FOR SHARE`, so a takeover (which locks them FOR UPDATE) waits
    until this transaction ends: the commit is ordered before it, or refused. That lock and the
    token are what fencing rests on: a takeover before it shows as another token. (The clock is read
    in the same statement, perhaps before a wait for the lock; an expiry it misses that way has no
    takeover behind it yet, and any comes after this commit.) The transaction may
    then sit idle for at most `fence.stall_ms` before PostgreSQL ends it (rolled back, never acknowledged).
    """
    if fence.lost is not None:
        raise LeaseLost(f"this gateway stepped down ({fence.lost}); another process owns its shard")
    if not fence.tokens:
        return
    c = leases.c
    query = select(c.name, c.holder, c.token, c.expires_at).where(c.name.in_(sorted(fence.tokens)))
    postgres = conn.dialect.name == "postgresql"
    if postgres:  # one round trip: the clock and the idle limit ride along with the locked rows
        query = query.add_columns(literal_column(_PG_NOW).label("now_ms"),
                                  func.set_config("idle_in_transaction_session_timeout", str(fence.stall_ms or 0), True))
        query = query.with_for_update(read=True)
    found = (await conn.execute(query)).all()
    rows = {str(r.name): Lease(str(r.name), str(r.holder), int(r.token), int(r.expires_at)) for r in found}
    now = int(found[0].now_ms) if postgres and found else await db_now(conn)
    for name, (holder, token) in fence.tokens.items():
        if not fence_holds(rows.get(name), holder, token, now):
            fence.lose(f"lease {name} expired or was taken")
            raise LeaseLost(f"lease {name} is no longer held by this process (token {token}): the change set is refused",
                            lease=name)
