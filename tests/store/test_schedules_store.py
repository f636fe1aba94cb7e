"""store.schedules on SQLite and PostgreSQL: schedules per owner, a tick claimed once (across two stores on one
database), next_at moved by compare-and-set, pruning keeps each schedule's latest tick."""

from __future__ import annotations

import asyncio

import pytest

from coinwire.core.errors import Conflict
from coinwire.store.schedules import ScheduleRow, ScheduleStore
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture


def row(owner: int, name: str, next_at: int = 60_000, **fields: object) -> ScheduleRow:
    return ScheduleRow(owner_id=owner, name=name, every="1m", timezone="Europe/London", job_kind="housekeeping",
                       job_params={"note": "ünï"}, created_at=1, next_at=next_at, **fields)  # type: ignore[arg-type]


async def test_schedules_round_trip_per_owner_and_names_are_unique_per_owner(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        repo = ScheduleStore(store)
        a = await repo.add(row(1, "daily"))
        b = await repo.add(row(2, "daily", misfire_policy="catch_up", misfire_limit=5))  # another owner: the same name is fine
        assert a.id != b.id
        with pytest.raises(Conflict) as taken:
            await repo.add(row(1, "daily"))
        assert taken.value.code == "schedule_name_taken"
        assert await repo.get(a.id) == a
        assert await repo.find(2, "daily") == b
        assert [r.id for r in await repo.listed(1)] == [a.id]
        assert [r.id for r in await repo.listed()] == [a.id, b.id]
        assert await repo.set_paused(a.id, True)
        assert [r.id for r in await repo.due(10**9)] == [b.id]
        assert await repo.next_due_at() == 60_000
        assert await repo.set_paused(a.id, False, next_at=120_000)
        resumed = await repo.get(a.id)
        assert resumed is not None and (resumed.paused, resumed.next_at) == (False, 120_000)
        assert not await repo.set_paused(999, True)


async def test_a_tick_is_claimed_once_even_by_two_stores_at_once(database: Database) -> None:  # noqa: F811
    other = Database(database.url, database.schema)  # a journal has one server: the second process writes directly
    async with database.store() as first, other.store() as second:
        repos = [ScheduleStore(first), ScheduleStore(second)]
        schedule = await repos[0].add(row(1, "every minute"))
        claims = await asyncio.gather(*(repos[i % 2].claim(schedule.id, 60_000 * (i // 2 + 1), 5, f"p{i % 2}") for i in range(20)))
        assert sum(claims) == 10  # ten ticks, each claimed by exactly one of the two
        assert not await repos[1].claim(schedule.id, 60_000, 6, "late")
        assert not await repos[0].claim(987_654, 60_000, 6, "no such schedule")
        assert await repos[0].advance(schedule.id, 60_000, 120_000)
        assert not await repos[1].advance(schedule.id, 60_000, 180_000)  # moved already: not moved back
        await repos[0].finish(schedule.id, 600_000, 7, "error", "boom")
        last = (await repos[1].last_ticks([schedule.id]))[schedule.id]
        assert (last.tick_at, last.outcome, last.error, last.finished_at) == (600_000, "error", "boom", 7)


async def test_prune_keeps_unfinished_and_the_latest_tick_and_remove_takes_the_ticks(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        repo = ScheduleStore(store)
        s = await repo.add(row(1, "a"))
        for tick in (1, 2, 3, 4):
            assert await repo.claim(s.id, tick, tick, "p")
            if tick != 2:
                await repo.finish(s.id, tick, tick, "ok")
        assert await repo.prune_ticks(before=100) == 2  # 1 and 3: 2 is unfinished, 4 the latest
        assert [t.tick_at for t in await repo.ticks(s.id)] == [4, 2]
        assert await repo.remove(s.id)
        assert await repo.get(s.id) is None and await repo.ticks(s.id) == []
        assert not await repo.remove(s.id)
