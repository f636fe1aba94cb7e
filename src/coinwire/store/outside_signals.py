"""Outside signals the server received, in the store: one row each, read back per user and provider from a time on.

Why stored: a user takes what their live runs were sent to a backtest (docs/SIGNALS.md, replay);
the rows are the normalised signals (core.outside_signals), never the credential that came with them.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import insert, select

from coinwire.store.store import Store
from coinwire.store.tables import outside_signals

__all__ = ["add_outside_signal", "load_outside_signals"]


async def add_outside_signal(store: Store, user_id: int, signal: dict[str, Any], received_ns: int) -> None:
    """Keep one accepted signal (committed before any run is told of it)."""
    row = {"user_id": user_id, "provider": signal["provider"], "method": signal["method"], "ts": signal["ts"],
           "params": msgspec.json.encode(signal["params"]).decode(), "received_ns": received_ns}
    async with store.engine.begin() as conn:
        await conn.execute(insert(outside_signals).values(row))


async def load_outside_signals(store: Store, user_id: int, provider: str, since_ns: int, limit: int) -> list[dict[str, Any]]:
    """The user's signals of `provider` with ts >= since, oldest first (by time, then arrival), at most `limit`."""
    c = outside_signals.c
    query = (select(c.provider, c.method, c.ts, c.params).where(c.user_id == user_id, c.provider == provider, c.ts >= since_ns)
             .order_by(c.ts, c.id).limit(limit))
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [{"provider": r[0], "method": r[1], "ts": int(r[2]), "params": msgspec.json.decode(r[3])} for r in rows]
