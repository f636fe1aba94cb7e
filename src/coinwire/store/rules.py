"""Rule sets, their firings and the journal of each firing's commands in the store (SQLite or PostgreSQL: one code path).

A firing and its commands are written in ONE transaction (`add_firing`), before any command runs:
after a crash every command of a recorded firing is there to resume, and none of a firing that was
not recorded exists. A command's id is "<firing id>:<seq>", stable across restarts, so what it does
(orders whose client ids derive from it) can be recognised when it is resumed. Every call is one
short transaction; JSON columns are encoded and decoded here only.
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
from coinwire.store.tables import rule_commands, rule_firings, rule_sets

__all__ = ["COMMAND_STATUSES", "CommandRow", "FiringRow", "RuleSetRow", "RuleStore", "UNFINISHED"]

COMMAND_STATUSES = ("pending", "running", "done", "failed", "recorded")
UNFINISHED = ("pending", "running")  # what the controller resumes at start
_json = msgspec.json.Encoder(decimal_format="string")


class RuleSetRow(msgspec.Struct, kw_only=True):
    """One stored rule set: `spec` its JSON form (core.rules.rule_set_dict), `state` the controller's (None: fresh)."""

    id: int = 0
    owner_id: int
    name: str
    scope: str
    scope_id: str
    spec: dict[str, Any]
    enabled: bool
    state: dict[str, Any] | None = None
    created_ns: int
    updated_ns: int


class CommandRow(msgspec.Struct, kw_only=True):
    """One action of a firing, as journaled: its status, attempts so far and what it did (`detail`)."""

    id: str
    firing_id: int
    rule_set_id: int
    seq: int
    kind: str
    spec: dict[str, Any]
    status: str
    attempts: int = 0
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    updated_ns: int


class FiringRow(msgspec.Struct, kw_only=True):
    """A firing with its commands in order."""

    id: int
    rule_set_id: int
    owner_id: int
    time_ns: int
    values: dict[str, Any]
    mode: str
    commands: list[CommandRow]


def _plain(mapping: Any) -> dict[str, Any]:
    return {str(k): v for k, v in mapping.items()}


def _rule_set(mapping: Any) -> RuleSetRow:
    values = _plain(mapping)
    values["spec"] = msgspec.json.decode(values["spec"])
    values["state"] = None if values["state"] is None else msgspec.json.decode(values["state"])
    values["enabled"] = bool(values["enabled"])
    return msgspec.convert(values, RuleSetRow)


def _command(mapping: Any) -> CommandRow:
    values = _plain(mapping)
    values["spec"] = msgspec.json.decode(values["spec"])
    values["detail"] = msgspec.json.decode(values["detail"])
    return msgspec.convert(values, CommandRow)


def _text(value: Any) -> str:
    return _json.encode(value).decode()


def _name_taken(name: str) -> Conflict:
    return Conflict("rule_set_name_taken", f"you already have a rule set named {name!r}", field="name")


