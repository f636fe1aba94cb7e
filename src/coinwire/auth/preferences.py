"""Each user's display preferences, kept in the store: time zone, display currency, decimals, masking.

They live on the server, not in one browser, so every device of a user shows the same thing and
later services (daily stats, receipts) can format for the user. A user who never set them has
`DEFAULTS`. A change is checked whole (every field, against the time zones this system knows and
the currencies the FX source knows) before anything is written, then written in one upsert of
its fields only, in one transaction: never half a change, and two changes at once both land.
"""

from __future__ import annotations

import functools
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from coinwire.core.errors import InvalidInput
from coinwire.store import Store
from coinwire.store.outage import store_unavailable, store_unreachable
from coinwire.store.tables import preferences

__all__ = ["DEFAULTS", "MAX_DECIMALS", "FIELDS", "PreferencesRepository", "checked", "new_row"]

MAX_DECIMALS = 12  # decimals shown for an amount: 0 to 12 (sizes have at most 8 on most venues; 12 leaves room)
DEFAULTS: dict[str, Any] = {"time_zone": "UTC", "currency": "USD", "crypto_decimals": 6, "stable_decimals": 2, "mask": False}
FIELDS = tuple(DEFAULTS)


@functools.cache
def _time_zones() -> frozenset[str]:
    """IANA names this system's tz database has (read once: it does not change while we run)."""
    return frozenset(zoneinfo.available_timezones())


def checked(change: dict[str, Any], currencies: set[str]) -> dict[str, Any]:
    """The fields `change` sets (None: left out), each valid; InvalidInput with a stable code otherwise."""
    out = {k: v for k, v in change.items() if v is not None}
    if "time_zone" in out and out["time_zone"] not in _time_zones():
        raise InvalidInput("invalid_time_zone", f"time_zone must be an IANA time zone name like Europe/Paris, got {out['time_zone']!r}")
    if "currency" in out:
        out["currency"] = out["currency"].upper()
        if out["currency"] not in currencies:
            raise InvalidInput("unknown_currency", f"currency must be one the FX source knows ({', '.join(sorted(currencies))}), "
                               f"got {out['currency']!r}")
    for field in ("crypto_decimals", "stable_decimals"):
        if field in out and not 0 <= out[field] <= MAX_DECIMALS:
            raise InvalidInput("invalid_decimals", f"{field} must be 0 to {MAX_DECIMALS}, got {out[field]}")
    return out


def new_row(change: dict[str, Any], now: int) -> dict[str, Any]:
    """A user's first preferences row (but its `user_id`): `change` (checked) over the defaults, at `now` (ns)."""
    return DEFAULTS | change | {"updated_at": now}


class PreferencesRepository:
    """Reads and writes preference rows over a started `Store`; each call is one short transaction."""

    def __init__(self, store: Store, clock: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.clock = clock

    async def get(self, user_id: int) -> dict[str, Any]:
        """The user's preferences, `DEFAULTS` where never set."""
        try:
            async with self.store.engine.connect() as conn:
                return await self._read(conn, user_id)
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise

    @staticmethod
    async def _read(conn: Any, user_id: int) -> dict[str, Any]:
        row = (await conn.execute(select(preferences).where(preferences.c.user_id == user_id))).first()
        if row is None:
            return dict(DEFAULTS)
        values = row._mapping
        return {field: values[field] for field in FIELDS}

    async def update(self, user_id: int, change: dict[str, Any]) -> dict[str, Any]:
        """Set the fields in `change` (checked), the others kept, in one transaction; the preferences now in force.

        One upsert that writes only the changed columns: two changes at once (the dashboard's
        decimals and masking) both land, where a read then a write of the whole row would lose one.
        """
        now = int(self.clock())
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        statement = dialect.insert(preferences).values(user_id=user_id, **new_row(change, now))
        statement = statement.on_conflict_do_update(index_elements=["user_id"], set_=change | {"updated_at": now})
        try:
            async with self.store.engine.begin() as conn:
                await conn.execute(statement)
                return await self._read(conn, user_id)
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise
