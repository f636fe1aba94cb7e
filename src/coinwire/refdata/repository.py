"""Reads and writes reference data (fx_rates, coin_stats) in the store, SQLite or PostgreSQL alike.

A snapshot is stored once however often it is fetched (the primary key holds the source's
own timestamp; a repeat only moves `fetched_at`). The latest FX snapshot of a source is the
rows with its newest timestamp; the latest coin list, the rows of its newest fetch (each coin
has its own timestamp). That is what a restarted process starts from.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from coinwire.refdata.sources import CoinStat, FxRates
from coinwire.store import Store
from coinwire.store.tables import coin_stats, fx_rates

__all__ = ["RefDataRepository"]


class RefDataRepository:
    """Reference-data rows over a started `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        insert = dialect.insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=[c.name for c in table.primary_key.columns], set_={"fetched_at": insert.excluded.fetched_at}
        )
        async with self.store.engine.begin() as conn:
            await conn.execute(statement, rows)

    async def save_fx(self, rates: FxRates, fetched_at: int) -> None:
        rows = [
            {"source": rates.source, "base": rates.base, "quote": quote, "ts": rates.ts, "rate": str(rate), "fetched_at": fetched_at}
            for quote, rate in sorted(rates.rates.items())
        ]
        await self._insert(fx_rates, rows)

    async def save_coins(self, coins: list[CoinStat], fetched_at: int) -> None:
        rows = [
            {
                "source": c.source, "coin_id": c.coin_id, "ts": c.ts, "symbol": c.symbol, "name": c.name, "rank": c.rank,
                "price": str(c.price), "market_cap": _text(c.market_cap), "ath": _text(c.ath), "ath_ts": c.ath_ts,
                "fetched_at": fetched_at,
            }
            for c in coins
        ]
        await self._insert(coin_stats, rows)

    async def latest_fx(self, source: str) -> FxRates | None:
        """The newest stored snapshot of `source` (None before the first good fetch)."""
        newest = select(func.max(fx_rates.c.ts)).where(fx_rates.c.source == source).scalar_subquery()
        query = select(fx_rates).where(fx_rates.c.source == source, fx_rates.c.ts == newest)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        if not rows:
            return None
        return FxRates(source, rows[0]["base"], rows[0]["ts"], {r["quote"]: Decimal(r["rate"]) for r in rows})

    async def latest_coins(self, source: str) -> list[CoinStat]:
        """The coins of the newest fetch of `source`, by rank."""
        newest = select(func.max(coin_stats.c.fetched_at)).where(coin_stats.c.source == source).scalar_subquery()
        query = (
            select(coin_stats)
            .where(coin_stats.c.source == source, coin_stats.c.fetched_at == newest)
            .order_by(coin_stats.c.rank)
        )
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            CoinStat(
                source=r["source"], coin_id=r["coin_id"], symbol=r["symbol"], name=r["name"], rank=r["rank"],
                price=Decimal(r["price"]), market_cap=_decimal(r["market_cap"]), ath=_decimal(r["ath"]), ath_ts=r["ath_ts"],
                ts=r["ts"],
            )
            for r in rows
        ]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