class RuleStore:
    """Reads and writes rule sets, firings and commands over a started `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- rule sets ----------------------------------------------------------------------------
    async def add(self, row: RuleSetRow) -> RuleSetRow:
        """Store a new rule set; `rule_set_name_taken` when its owner has one by that name already."""
        values = msgspec.structs.asdict(row)
        values.pop("id")
        values["spec"] = _text(row.spec)
        values["state"] = None if row.state is None else _text(row.state)
        try:
            async with self.store.engine.begin() as conn:
                new_id = int((await conn.execute(insert(rule_sets).values(**values).returning(rule_sets.c.id))).scalar_one())
        except (IntegrityError, sqlite3.IntegrityError):
            raise _name_taken(row.name) from None
        return msgspec.structs.replace(row, id=new_id)

    async def get(self, rule_set_id: int) -> RuleSetRow | None:
        async with self.store.engine.connect() as conn:
            found = (await conn.execute(select(rule_sets).where(rule_sets.c.id == rule_set_id))).mappings().first()
        return _rule_set(found) if found is not None else None

    async def list_for(self, owner_id: int | None = None) -> list[RuleSetRow]:
        """Oldest first: one owner's (None: everyone's, as the controller loads them at start)."""
        query = select(rule_sets).order_by(rule_sets.c.id)
        if owner_id is not None:
            query = query.where(rule_sets.c.owner_id == owner_id)
        async with self.store.engine.connect() as conn:
            return [_rule_set(r) for r in (await conn.execute(query)).mappings()]

    async def update(self, row: RuleSetRow) -> bool:
        """Replace a rule set's name, scope, spec, enabled flag and state (by id); False when there is none."""
        values = {"name": row.name, "scope": row.scope, "scope_id": row.scope_id, "spec": _text(row.spec),
                  "enabled": row.enabled, "state": None if row.state is None else _text(row.state), "updated_ns": row.updated_ns}
        try:
            async with self.store.engine.begin() as conn:
                result = await conn.execute(update(rule_sets).where(rule_sets.c.id == row.id).values(**values))
        except (IntegrityError, sqlite3.IntegrityError):
            raise _name_taken(row.name) from None
        return bool(result.rowcount)

    async def delete(self, rule_set_id: int) -> bool:
        """Delete a rule set with its firings and their commands in one transaction; False when there was none."""
        firing_ids = select(rule_firings.c.id).where(rule_firings.c.rule_set_id == rule_set_id)
        async with self.store.engine.begin() as conn:
            await conn.execute(delete(rule_commands).where(rule_commands.c.firing_id.in_(firing_ids)))
            await conn.execute(delete(rule_firings).where(rule_firings.c.rule_set_id == rule_set_id))
            result = await conn.execute(delete(rule_sets).where(rule_sets.c.id == rule_set_id))
        return bool(result.rowcount)

    async def set_enabled(self, rule_set_id: int, enabled: bool, now_ns: int) -> bool:
        """Enable or disable; either way the state is cleared, so an enabled set takes its reference at its next sample."""
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(rule_sets).where(rule_sets.c.id == rule_set_id)
                                        .values(enabled=enabled, state=None, updated_ns=now_ns))
        return bool(result.rowcount)

    async def save_state(self, rule_set_id: int, state: dict[str, Any] | None) -> bool:
        """The controller's evaluation state (core.rules.RuleSetState.to_dict()); `updated_ns` is left alone."""
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(rule_sets).where(rule_sets.c.id == rule_set_id)
                                        .values(state=None if state is None else _text(state)))
        return bool(result.rowcount)

    # --- firings and their commands -----------------------------------------------------------
    async def add_firing(self, rule_set_id: int, owner_id: int, time_ns: int, values: dict[str, Any], mode: str,
                         actions: Sequence[dict[str, Any]], now_ns: int, status: str = "pending",
                         state: dict[str, Any] | None = None) -> FiringRow:
        """Record a firing and one command per action (ids "<firing id>:<seq>") in ONE transaction, before any runs.

        `status`: the commands' first status (`recorded` for a dry run). `state`: the rule set's state after
        the firing, saved in the same transaction (a restart never fires the same arming twice).
        """
        if status not in COMMAND_STATUSES:
            raise ValueError(f"unknown command status {status!r}")
        async with self.store.engine.begin() as conn:
            firing_id = int((await conn.execute(insert(rule_firings).values(
                rule_set_id=rule_set_id, owner_id=owner_id, time_ns=time_ns, rule_values=_text(values), mode=mode)
                .returning(rule_firings.c.id))).scalar_one())
            commands = [CommandRow(id=f"{firing_id}:{seq}", firing_id=firing_id, rule_set_id=rule_set_id, seq=seq,
                                   kind=str(action.get("kind", "")), spec=dict(action), status=status, updated_ns=now_ns)
                        for seq, action in enumerate(actions)]
            if commands:
                await conn.execute(insert(rule_commands), [
                    {**msgspec.structs.asdict(c), "spec": _text(c.spec), "detail": _text(c.detail)} for c in commands])
            if state is not None:
                await conn.execute(update(rule_sets).where(rule_sets.c.id == rule_set_id).values(state=_text(state)))
        return FiringRow(id=firing_id, rule_set_id=rule_set_id, owner_id=owner_id, time_ns=time_ns,
                         values=msgspec.json.decode(_text(values)), mode=mode, commands=commands)

    async def firings(self, rule_set_id: int, limit: int = 100, before: int | None = None) -> list[FiringRow]:
        """A rule set's firings, newest first, each with its commands; `before`: only those earlier (time ns)."""
        query = select(rule_firings).where(rule_firings.c.rule_set_id == rule_set_id)
        if before is not None:
            query = query.where(rule_firings.c.time_ns < before)
        query = query.order_by(rule_firings.c.time_ns.desc(), rule_firings.c.id.desc()).limit(limit)
        async with self.store.engine.connect() as conn:
            rows = [_plain(r) for r in (await conn.execute(query)).mappings()]
            ids = [int(r["id"]) for r in rows]
            found = [] if not ids else (await conn.execute(
                select(rule_commands).where(rule_commands.c.firing_id.in_(ids))
                .order_by(rule_commands.c.firing_id, rule_commands.c.seq))).mappings().all()
        by_firing: dict[int, list[CommandRow]] = {}
        for mapping in found:
            command = _command(mapping)
            by_firing.setdefault(command.firing_id, []).append(command)
        return [FiringRow(id=int(r["id"]), rule_set_id=int(r["rule_set_id"]), owner_id=int(r["owner_id"]),
                          time_ns=int(r["time_ns"]), values=msgspec.json.decode(r["rule_values"]), mode=str(r["mode"]),
                          commands=by_firing.get(int(r["id"]), [])) for r in rows]

    async def pending_commands(self) -> list[CommandRow]:
        """Every command not finished (pending or running), in the order they must run: by firing, then seq."""
        query = (select(rule_commands).where(rule_commands.c.status.in_(UNFINISHED))
                 .order_by(rule_commands.c.firing_id, rule_commands.c.seq))
        async with self.store.engine.connect() as conn:
            return [_command(r) for r in (await conn.execute(query)).mappings()]

    async def update_command(self, command_id: str, status: str, detail: dict[str, Any], attempts: int, now_ns: int) -> bool:
        """Record a command's progress (`detail`: what it has done so far); False when there is none."""
        if status not in COMMAND_STATUSES:
            raise ValueError(f"unknown command status {status!r}")
        async with self.store.engine.begin() as conn:
            result = await conn.execute(update(rule_commands).where(rule_commands.c.id == command_id)
                                        .values(status=status, detail=_text(detail), attempts=attempts, updated_ns=now_ns))
        return bool(result.rowcount)

    async def command(self, command_id: str) -> CommandRow | None:
        async with self.store.engine.connect() as conn:
            found = (await conn.execute(select(rule_commands).where(rule_commands.c.id == command_id))).mappings().first()
        return _command(found) if found is not None else None

    async def count_for(self, owner_id: int) -> int:
        """How many rule sets one owner keeps (the service's per-user limit)."""
        async with self.store.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(rule_sets)
                                           .where(rule_sets.c.owner_id == owner_id))).scalar_one())

    async def in_scope(self, scope: str, scope_id: str) -> list[RuleSetRow]:
        """The rule sets attached to one scope (any owner), oldest first."""
        query = select(rule_sets).where(and_(rule_sets.c.scope == scope, rule_sets.c.scope_id == scope_id)).order_by(rule_sets.c.id)
        async with self.store.engine.connect() as conn:
            return [_rule_set(r) for r in (await conn.execute(query)).mappings()]
