"""Daily stats rows in the store: one per portfolio and local day, upserted by (scope, scope_id, day).

Why an upsert: recording a day is idempotent. A pass that runs twice for one day (a retry, a
restart between the write and the next pass) writes the same figures again, and a day first
recorded "missing" may be recorded again once its closing value exists (an import rebuilt it).
Figures are integers at `core.portfolio.VALUE_DECIMALS`, as the portfolio candles' values.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final, NamedTuple

from sqlalchemy import Select, func, select

from coinwire.core.daily_stats import DailyStats, DayFill, DayLine
from coinwire.core.portfolio import quantize_value, value_from_int
from coinwire.core.wallets import LineKind
from coinwire.store.candles import upsert_statement
from coinwire.store.store import Store
from coinwire.store.tables import accounts, fills, owners, portfolio_candles, portfolio_daily, preferences, wallet_sets, wallets

__all__ = ["FIGURES", "Tracked", "closes_at", "last_days", "load_days", "owner_zone_names", "owner_zones", "scope_fills", "scope_lines",
           "scope_wallets", "tracked_portfolios", "write_days"]

FIGURES: Final = ("closing", "opening", "pnl", "realised", "unrealised", "fees", "funding", "deposits", "withdrawals",
                  "win_rate", "exposure", "peak", "drawdown")
_COUNTS: Final = ("trades", "closing_trades", "winning_trades")


def _row(scope: str, scope_id: str, stats: DailyStats, now_ns: int) -> dict[str, Any]:
    row: dict[str, Any] = {"scope": scope, "scope_id": scope_id, "day": stats.day, "currency": stats.currency,
                           "start_time": stats.start, "end_time": stats.end, "status": stats.status, "updated_at": now_ns}
    for name in FIGURES:
        figure: Decimal | None = getattr(stats, name)
        row[name] = None if figure is None else quantize_value(figure)
    for name in _COUNTS:
        row[name] = getattr(stats, name)
    return row


def _stats(row: dict[str, Any]) -> DailyStats:
    def figure(name: str) -> Decimal | None:
        return None if row[name] is None else value_from_int(int(row[name]))

    def amount(name: str) -> Decimal:
        return value_from_int(int(row[name] or 0))

    return DailyStats(
        day=row["day"], start=int(row["start_time"]), end=int(row["end_time"]), currency=row["currency"], status=row["status"],
        closing=figure("closing"), opening=figure("opening"), pnl=figure("pnl"), realised=figure("realised"),
        unrealised=figure("unrealised"), fees=amount("fees"), funding=amount("funding"), deposits=amount("deposits"),
        withdrawals=amount("withdrawals"), trades=int(row["trades"]), closing_trades=int(row["closing_trades"]),
        winning_trades=int(row["winning_trades"]), win_rate=figure("win_rate"), exposure=figure("exposure"),
        peak=figure("peak"), drawdown=figure("drawdown"),
    )


async def write_days(store: Store, scope: str, scope_id: str, days: Sequence[DailyStats], now_ns: int) -> None:
    """Upsert the days of one portfolio in one transaction (a day written again replaces its figures)."""
    await store.write_many(upsert_statement(store.dialect, portfolio_daily), [_row(scope, scope_id, day, now_ns) for day in days])


async def load_days(store: Store, scope: str, scope_id: str, *, start: str | None = None, end: str | None = None,
                    limit: int = 1000, after: str | None = None) -> list[DailyStats]:
    """Days of one portfolio in date order, `start` <= day <= `end` (YYYY-MM-DD, inclusive), after `after` when paging."""
    c = portfolio_daily.c
    query = select(portfolio_daily).where(c.scope == scope, c.scope_id == scope_id)
    if start is not None:
        query = query.where(c.day >= start)
    if end is not None:
        query = query.where(c.day <= end)
    if after is not None:
        query = query.where(c.day > after)
    query = query.order_by(c.day).limit(limit)
    return [_stats(row) for row in await _rows(store, query)]


async def last_days(store: Store) -> dict[tuple[str, str], tuple[DailyStats, Decimal | None]]:
    """Per portfolio, (scope, scope_id) -> (its latest recorded day, the highest closing value of all its days):
    where each one's next pass resumes, and the peak its drawdown is measured from."""
    c = portfolio_daily.c
    latest = (select(c.scope, c.scope_id, func.max(c.day).label("last_day"), func.max(c.closing).label("top"))
              .group_by(c.scope, c.scope_id)).subquery()
    query = select(portfolio_daily, latest.c.top).join(
        latest, (c.scope == latest.c.scope) & (c.scope_id == latest.c.scope_id) & (c.day == latest.c.last_day))
    return {(row["scope"], row["scope_id"]): (_stats(row), None if row["top"] is None else value_from_int(int(row["top"])))
            for row in await _rows(store, query)}


# --- what a day is computed from: the portfolio candles, the owners and their zones, the scope's lines and fills ----

class Tracked(NamedTuple):
    """A portfolio with candles: its scope, id, the currency it is valued in, its first and last candles' opens (unix s)."""

    scope: str
    scope_id: str
    currency: str
    first_open: int
    last_open: int


async def _rows(store: Store, query: Select[Any]) -> list[dict[str, Any]]:
    await store.settled()
    async with store.engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]


async def tracked_portfolios(store: Store) -> list[Tracked]:
    """Every portfolio the tracker has written candles for, in the currency of its newest candles (the owner's now)."""
    c = portfolio_candles.c
    query = select(c.scope, c.scope_id, c.currency, func.min(c.open_time).label("first_open"),
                   func.max(c.open_time).label("last_open")).group_by(c.scope, c.scope_id, c.currency)
    newest: dict[tuple[str, str], Tracked] = {}
    for r in await _rows(store, query):
        t = Tracked(r["scope"], r["scope_id"], r["currency"], int(r["first_open"]), int(r["last_open"]))
        seen = newest.get((t.scope, t.scope_id))
        if seen is None or t.last_open > seen.last_open:
            newest[(t.scope, t.scope_id)] = t
    return list(newest.values())


