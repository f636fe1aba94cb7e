"""Account imports in the store: the import rows (state, step, cursors, progress) and the past trades and transfers.

Why the venue's ids are the keys: an import fetches pages that overlap (a page boundary at a
millisecond several trades share, a resumed step that asks again from its cursor), and a
second import asks for everything again. INSERT .. ON CONFLICT DO NOTHING with RETURNING
stores each trade and transfer once and says how many were new, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from coinwire.store.store import Store
from coinwire.store.tables import account_imports, account_trades, account_transfers

__all__ = ["ImportRow", "StoredTrade", "StoredTransfer", "create_import", "insert_trades", "insert_transfers",
           "latest_import", "load_trades", "load_transfers", "save_import", "unfinished_imports"]


class ImportRow(msgspec.Struct, kw_only=True):
    """One import of one account: where it is (`step`, `cursor`) and how far (`done` of `total` in the step)."""

    id: int
    account_id: int
    user_id: int | None
    state: str  # running | done | failed
    step: str
    cursor: dict[str, Any]
    done: int
    total: int
    error: str | None
    started_at: int
    updated_at: int
    finished_at: int | None


class StoredTrade(msgspec.Struct, frozen=True, kw_only=True):
    """One past fill of an account, exact decimals, as the venue reported it."""

    symbol: str
    trade_id: str
    order_id: str | None
    side: str  # buy | sell
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee: Decimal
    fee_currency: str
    ts_ms: int


class StoredTransfer(msgspec.Struct, frozen=True, kw_only=True):
    """One deposit or withdrawal of an account (`amount` as reported, `fee` charged besides it)."""

    kind: str  # deposit | withdrawal
    transfer_id: str
    asset: str
    amount: Decimal
    fee: Decimal
    status: str
    ts_ms: int


_IMPORT_COLUMNS = ("account_id", "user_id", "state", "step", "cursor", "done", "total", "error", "started_at",
                   "updated_at", "finished_at")


def _row(found: Any) -> ImportRow:
    values = dict(found._mapping)
    values["cursor"] = msgspec.json.decode(values["cursor"])
    return ImportRow(**values)


async def create_import(store: Store, row: ImportRow) -> ImportRow:
    """Store a new import; the row with the id the database gave it."""
    values = {name: getattr(row, name) for name in _IMPORT_COLUMNS}
    values["cursor"] = msgspec.json.encode(row.cursor).decode()
    async with store.engine.begin() as conn:
        result = await conn.execute(insert(account_imports).values(**values).returning(account_imports.c.id))
        new_id = int(result.scalar_one())
    return msgspec.structs.replace(row, id=new_id)


async def save_import(store: Store, row: ImportRow) -> None:
    """Write the import's state, step, cursor and progress (one short transaction: a kill loses at most this step's page)."""
    values = {name: getattr(row, name) for name in _IMPORT_COLUMNS if name not in ("account_id", "user_id", "started_at")}
    values["cursor"] = msgspec.json.encode(row.cursor).decode()
    async with store.engine.begin() as conn:
        await conn.execute(update(account_imports).where(account_imports.c.id == row.id).values(**values))


async def latest_import(store: Store, account_id: int) -> ImportRow | None:
    """The account's newest import, if it ever had one."""
    query = select(account_imports).where(account_imports.c.account_id == account_id).order_by(account_imports.c.id.desc())
    await store.settled()  # change sets acknowledged by the journal are in the database first
    async with store.engine.connect() as conn:
        found = (await conn.execute(query.limit(1))).first()
    return _row(found) if found is not None else None


async def unfinished_imports(store: Store) -> list[ImportRow]:
    """Imports still `running` (the process that ran them stopped): what a starting server resumes."""
    query = select(account_imports).where(account_imports.c.state == "running").order_by(account_imports.c.id)
    await store.settled()  # change sets acknowledged by the journal are in the database first
    async with store.engine.connect() as conn:
        return [_row(found) for found in (await conn.execute(query)).all()]


@lru_cache(maxsize=8)
def _insert(dialect: str, table: Table) -> Insert:
    statement = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    keys = list(table.primary_key.columns)
    return statement.on_conflict_do_nothing(index_elements=keys).returning(*keys)


async def _insert_new(store: Store, table: Table, params: list[dict[str, Any]]) -> int:
    if not params:
        return 0
    async with store.engine.begin() as conn:
        result = await conn.execute(_insert(store.dialect, table), params)
        return len(result.all())


async def insert_trades(store: Store, account_id: int, trades: Sequence[StoredTrade]) -> int:
    """Store the trades not stored yet (by account, market and the venue's trade id); how many were new."""
    params = [{"account_id": account_id, "symbol": t.symbol, "trade_id": t.trade_id, "order_id": t.order_id,
               "side": t.side, "price": str(t.price), "amount": str(t.amount), "cost": str(t.cost), "fee": str(t.fee),
               "fee_currency": t.fee_currency, "ts_ms": t.ts_ms} for t in trades]
    return await _insert_new(store, account_trades, params)


async def insert_transfers(store: Store, account_id: int, transfers: Sequence[StoredTransfer]) -> int:
    """Store the deposits and withdrawals not stored yet (by account, kind and the venue's id); how many were new."""
    params = [{"account_id": account_id, "kind": t.kind, "transfer_id": t.transfer_id, "asset": t.asset,
               "amount": str(t.amount), "fee": str(t.fee), "status": t.status, "ts_ms": t.ts_ms} for t in transfers]
    return await _insert_new(store, account_transfers, params)


async def load_trades(store: Store, account_id: int) -> list[StoredTrade]:
    """Every stored trade of the account, oldest first."""
    c = account_trades.c
    query = select(c.symbol, c.trade_id, c.order_id, c.side, c.price, c.amount, c.cost, c.fee, c.fee_currency, c.ts_ms).where(
        c.account_id == account_id).order_by(c.ts_ms, c.symbol, c.trade_id)
    await store.settled()  # change sets acknowledged by the journal are in the database first
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [StoredTrade(symbol=s, trade_id=t, order_id=o, side=side, price=Decimal(p), amount=Decimal(a), cost=Decimal(cost),
                        fee=Decimal(fee), fee_currency=fc, ts_ms=int(ts)) for s, t, o, side, p, a, cost, fee, fc, ts in rows]


async def load_transfers(store: Store, account_id: int) -> list[StoredTransfer]:
    """Every stored deposit and withdrawal of the account, oldest first."""
    c = account_transfers.c
    query = select(c.kind, c.transfer_id, c.asset, c.amount, c.fee, c.status, c.ts_ms).where(
        c.account_id == account_id).order_by(c.ts_ms, c.kind, c.transfer_id)
    await store.settled()  # change sets acknowledged by the journal are in the database first
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [StoredTransfer(kind=k, transfer_id=t, asset=a, amount=Decimal(amt), fee=Decimal(fee), status=st, ts_ms=int(ts))
            for k, t, a, amt, fee, st, ts in rows]
