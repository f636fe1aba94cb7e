"""Reads and writes users, sessions, API keys and resource owners in the store (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import String, and_, cast, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from coinwire.core.errors import Conflict
from coinwire.store import Store
from coinwire.store.outage import store_unavailable, store_unreachable
from coinwire.store.tables import api_keys, orders, owners, preferences, sessions, users, wallet_sets

__all__ = ["AuthRepository"]


class AuthRepository:
    """Access rows over a started `Store`; every method is one short transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _rows(self, statement: Any) -> list[dict[str, Any]]:
        try:
            async with self.store.engine.connect() as conn:
                return [dict(r._mapping) for r in await conn.execute(statement)]
        except Exception as exc:
            if store_unreachable(exc):  # every request's session check: an outage answers 503, not a 500
                raise store_unavailable() from exc
            raise

    async def _write(self, statement: Any) -> int:
        try:
            async with self.store.engine.begin() as conn:
                return int((await conn.execute(statement)).rowcount or 0)
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise

    # --- users -------------------------------------------------------------------------------
    async def count_users(self) -> int:
        return len(await self._rows(select(users.c.id).limit(1)))

    async def add_user(self, username: str, password_hash: str, role: str, plan: str, now: int,
                       prefs: Mapping[str, Any] | None = None) -> int:
        """A new user's id; `prefs`, their preferences row but its user_id, is written in the same transaction."""
        try:
            async with self.store.engine.begin() as conn:
                try:
                    result = await conn.execute(
                        insert(users).values(username=username, password_hash=password_hash, role=role, plan=plan,
                                             disabled=False, created_at=now)
                    )
                except IntegrityError:
                    raise Conflict("user_exists", f"a user named {username!r} already exists") from None
                user_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                if prefs is not None:
                    await conn.execute(insert(preferences).values(user_id=user_id, **prefs))
                return user_id
        except Exception as exc:
            if store_unreachable(exc):
                raise store_unavailable() from exc
            raise

    async def user_by_name(self, username: str) -> dict[str, Any] | None:
        rows = await self._rows(select(users).where(users.c.username == username))
        return rows[0] if rows else None

    async def user_by_id(self, user_id: int) -> dict[str, Any] | None:
        rows = await self._rows(select(users).where(users.c.id == user_id))
        return rows[0] if rows else None

    async def list_users(self) -> list[dict[str, Any]]:
        return await self._rows(select(users).order_by(users.c.id))

    async def update_user(self, user_id: int, **values: Any) -> bool:
        return await self._write(update(users).where(users.c.id == user_id).values(**values)) > 0

    # --- sessions ----------------------------------------------------------------------------
    async def add_session(self, session_id: str, user_id: int, refresh_hash: str, now: int, client: str) -> None:
        await self._write(insert(sessions).values(id=session_id, user_id=user_id, refresh_hash=refresh_hash, created_at=now,
                                                  last_used_at=now, client=client))

    async def session(self, session_id: str) -> dict[str, Any] | None:
        rows = await self._rows(select(sessions).where(sessions.c.id == session_id))
        return rows[0] if rows else None

    async def session_and_user(self, session_id: str) -> dict[str, Any] | None:
        """The session joined with its user's current role, plan and state (one query per request)."""
        statement = (
            select(sessions.c.revoked_at, users.c.id, users.c.username, users.c.role, users.c.plan, users.c.disabled)
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id == session_id)
        )
        rows = await self._rows(statement)
        return rows[0] if rows else None

    async def rotate_refresh(self, session_id: str, old_hash: str, new_hash: str, now: int) -> bool:
        """Swap the refresh hash only if it is still `old_hash` (two racing refreshes: one wins)."""
        statement = (
            update(sessions)
            .where(and_(sessions.c.id == session_id, sessions.c.refresh_hash == old_hash, sessions.c.revoked_at.is_(None)))
            .values(refresh_hash=new_hash, last_used_at=now)
        )
        return await self._write(statement) == 1

    async def revoke_sessions(self, now: int, reason: str, *, session_id: str | None = None, user_id: int | None = None) -> int:
        condition = sessions.c.id == session_id if session_id is not None else sessions.c.user_id == user_id
        statement = update(sessions).where(and_(condition, sessions.c.revoked_at.is_(None))).values(
            revoked_at=now, revoked_reason=reason
        )
        return await self._write(statement)

    async def user_sessions(self, user_id: int) -> list[dict[str, Any]]:
        statement = (
            select(sessions.c.id, sessions.c.created_at, sessions.c.last_used_at, sessions.c.client)
            .where(and_(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)))
            .order_by(sessions.c.created_at.desc())
        )
        return await self._rows(statement)

    # --- API keys ----------------------------------------------------------------------------
    async def add_api_key(self, key_id: str, user_id: int, name: str, scopes: str, key_hash: str, now: int) -> None:
        await self._write(insert(api_keys).values(id=key_id, user_id=user_id, name=name, scopes=scopes, key_hash=key_hash,
                                                  created_at=now))

    async def api_key_and_user(self, key_id: str) -> dict[str, Any] | None:
        statement = (
            select(api_keys.c.key_hash, api_keys.c.scopes, api_keys.c.revoked_at, users.c.id, users.c.username, users.c.role,
                   users.c.plan, users.c.disabled)
            .join(users, users.c.id == api_keys.c.user_id)
            .where(api_keys.c.id == key_id)
        )
        rows = await self._rows(statement)
        return rows[0] if rows else None

    async def user_api_keys(self, user_id: int) -> list[dict[str, Any]]:
        statement = (
            select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes, api_keys.c.created_at)
            .where(and_(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None)))
            .order_by(api_keys.c.created_at)
        )
        return await self._rows(statement)

    async def revoke_api_key(self, key_id: str, user_id: int, now: int) -> bool:
        statement = update(api_keys).where(
            and_(api_keys.c.id == key_id, api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
        ).values(revoked_at=now)
        return await self._write(statement) == 1

    # --- owners ------------------------------------------------------------------------------
    def owner_upsert(self) -> Any:
        """The statement that writes owner rows (executemany), a later owner of the same id winning."""
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        statement = dialect.insert(owners)
        return statement.on_conflict_do_update(index_elements=["kind", "resource_id"], set_={"user_id": statement.excluded.user_id})

    async def all_owners(self) -> list[dict[str, Any]]:
        """Every owner row, and the run_id labels orders and wallet sets carry (an order's own owner is its row's).

        The owners table's rows come first. After them, the run_id labels orders and wallet sets
        carry, each with its order's or set's owner (0, admins, for orders placed without a user): a label's first
        user owns it even when its owner row was not written before a crash.
        """
        await self.store.settled()  # owner and order rows may still be on their way from the store's journal
        rows = await self._rows(select(owners))
        labels = select(orders.c.run_id, func.min(func.coalesce(orders.c.owner_id, 0)).label("owner_id"))
        for r in await self._rows(labels.where(orders.c.run_id.is_not(None)).group_by(orders.c.run_id)):
            rows.append({"kind": "run", "resource_id": r["run_id"], "user_id": r["owner_id"]})
        # and the run_id labels wallet sets carry, each with its set's owner (committed with the set)
        set_owner = and_(owners.c.kind == "wallet_set", owners.c.resource_id == cast(wallet_sets.c.id, String))
        set_labels = select(wallet_sets.c.run_id, func.min(owners.c.user_id).label("owner_id")).join(owners, set_owner)
        for r in await self._rows(set_labels.where(wallet_sets.c.run_id.is_not(None)).group_by(wallet_sets.c.run_id)):
            rows.append({"kind": "run", "resource_id": r["run_id"], "user_id": r["owner_id"]})
        return rows
