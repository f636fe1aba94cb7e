"""Leases with fencing tokens, as pure decisions: who may hold a named lease at an instant `now` (ms) given to it.

Why: a gateway shard must be written by exactly one process at a time, and another must take
over when the holder dies. The store keeps one record per lease and applies these decisions
inside a transaction, with the database's clock as `now`, so every process judges expiry by
the same clock. The token grows each time the lease is granted anew (a new holder, or the same
holder after it let the lease expire), so a commit carrying an older token can be refused: a
holder that was paused past its expiry cannot write after another took over (fencing).
"""

from __future__ import annotations

import msgspec

from coinwire.core.errors import InvalidInput

__all__ = ["Lease", "acquire", "expired", "fence_holds", "release", "renew"]

_MAX_NAME = 200
_MAX_HOLDER = 200


class Lease(msgspec.Struct, frozen=True):
    """A named lease: its `holder`, fencing `token` (> 0 once granted) and `expires_at` (ms, the store's clock)."""

    name: str
    holder: str
    token: int
    expires_at: int


def _check(name: str, holder: str, now: int, ttl_ms: int | None = None) -> None:
    if not name or len(name) > _MAX_NAME:
        raise InvalidInput("invalid_lease_name", f"a lease name has 1 to {_MAX_NAME} characters")
    if not holder or len(holder) > _MAX_HOLDER:
        raise InvalidInput("invalid_lease_holder", f"a lease holder has 1 to {_MAX_HOLDER} characters")
    if now < 0:
        raise InvalidInput("invalid_lease_time", "a lease's clock reading is not negative")
    if ttl_ms is not None and ttl_ms <= 0:
        raise InvalidInput("invalid_lease_duration", "a lease lasts a positive number of milliseconds")


def expired(lease: Lease, now: int) -> bool:
    """A lease is over at its `expires_at` instant: from then on another may take it."""
    return now >= lease.expires_at


def acquire(current: Lease | None, name: str, holder: str, now: int, ttl_ms: int) -> Lease | None:
    """The lease after `holder` asks for it at `now`; None while another holds it unexpired.

    The holder of an unexpired lease keeps its token and extends it; an expired or absent lease
    is granted with the next token (so a stale holder's token never matches again).
    """
    _check(name, holder, now, ttl_ms)
    if current is None:
        return Lease(name, holder, 1, now + ttl_ms)
    if not expired(current, now):
        if current.holder != holder:
            return None
        return Lease(name, holder, current.token, max(current.expires_at, now + ttl_ms))
    return Lease(name, holder, current.token + 1, now + ttl_ms)


def renew(current: Lease | None, holder: str, token: int, now: int, ttl_ms: int) -> Lease | None:
    """The lease extended to `now + ttl_ms` when `holder` still holds it with `token` unexpired; None otherwise.

    An expired lease is not renewed even if nobody took it: its holder must acquire it again
    (and gets a new token), because its earlier commits may already have been refused.
    """
    if current is None:
        return None
    _check(current.name, holder, now, ttl_ms)
    if not fence_holds(current, holder, token, now):
        return None
    return Lease(current.name, holder, token, max(current.expires_at, now + ttl_ms))


def release(current: Lease | None, holder: str, token: int, now: int) -> Lease | None:
    """The lease ended at `now` by its holder (another may take it at once); None when `holder` does not hold it."""
    if current is None:
        return None
    _check(current.name, holder, now)
    if not fence_holds(current, holder, token, now):
        return None
    return Lease(current.name, holder, token, now)


def fence_holds(current: Lease | None, holder: str, token: int, now: int) -> bool:
    """May a commit of `holder` carrying `token` be written at `now`: the lease is still its own, unexpired."""
    return current is not None and current.holder == holder and current.token == token and not expired(current, now)
