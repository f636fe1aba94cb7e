"""Settings an admin changes at runtime, kept in the store: whether anyone may register, and as which role.

The configuration gives the defaults (`self_registration`, `registration_role`, i.e.
COINWIRE_SELF_REGISTRATION and COINWIRE_REGISTRATION_ROLE); a value an admin sets
(`PUT /api/v1/admin/settings`) is written to the `site_settings` table and wins from then on,
across restarts and in every process. Every read goes to the store, so no process serves a
choice another one has since changed (registration is rare; one primary-key read is cheap).

Self-registration is a door for strangers, so two rules hold whatever is stored: a
self-registered user is never an admin (`REGISTRATION_ROLES`), and never a trader while the
server serves a live exchange, whose orders spend real funds. A change that would open that
door is refused; a stored choice that a live exchange configured later makes unsafe reads as
closed (and `open_role` logs why).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from coinwire.auth.abilities import REGISTRATION_ROLES
from coinwire.core.errors import InvalidInput
from coinwire.store import Store
from coinwire.store.outage import store_unavailable, store_unreachable
from coinwire.store.tables import site_settings

__all__ = ["RegistrationSettings", "SiteSettings"]

log = structlog.get_logger("coinwire.auth")


class RegistrationSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Whether anyone who reaches the server may create an account, and the role that account gets."""

    self_registration: bool = False
    registration_role: str = "viewer"


FIELDS = RegistrationSettings.__struct_fields__


def _check(change: dict[str, Any]) -> None:
    role = change.get("registration_role")
    if role is not None and role not in REGISTRATION_ROLES:
        raise InvalidInput("invalid_role", f"registration_role must be one of {', '.join(REGISTRATION_ROLES)}, got {role!r}")


class SiteSettings:
    """Reads and writes the runtime settings over a started `Store`; each call is one short transaction."""

    def __init__(self, store: Store, defaults: RegistrationSettings, clock: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.defaults = defaults
        self.clock = clock

    async def get(self) -> RegistrationSettings:
        """The settings in force: the admin's where set, the configuration's elsewhere."""
        try:
            async with self.store.engine.connect() as conn:
                return await self._read(conn)
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise

    async def _read(self, conn: Any) -> RegistrationSettings:
        rows = await conn.execute(select(site_settings.c.key, site_settings.c.value).where(site_settings.c.key.in_(FIELDS)))
        values = msgspec.structs.asdict(self.defaults)
        try:
            for key, raw in rows:
                values[key] = msgspec.json.decode(raw)
            read: RegistrationSettings | None = msgspec.convert(values, RegistrationSettings)
        except (msgspec.DecodeError, msgspec.ValidationError):
            read = None
        if read is None or read.registration_role not in REGISTRATION_ROLES:  # a row edited by hand: not a door left open
            log.error("site settings in the store are not valid: the configuration's defaults are used")
            return self.defaults
        return read

    async def update(self, change: dict[str, Any], user_id: int) -> RegistrationSettings:
        """Set the fields in `change` (None: left as they are), checked first, in one transaction; the settings now in force."""
        change = {k: v for k, v in change.items() if v is not None}
        _check(change)
        now = int(self.clock())
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        try:
            async with self.store.engine.begin() as conn:
                for key, value in change.items():
                    statement = dialect.insert(site_settings).values(key=key, value=msgspec.json.encode(value).decode(),
                                                                     updated_at=now, updated_by=user_id)
                    await conn.execute(statement.on_conflict_do_update(
                        index_elements=["key"], set_={"value": statement.excluded.value, "updated_at": now, "updated_by": user_id}))
                return await self._read(conn)
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise

    async def open_role(self) -> str | None:
        """The role a self-registered user gets now; None while registration is closed."""
        values = await self.get()
        if not values.self_registration:
            return None
        return values.registration_role
