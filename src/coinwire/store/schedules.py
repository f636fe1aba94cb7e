"""Schedules and their claimed ticks in the store: the rows the scheduler reads, claims and advances.

A tick is claimed by inserting its `schedule_ticks` row; the primary key (schedule_id, tick_at)
refuses a second insert, so a tick runs at most once whatever happens around it: a restart, a
SIGKILL between claim and finish, several processes running the scheduler on one database.
`advance` moves a schedule's `next_at` only from the value its caller read (compare and set), so
two schedulers never move it back. Every call is one short transaction with write statements
only (no read first), so SQLite's writers wait for the lock instead of failing to upgrade it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from coinwire.core.errors import Conflict
from coinwire.store.store import Store
from coinwire.store.tables import schedule_ticks, schedules

__all__ = ["SYSTEM_OWNER", "ScheduleRow", "ScheduleStore", "TickRow"]

SYSTEM_OWNER = 0  # the server's own schedules (the `rates` recorder): no user owns them, admins see them


class ScheduleRow(msgspec.Struct, kw_only=True):
    """One stored schedule; `job_params` is the job's checked parameters (without `kind`)."""

    id: int = 0
    owner_id: int
    name: str
    cron: str | None = None
    every: str | None = None
    timezone: str
    job_kind: str
    job_params: dict[str, Any]
    misfire_policy: str = "skip"
    misfire_limit: int = 1
    paused: bool = False
    created_at: int
    next_at: int


class TickRow(msgspec.Struct, kw_only=True):
    """A claimed tick: finished_at None while it runs (or if its process died running it)."""

    schedule_id: int
    tick_at: int
    claimed_at: int
    claimed_by: str
    finished_at: int | None
    outcome: str | None
    error: str | None


def _row(mapping: Any) -> ScheduleRow:
    values = {str(k): v for k, v in mapping.items()}
    values["job_params"] = msgspec.json.decode(values["job_params"])
    values["paused"] = bool(values["paused"])
    return msgspec.convert(values, ScheduleRow)


def _tick(mapping: Any) -> TickRow:
    return msgspec.convert({str(k): v for k, v in mapping.items()}, TickRow)


