"""store.rules on SQLite (with and without its journal) and PostgreSQL: rule sets per owner, a firing written with its
commands in one transaction, commands resumed in order, state cleared on enable, delete taking the firings with it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from coinwire.core.errors import Conflict
from coinwire.store.rules import RuleSetRow, RuleStore
from coinwire.store.tables import rule_firings
from tests.store.test_store_contract import Database, database  # noqa: F401 - the parametrised fixture

SPEC: dict[str, Any] = {"name": "stop", "scope": "account", "scope_id": "7", "mode": "live", "after": "once",
                        "cooldown": None, "enabled": True,
                        "rules": [{"kind": "portfolio_trailing_stop", "arm_pct": "10", "trail_pct": "5"}],
                        "actions": [{"kind": "close_all", "currency": None, "pause": True}, {"kind": "notify", "message": "ünï"}]}


def row(owner: int, name: str, scope_id: str = "7", **fields: Any) -> RuleSetRow:
    return RuleSetRow(owner_id=owner, name=name, scope="account", scope_id=scope_id, spec={**SPEC, "name": name},
                      enabled=True, created_ns=1, updated_ns=1, **fields)


async def test_rule_sets_round_trip_per_owner_with_unique_names(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        repo = RuleStore(store)
        a = await repo.add(row(1, "stop"))
        b = await repo.add(row(2, "stop", scope_id="8"))  # another owner: the same name is fine
        assert a.id != b.id and a.id > 0
        with pytest.raises(Conflict) as taken:
            await repo.add(row(1, "stop"))
        assert taken.value.code == "rule_set_name_taken"
        assert await repo.get(a.id) == a
        assert await repo.get(10**9) is None
        assert [r.id for r in await repo.list_for(1)] == [a.id]
        assert [r.id for r in await repo.list_for()] == [a.id, b.id]
        assert [r.id for r in await repo.in_scope("account", "8")] == [b.id]
        assert await repo.count_for(1) == 1 and await repo.count_for(3) == 0
        changed = RuleSetRow(id=a.id, owner_id=1, name="stop 2", scope="user", scope_id="1", spec={**SPEC, "mode": "dry_run"},
                             enabled=False, state={"peak": "1"}, created_ns=1, updated_ns=5)
        assert await repo.update(changed)
        assert await repo.get(a.id) == changed
        await repo.add(row(1, "other"))
        with pytest.raises(Conflict):
            await repo.update(RuleSetRow(id=a.id, owner_id=1, name="other", scope="user", scope_id="1", spec=SPEC,
                                         enabled=False, created_ns=1, updated_ns=6))
        assert (await repo.get(a.id)).name == "stop 2"  # type: ignore[union-attr]
        assert not await repo.update(RuleSetRow(id=10**9, owner_id=1, name="x", scope="user", scope_id="1", spec=SPEC,
                                                enabled=True, created_ns=1, updated_ns=1))


async def test_state_is_saved_and_cleared_by_enable_and_disable(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        repo = RuleStore(store)
        a = await repo.add(row(1, "stop"))
        assert await repo.save_state(a.id, {"reference": "100", "peak": "112.5", "done": False})
        assert (await repo.get(a.id)).state == {"reference": "100", "peak": "112.5", "done": False}  # type: ignore[union-attr]
        assert await repo.set_enabled(a.id, False, 9)
        got = await repo.get(a.id)
        assert got is not None and (got.enabled, got.state, got.updated_ns) == (False, None, 9)
        await repo.save_state(a.id, {"done": True})
        assert await repo.set_enabled(a.id, True, 10)
        got = await repo.get(a.id)
        assert got is not None and (got.enabled, got.state) == (True, None)
        assert not await repo.set_enabled(10**9, True, 1)
        assert not await repo.save_state(10**9, {})


async def test_a_firing_is_written_with_its_commands_and_resumed_in_order(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        repo = RuleStore(store)
        a = await repo.add(row(1, "stop"))
        b = await repo.add(row(2, "b"))
        first = await repo.add_firing(a.id, 1, 1_000, {"value": "95", "peak": "110", "trigger": "104.5"}, "live",
                                      SPEC["actions"], now_ns=2, state={"done": True})
        assert [c.id for c in first.commands] == [f"{first.id}:0", f"{first.id}:1"]
        assert [c.kind for c in first.commands] == ["close_all", "notify"]
        assert (await repo.get(a.id)).state == {"done": True}  # type: ignore[union-attr]
        dry = await repo.add_firing(b.id, 2, 2_000, {"value": "1"}, "dry_run", [{"kind": "notify"}], now_ns=3, status="recorded")
        second = await repo.add_firing(a.id, 1, 3_000, {"value": "90"}, "live",
                                       [{"kind": "cancel_orders"}] * 11, now_ns=4)  # seq 10 sorts after 9, not after 1
        pending = await repo.pending_commands()
        assert [c.id for c in pending] == [c.id for c in first.commands + second.commands]
        assert dry.commands[0].status == "recorded"
        assert await repo.update_command(first.commands[0].id, "running", {"sold": {"BTC/USDT": "0.5"}}, 1, 5)
        assert await repo.update_command(first.commands[1].id, "done", {"sent": True}, 1, 6)
        assert [c.id for c in await repo.pending_commands()][:2] == [first.commands[0].id, second.commands[0].id]
        resumed = await repo.command(first.commands[0].id)
        assert resumed is not None and (resumed.status, resumed.attempts, resumed.detail) == ("running", 1, {"sold": {"BTC/USDT": "0.5"}})
        assert not await repo.update_command("999:0", "done", {}, 1, 7)
        with pytest.raises(ValueError):
            await repo.update_command(first.commands[0].id, "exploded", {}, 1, 7)
        history = await repo.firings(a.id)
        assert [f.id for f in history] == [second.id, first.id]  # newest first
        assert history[1].values == {"value": "95", "peak": "110", "trigger": "104.5"}
        assert [c.status for c in history[1].commands] == ["running", "done"]
        assert [f.id for f in await repo.firings(a.id, limit=1)] == [second.id]
        assert [f.id for f in await repo.firings(a.id, before=3_000)] == [first.id]
        assert [f.id for f in await repo.firings(b.id)] == [dry.id]


async def test_a_failed_firing_write_leaves_nothing(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        repo = RuleStore(store)
        a = await repo.add(row(1, "stop"))
        with pytest.raises(TypeError):  # the second command's spec cannot be encoded: the whole firing is refused
            await repo.add_firing(a.id, 1, 1_000, {"value": "1"}, "live", [{"kind": "notify"}, {"kind": object()}], now_ns=1)
        assert await repo.firings(a.id) == []
        assert await repo.pending_commands() == []
        async with store.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(rule_firings))).scalar_one() == 0


async def test_delete_takes_the_firings_and_commands(database: Database) -> None:  # noqa: F811
    async with database.store() as store:
        repo = RuleStore(store)
        a = await repo.add(row(1, "stop"))
        b = await repo.add(row(1, "kept"))
        await repo.add_firing(a.id, 1, 1_000, {"value": "1"}, "live", SPEC["actions"], now_ns=1)
        kept = await repo.add_firing(b.id, 1, 1_000, {"value": "1"}, "live", SPEC["actions"], now_ns=1)
        assert await repo.delete(a.id)
        assert not await repo.delete(a.id)
        assert await repo.get(a.id) is None and await repo.firings(a.id) == []
        assert [c.id for c in await repo.pending_commands()] == [c.id for c in kept.commands]
