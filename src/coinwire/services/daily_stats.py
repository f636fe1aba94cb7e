"""Daily stats recorder: after each owner's local midnight, every tracked portfolio's day is computed and stored.

Why a pass every few minutes rather than a timer per user (as the seed's scheduler does it): one
pass finds, for every portfolio the tracker values, the days whose closing midnight in the owner's
time zone has passed since its last recorded day, so DST, zone changes, many zones and a server
that was down all take the same path. A pass records every such day in date order (days missed
while down are caught up), each from what is stored: the portfolio candle ending at the day's
midnight (its close is the closing value), the scope's wallet lines and fills (core.daily_stats).

Days after a portfolio's newest candle wait for it (the tracker may be catching up, or the portfolio
is no longer tracked: no endless row of empty days). A day whose closing candle was never captured
(the server was down at that midnight, the candle is absent or marked "missing") is recorded with
status "missing" and no figures: a closing value is never invented. A day needing a currency the
rate source cannot convert is not recorded yet; the next pass tries again. Passes fall on multiples
of `pass_seconds` (900: each :00, :15, :30 and :45 UTC, which are the local quarters of every zone),
so a day lands within one pass of its midnight plus `settle_seconds`, the time the candle writer has
to store the midnight candle. A pass after which no owner's midnight has passed (in any zone a user
chose, or UTC) reads nothing more, unless a day waited: the grouped read of every portfolio's
candles runs about once per zone and day, not every pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import date, tzinfo
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from coinwire.core.conversion import Conversion
from coinwire.core.daily_stats import DailyStats, day_bounds, day_of, day_stats, missing_day, next_day
from coinwire.core.errors import CoinwireError
from coinwire.core.portfolio import BUCKET_S
from coinwire.store.portfolio_daily import (
    Tracked,
    closes_at,
    last_days,
    owner_zone_names,
    owner_zones,
    scope_fills,
    scope_lines,
    scope_wallets,
    tracked_portfolios,
    write_days,
)
from coinwire.store.store import Store

__all__ = ["DailyStatsRecorder", "RateSource"]

log = structlog.get_logger("coinwire.daily_stats")

_NS = 1_000_000_000
_RECENT_S = 86_400  # a portfolio with a candle this recent is still tracked: a day it is behind on is worth a look each pass


class RateSource(Protocol):
    """What converts an amount of one currency into another (services.market_data.MarketData)."""

    async def convert(self, amount: object, source: object, target: object) -> Conversion: ...


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # preferences only hold checked names; a zone removed from the tz database reads as UTC


class DailyStatsRecorder:
    """Records the days of every tracked portfolio once its owner's midnight has passed."""

    def __init__(self, store: Store, rates: RateSource, *, pegs: Mapping[str, str], pass_seconds: float = 900.0,
                 settle_seconds: float = 60.0, clock: Callable[[], int] = time.time_ns) -> None:
        """`pegs`: coin -> fiat it is pegged to (market_data.pegs): such coins count as cash in a fiat display currency.
        `clock`: epoch ns."""
        self.store = store
        self.rates = rates
        self.pegs = dict(pegs)
        self.pass_seconds = pass_seconds
        self.settle_seconds = settle_seconds
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._last_pass: int | None = None  # ns: when the previous pass ran (None: none yet in this process)
        self._pending = False  # a day was due but waited (no rate yet, the tracker behind): look again next pass

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="daily-stats")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        step = int(self.pass_seconds * _NS)
        while True:
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("daily stats pass failed")
            now = self.clock()
            await asyncio.sleep((step - now % step) / _NS)

    async def run_pass(self, now_ns: int | None = None) -> int:
        """Record every day due at `now_ns` (the clock's now by default); returns how many days were written."""
        now = self.clock() if now_ns is None else now_ns
        last_pass, self._last_pass = self._last_pass, now
        if last_pass is not None and not self._pending and not await self._midnight_between(last_pass, now):
            return 0  # no owner's midnight since the previous pass: no day can have become due
        self._pending = False
        portfolios = await tracked_portfolios(self.store)
        zones = await owner_zones(self.store, portfolios)
        last = await last_days(self.store)
        written = 0
        for portfolio in portfolios:
            key = (portfolio.scope, portfolio.scope_id)
            previous, peak = last.get(key, (None, None))
            if previous is not None and previous.currency != portfolio.currency:
                peak = None  # the owner changed currency: the peak restarts with the days valued in the new one
            written += await self._record(portfolio, _zone(zones.get(key, "UTC")), previous, peak, now)
        return written

    async def _record(self, p: Tracked, tz: tzinfo, previous: DailyStats | None, peak: Decimal | None, now_ns: int) -> int:
        """Record the portfolio's due days after `previous` (or from its first candle's day), in date order."""
        # due: its midnight has passed (and the writer had time to store that candle), and the tracker has written a
        # candle that late (days past a portfolio's newest candle wait: it may be catching up, or no longer tracked)
        due_before = min(now_ns / _NS - self.settle_seconds, p.last_open + BUCKET_S)
        day = next_day(date.fromisoformat(previous.day)) if previous is not None else day_of(p.first_open, tz)
        days: list[date] = []
        while day_bounds(day, tz)[1] <= due_before:
            days.append(day)
            day = next_day(day)
        waiting = day_bounds(day, tz)[1] <= now_ns / _NS - self.settle_seconds
        if waiting and p.last_open + BUCKET_S >= now_ns / _NS - _RECENT_S:
            self._pending = True  # its midnight passed, but the tracker (still writing) has not stored that candle yet
        if not days:
            return 0
        bounds = [day_bounds(d, tz) for d in days]
        closes = await closes_at(self.store, p.scope, p.scope_id, p.currency, sorted({t for b in bounds for t in b}))
        wallets = await scope_wallets(self.store, p.scope, p.scope_id)
        end_ns = bounds[-1][1] * _NS
        lines = await scope_lines(self.store, wallets, end_ns)
        fills = await scope_fills(self.store, p.scope, p.scope_id, end_ns)
        symbols = {f.id: f.symbol for f in fills}
        rates = await self._rates({line.currency for line in lines}, p.currency)
        last_close = previous.closing if previous is not None else None
        out: list[DailyStats] = []
        for d, (start, end) in zip(days, bounds, strict=True):
            closing = closes.get(end)
            if closing is None:
                out.append(missing_day(d, tz, p.currency))
                last_close = None
                continue
            opening = closes.get(start, last_close)
            try:
                stats = day_stats(day=d, tz=tz, scope=p.scope, currency=p.currency, closing=closing, opening=opening,
                                  lines=[line for line in lines if line.ts <= end * _NS],
                                  fills=[f for f in fills if start * _NS < f.ts <= end * _NS],
                                  known_symbols=symbols, rates=rates, cash=self._cash(p.currency), peak_before=peak)
            except KeyError as missing:
                log.warning("daily stats: no rate yet", scope=p.scope, scope_id=p.scope_id, day=d.isoformat(),
                            currency=str(missing))
                self._pending = True
                break  # this day and the later ones wait for the next pass
            out.append(stats)
            peak, last_close = stats.peak, closing
        await write_days(self.store, p.scope, p.scope_id, out, self.clock())
        return len(out)

    def _cash(self, currency: str) -> frozenset[str]:
        """The display currency and the coins pegged to it: what the portfolio holds as cash."""
        return frozenset({currency, *(coin for coin, fiat in self.pegs.items() if fiat == currency)})

    async def _midnight_between(self, earlier_ns: int, later_ns: int) -> bool:
        """Whether a day became due between two passes in any zone an owner uses (each one's midnight plus the settle time)."""
        earlier, later = earlier_ns / _NS - self.settle_seconds, later_ns / _NS - self.settle_seconds
        return any(day_of(int(earlier), tz) != day_of(int(later), tz)
                   for tz in map(_zone, await owner_zone_names(self.store)))

    async def _rates(self, currencies: set[str], target: str) -> dict[str, Decimal]:
        """One unit of each currency in `target`, now; a currency the source cannot convert is left out."""
        out: dict[str, Decimal] = {}
        for currency in sorted(currencies - {target}):
            try:
                out[currency] = (await self.rates.convert(Decimal(1), currency, target)).result
            except CoinwireError:
                continue
        return out