async def owner_zones(store: Store, portfolios: Sequence[Tracked]) -> dict[tuple[str, str], str]:
    """(scope, scope_id) -> the owner's time zone name ("UTC" without an owner or preferences).

    An account's owner is its row's; a wallet set's or run's the `owners` table's; a user total's the user.
    """
    owners_of: dict[tuple[str, str], int | None] = {}
    account_ids = [int(p.scope_id) for p in portfolios if p.scope == "account" and p.scope_id.isdigit()]
    accounts_owner = {int(r["id"]): r["owner_id"] for r in await _rows(
        store, select(accounts.c.id, accounts.c.owner_id).where(accounts.c.id.in_(account_ids)))} if account_ids else {}
    owned = [(p.scope, p.scope_id) for p in portfolios if p.scope in ("wallet_set", "run")]
    owned_by: dict[tuple[str, str], int] = {}
    if owned:
        query = select(owners).where(owners.c.resource_id.in_([i for _, i in owned]))
        owned_by = {(r["kind"], r["resource_id"]): int(r["user_id"]) for r in await _rows(store, query)}
    for p in portfolios:
        key = (p.scope, p.scope_id)
        if p.scope == "account":
            owners_of[key] = accounts_owner.get(int(p.scope_id)) if p.scope_id.isdigit() else None
        elif p.scope == "user":
            owners_of[key] = int(p.scope_id) if p.scope_id.isdigit() else None
        else:
            owners_of[key] = owned_by.get(key)
    user_ids = sorted({u for u in owners_of.values() if u is not None})
    zones = {int(r["user_id"]): str(r["time_zone"]) for r in await _rows(
        store, select(preferences.c.user_id, preferences.c.time_zone).where(preferences.c.user_id.in_(user_ids)))} if user_ids else {}
    return {key: zones.get(owner, "UTC") if owner is not None else "UTC" for key, owner in owners_of.items()}


async def owner_zone_names(store: Store) -> set[str]:
    """Every time zone a user has chosen, and UTC (everyone else's): where a midnight can make a day due."""
    rows = await _rows(store, select(preferences.c.time_zone).distinct())
    return {"UTC", *(str(r["time_zone"]) for r in rows)}


async def closes_at(store: Store, scope: str, scope_id: str, currency: str, ends: Sequence[int]) -> dict[int, Decimal]:
    """The close of each portfolio candle ending at one of `ends` (unix s) whose close is the value at that instant.

    That is a "complete" candle, or a "partial" one written at or after its end (the tracker came up inside it);
    not a "missing" one (it carries an older close), nor a "partial" one stored before its end (the server
    stopped inside it: its close is the last value seen, not the value at the boundary).
    """
    if not ends:
        return {}
    c = portfolio_candles.c
    captured = (c.status == "complete") | ((c.status == "partial") & (c.updated_at >= c.close_time * 1_000_000_000))
    query = select(c.close_time, c.close).where(
        c.scope == scope, c.scope_id == scope_id, c.currency == currency, c.close_time.in_(list(ends)), captured)
    return {int(r["close_time"]): value_from_int(int(r["close"])) for r in await _rows(store, query)}


async def scope_wallets(store: Store, scope: str, scope_id: str) -> dict[int, str]:
    """wallet id -> currency of the wallets whose lines make this portfolio's ledger."""
    w = wallets.c
    if not scope_id.isdigit() and scope != "run":
        return {}
    if scope == "account":
        condition = w.account_id == int(scope_id)
    elif scope == "wallet_set":
        condition = w.wallet_set_id == int(scope_id)
    elif scope == "run":
        condition = w.wallet_set_id.in_(select(wallet_sets.c.id).where(wallet_sets.c.run_id == scope_id))
    elif scope == "user":
        condition = w.account_id.in_(select(accounts.c.id).where(accounts.c.owner_id == int(scope_id)))
    else:
        return {}
    return {int(r["id"]): str(r["currency"]) for r in await _rows(store, select(w.id, w.currency).where(condition))}


async def scope_lines(store: Store, wallet_currency: dict[int, str], upto_ns: int) -> list[DayLine]:
    """The portfolio's wallet lines stamped at or before `upto_ns`, in time order, each with its wallet's currency."""
    return [DayLine(ts=line.ts, kind=LineKind(line.kind).value,
                    currency=wallet_currency[line.wallet_id], movement=line.movement, fill_id=line.fill_id)
            for line in await store.wallet_lines(list(wallet_currency)) if line.ts <= upto_ns]


async def scope_fills(store: Store, scope: str, scope_id: str, upto_ns: int) -> list[DayFill]:
    """The portfolio's fills stamped at or before `upto_ns` (id, symbol, time), in time order."""
    f = fills.c
    if scope == "run":
        condition = f.run_id == scope_id
    elif not scope_id.isdigit():
        return []
    elif scope == "account":
        condition = f.account_id == int(scope_id)
    elif scope == "wallet_set":
        condition = f.wallet_set_id == int(scope_id)
    elif scope == "user":
        condition = f.account_id.in_(select(accounts.c.id).where(accounts.c.owner_id == int(scope_id)))
    else:
        return []
    query = select(f.id, f.symbol, f.ts).where(condition, f.ts <= upto_ns).order_by(f.ts, f.id)
    return [DayFill(id=int(r["id"]), symbol=str(r["symbol"]), ts=int(r["ts"])) for r in await _rows(store, query)]