class ScheduleStore:
    """Reads and writes schedules over a started `Store` (SQLite or PostgreSQL: one code path)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, row: ScheduleRow) -> ScheduleRow:
        """Store a new schedule; `schedule_name_taken` when its owner already has one by that name."""
        values = msgspec.structs.asdict(row)
        values.pop("id")
        values["job_params"] = msgspec.json.encode(row.job_params).decode()
        try:
            async with self.store.engine.begin() as conn:
                result = await conn.execute(insert(schedules).values(**values).returning(schedules.c.id))
                new_id = int(result.scalar_one())
        except (IntegrityError, sqlite3.IntegrityError):
            raise Conflict("schedule_name_taken", f"you already have a schedule named {row.name!r}", field="name") from None
        return msgspec.structs.replace(row, id=new_id)

    async def get(self, schedule_id: int) -> ScheduleRow | None:
        async with self.store.engine.connect() as conn:
            found = (await conn.execute(select(schedules).where(schedules.c.id == schedule_id))).mappings().first()
        return _row(found) if found is not None else None

    async def find(self, owner_id: int, name: str) -> ScheduleRow | None:
        query = select(schedules).where(and_(schedules.c.owner_id == owner_id, schedules.c.name == name))
        async with self.store.engine.connect() as conn:
            found = (await conn.execute(query)).mappings().first()
        return _row(found) if found is not None else None

    async def listed(self, owner_id: int | None = None) -> list[ScheduleRow]:
        """Oldest first: one owner's (None: everyone's)."""
        query = select(schedules).order_by(schedules.c.id)
        if owner_id is not None:
            query = query.where(schedules.c.owner_id == owner_id)
        async with self.store.engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(query)).mappings()]

    async def remove(self, schedule_id: int) -> bool:
        """Delete a schedule and its ticks in one transaction; False when there was none."""
        async with self.store.engine.begin() as conn:
            await conn.execute(delete(schedule_ticks).where(schedule_ticks.c.schedule_id == schedule_id))
            result = await conn.execute(delete(schedules).where(schedules.c.id == schedule_id))
        return bool(result.rowcount)

    async def set_paused(self, schedule_id: int, paused: bool, next_at: int | None = None) -> bool:
        """Pause, or resume with a fresh `next_at` (the missed ticks of a pause are not due); False when there is none."""
        values: dict[str, Any] = {"paused": paused}
        if next_at is not None:
            values["next_at"] = next_at
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(schedules).where(schedules.c.id == schedule_id).values(**values))
        return bool(result.rowcount)

    async def due(self, now: int, limit: int = 500) -> list[ScheduleRow]:
        """Schedules not paused whose next tick is at or before `now`, earliest first."""
        query = (select(schedules).where(and_(schedules.c.paused.is_(False), schedules.c.next_at <= now))
                 .order_by(schedules.c.next_at, schedules.c.id).limit(limit))
        async with self.store.engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(query)).mappings()]

    async def next_due_at(self) -> int | None:
        """The earliest `next_at` of the schedules not paused (None: nothing to wait for)."""
        async with self.store.engine.connect() as conn:
            value = (await conn.execute(select(func.min(schedules.c.next_at)).where(schedules.c.paused.is_(False)))).scalar()
        return None if value is None else int(value)

    async def claim(self, schedule_id: int, tick_at: int, now: int, by: str) -> bool:
        """Claim a tick (insert its row); False when it was claimed before, by anyone, or its schedule is gone."""
        try:
            async with self.store.engine.begin() as conn:
                await conn.execute(insert(schedule_ticks).values(schedule_id=schedule_id, tick_at=tick_at, claimed_at=now,
                                                                 claimed_by=by[:64]))
        except (IntegrityError, sqlite3.IntegrityError):
            return False
        return True

    async def finish(self, schedule_id: int, tick_at: int, now: int, outcome: str, error: str | None = None) -> None:
        """Record how a claimed tick ended: `ok` or `error` (with the error's text)."""
        async with self.store.engine.begin() as conn:
            await conn.execute(update(schedule_ticks).where(and_(schedule_ticks.c.schedule_id == schedule_id,
                                                                 schedule_ticks.c.tick_at == tick_at))
                               .values(finished_at=now, outcome=outcome, error=None if error is None else error[:2000]))

    async def advance(self, schedule_id: int, expected: int, next_at: int) -> bool:
        """Move `next_at` from `expected` to `next_at`; False when another scheduler moved it first."""
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(schedules).where(and_(schedules.c.id == schedule_id, schedules.c.next_at == expected))
                                        .values(next_at=next_at))
        return bool(result.rowcount)

    async def ticks(self, schedule_id: int, limit: int = 100) -> list[TickRow]:
        """A schedule's claimed ticks, newest first."""
        query = (select(schedule_ticks).where(schedule_ticks.c.schedule_id == schedule_id)
                 .order_by(schedule_ticks.c.tick_at.desc()).limit(limit))
        async with self.store.engine.connect() as conn:
            return [_tick(r) for r in (await conn.execute(query)).mappings()]

    async def last_ticks(self, schedule_ids: Sequence[int]) -> dict[int, TickRow]:
        """Each schedule's latest claimed tick (schedules without one are absent)."""
        if not schedule_ids:
            return {}
        latest = (select(schedule_ticks.c.schedule_id, func.max(schedule_ticks.c.tick_at).label("tick_at"))
                  .where(schedule_ticks.c.schedule_id.in_(list(schedule_ids))).group_by(schedule_ticks.c.schedule_id).subquery())
        query = select(schedule_ticks).join(latest, and_(schedule_ticks.c.schedule_id == latest.c.schedule_id,
                                                         schedule_ticks.c.tick_at == latest.c.tick_at))
        async with self.store.engine.connect() as conn:
            rows = [_tick(r) for r in (await conn.execute(query)).mappings()]
        return {r.schedule_id: r for r in rows}

    async def prune_ticks(self, before: int) -> int:
        """Delete the finished ticks older than `before` (ms) and return how many; a schedule's latest tick is kept."""
        other = schedule_ticks.alias("newer")
        newest = select(func.max(other.c.tick_at)).where(other.c.schedule_id == schedule_ticks.c.schedule_id).scalar_subquery()
        statement = delete(schedule_ticks).where(and_(schedule_ticks.c.tick_at < before, schedule_ticks.c.finished_at.is_not(None),
                                                      schedule_ticks.c.tick_at < newest))
        async with self.store.engine.begin() as conn:
            result = await conn.execute(statement)
        return int(result.rowcount or 0)
