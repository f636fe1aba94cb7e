"""The audit log: every state-changing action (who, what, when, from where, outcome), queryable by admins.

`record()` only appends to a RowBuffer, so an order path pays no extra write of its own;
the buffer is written in one executemany transaction every `interval` seconds (and at
close; rows of the last interval are lost if the process dies). Nothing secret is recorded: actions are route templates and method names,
targets are resource ids, never bodies, passwords or tokens. A NUL character in an action or
target (a refused request's path) is stored as U+FFFD: PostgreSQL cannot hold it, and one row
the store refuses is dropped with a log line rather than holding back every later row
(`coinwire.auth.rowbuffer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, insert, select

from coinwire.auth.abilities import Principal
from coinwire.auth.rowbuffer import RowBuffer
from coinwire.core.errors import InvalidInput
from coinwire.store import Store
from coinwire.store.tables import audit

__all__ = ["AuditLog", "TARGET_PARAMS"]

# the parameter that best names what a JSON-RPC call acted on, first present wins
TARGET_PARAMS = ("set_id", "order_id", "client_oid", "client_order_id", "wallet_set_id", "exchange")


class AuditLog:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time, interval: float = 1.0) -> None:
        self.store, self.clock = store, clock
        self._rows = RowBuffer(store, insert(audit), interval, "audit")

    def record(self, principal: Principal | None, action: str, target: str | None, outcome: str, client_ip: str | None) -> None:
        """Refused requests are recorded too, so the texts are made storable here: cut to their columns, NULs replaced."""
        if target and "\x00" in target:
            target = target.replace("\x00", "\ufffd")
        if "\x00" in action:
            action = action.replace("\x00", "\ufffd")
        self._rows.add({
            "ts": time.time_ns() if self.clock is time.time else int(self.clock() * 1e9),
            "user_id": principal.user_id if principal else None, "username": principal.username if principal else None,
            "action": action[:160], "target": target[:160] if target else None, "outcome": outcome[:64],
            "client_ip": client_ip[:64] if client_ip else None,
        })

    def record_call(self, principal: Principal | None, method: str, params: dict[str, Any], outcome: str) -> None:
        """One JSON-RPC call (every order placed is one): a plain loop finds its target, no generator."""
        target = None
        for name in TARGET_PARAMS:
            value = params.get(name)
            if value is not None:
                target = f"{name}={value}"
                break
        self.record(principal, f"rpc {method}", target, outcome, None)

    async def start(self) -> None:
        await self._rows.start()

    async def flush(self) -> None:
        await self._rows.flush()

    async def close(self) -> None:
        await self._rows.close()

    async def query(self, username: str | None = None, action: str | None = None, limit: int = 100,
                    before: int | None = None) -> list[dict[str, Any]]:
        """Newest first; `action` matches a prefix (e.g. `rpc make_order`, `POST /api/v1/users`); page with `before` (an id)."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("invalid_limit", "limit must be between 1 and 1000")
        await self._rows.flush()
        conditions = []
        if username:
            conditions.append(audit.c.username == username)
        if action:
            conditions.append(audit.c.action.startswith(action, autoescape=True))
        if before is not None:
            conditions.append(audit.c.id < before)
        statement = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if conditions:
            statement = statement.where(and_(*conditions))
        await self.store.settled()  # the flushed rows may still be on their way from the store's journal
        async with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(statement)]
