"""Analyser values and strategy signals in the store: written as they come, read back by key or series and time.

Why the signal's de-duplication reads the store: "a signal equal to the last one of its series
is not stored or sent again" must hold across restarts of a run, so the last value is the
stored one (the service keeps it in memory after the first read).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from coinwire.store.store import Store
from coinwire.store.tables import analysis_values, signals

__all__ = ["AnalysisRow", "SignalRow", "add_signal", "insert_values", "last_signal", "load_signals", "load_values"]


class AnalysisRow(msgspec.Struct, frozen=True, kw_only=True):
    """One analyser output: the key names series, indicator and parameters; time in ns."""

    key: str
    time_ns: int
    owner_id: int | None
    series: str
    indicator: str
    params: tuple[int | float, ...]
    value: float


class SignalRow(msgspec.Struct, frozen=True, kw_only=True):
    """One stored signal of a run: a change of its (run, name) series."""

    id: int
    owner_id: int | None
    run_id: str
    name: str
    time_ns: int
    value: Any


@lru_cache(maxsize=4)
def _insert_values(dialect: str) -> Insert:
    statement = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(analysis_values)
    return statement.on_conflict_do_nothing(index_elements=[analysis_values.c.key, analysis_values.c.time_ns])


async def insert_values(store: Store, rows: Sequence[AnalysisRow]) -> None:
    """Write values in one transaction; a (key, time) already stored is kept as it was."""
    if not rows:
        return
    params = [
        {"key": r.key, "time_ns": r.time_ns, "owner_id": r.owner_id, "series": r.series, "indicator": r.indicator,
         "params": json.dumps(list(r.params)), "value": r.value}
        for r in rows
    ]  # fmt: skip
    async with store.engine.begin() as conn:
        await conn.execute(_insert_values(store.dialect), params)


async def load_values(store: Store, key: str, start_ns: int | None, end_ns: int | None, limit: int) -> list[AnalysisRow]:
    """The values of one key with start <= time < end, the NEWEST `limit` of them, oldest first."""
    c = analysis_values.c
    query = select(c.key, c.time_ns, c.owner_id, c.series, c.indicator, c.params, c.value).where(c.key == key)
    if start_ns is not None:
        query = query.where(c.time_ns >= start_ns)
    if end_ns is not None:
        query = query.where(c.time_ns < end_ns)
    query = query.order_by(c.time_ns.desc()).limit(limit)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        AnalysisRow(key=r[0], time_ns=int(r[1]), owner_id=r[2], series=r[3], indicator=r[4],
                    params=tuple(json.loads(r[5])), value=float(r[6]))
        for r in reversed(rows)
    ]  # fmt: skip


async def add_signal(store: Store, owner_id: int | None, run_id: str, name: str, time_ns: int, value: Any) -> int:
    """Store one signal (the caller checked it changed); returns its id."""
    async with store.engine.begin() as conn:
        result = await conn.execute(
            signals.insert().values(owner_id=owner_id, run_id=run_id, name=name, time_ns=time_ns, value=json.dumps(value))
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


async def last_signal(store: Store, run_id: str, name: str) -> SignalRow | None:
    """The newest stored signal of a (run, name) series."""
    found = await load_signals(store, run_id=run_id, name=name, limit=1)
    return found[-1] if found else None


async def load_signals(
    store: Store, *, run_id: str | None = None, name: str | None = None, owner_id: int | None = None,
    owner_only: bool = False, start_ns: int | None = None, end_ns: int | None = None, limit: int = 1000,
) -> list[SignalRow]:
    """Signals, the newest `limit`, oldest first; `owner_only`: only `owner_id`'s."""
    c = signals.c
    query = select(c.id, c.owner_id, c.run_id, c.name, c.time_ns, c.value)
    if run_id is not None:
        query = query.where(c.run_id == run_id)
    if name is not None:
        query = query.where(c.name == name)
    if owner_only:
        query = query.where(c.owner_id == owner_id)
    if start_ns is not None:
        query = query.where(c.time_ns >= start_ns)
    if end_ns is not None:
        query = query.where(c.time_ns < end_ns)
    query = query.order_by(c.time_ns.desc(), c.id.desc()).limit(limit)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        SignalRow(id=int(r[0]), owner_id=r[1], run_id=r[2], name=r[3], time_ns=int(r[4]), value=json.loads(r[5]))
        for r in reversed(rows)
    ]
