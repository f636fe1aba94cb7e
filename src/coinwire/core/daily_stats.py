"""One day's performance of a portfolio, from its midnight values, wallet lines and fills: pure arithmetic.

Why a day is computed here from raw lines, not kept as running totals: the day's figures must be
reproducible from what is stored (a day missed while the server was down is recorded later from
the same lines), and the same rules serve every scope (account, wallet set, run, user).

The day of a zone is [local midnight, next local midnight), found by `core.rollup`'s calendar
buckets (`1d`): 23 or 25 hours on a DST change. As for portfolio candles, an event stamped exactly
at midnight belongs to the day that ENDS there: a day holds the events of (start, end].

Figures, all in the owner's display currency:

- `closing`: the portfolio's value at the day's end midnight (the close of the 15-minute portfolio
  candle that ends there); `opening`: the same at the day's start.
- `deposits` / `withdrawals`: money moved in or out, kept apart from performance: paper deposits
  and withdrawals (`virtual_tx`), a live account's balance changes its venue reported (`venue_sync`)
  and, for a wallet set or a run only, allocations (funds moved between an account's unallocated
  wallet and a wallet set are a deposit for the set, nothing for the account).
- `pnl` = closing - opening - (deposits - withdrawals).
- `realised`: the trading result booked that day: spot sells against their average cost (per
  base and quote currency pair, over the scope's whole history of trade lines), perpetuals' `pnl`
  lines, funding received or paid, liquidation clearance fees, minus fees. `unrealised` = pnl - realised.
- `fees` (paid, positive), `funding` (received +, paid -), `trades` (fills), `win_rate` (closing fills
  with a positive result over closing fills: spot sells and perpetual fills that realised PnL).
- `exposure`: the share of the closing value not held as cash (the display currency and coins pegged to
  it): coins, other currencies, positions' unrealised PnL, `peak` the highest closing value recorded so far and `drawdown`
  the fall from it, as a fraction of the peak.

Amounts of other currencies than the display currency are converted with the `rates` given
(currency -> display currency per unit); the caller decides where rates come from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Final

import msgspec

from coinwire.core.numbers import ATTO
from coinwire.core.rollup import bucket_starts, parse_timeframe
from coinwire.core.wallets import LineKind

__all__ = [
    "DAY_STATUSES",
    "DailyStats",
    "DayLine",
    "DayFill",
    "day_bounds",
    "day_of",
    "day_stats",
    "missing_day",
    "money_kinds",
    "next_day",
]

_DAY_TF: Final = parse_timeframe("1d")
_NS: Final = 1_000_000_000
_ATTO: Final = Decimal(ATTO)
DAY_STATUSES: Final = ("recorded", "missing")
_SCOPES_WITH_ALLOCATION: Final = frozenset({"wallet_set", "run"})
_COUNTED: Final = frozenset({LineKind.FEE.value, LineKind.FUNDING.value, LineKind.PNL.value, LineKind.LIQUIDATION.value})


class DayLine(msgspec.Struct, frozen=True, kw_only=True):
    """A wallet line of the scope with its wallet's currency: the ledger's record, readable without the wallet."""

    ts: int  # ns
    kind: str
    currency: str
    movement: int  # ATTO of `currency`
    fill_id: int | None = None


class DayFill(msgspec.Struct, frozen=True, kw_only=True):
    """A fill of the scope inside the day: counted as a trade; its symbol says which lines are its base."""

    id: int
    symbol: str
    ts: int  # ns


class DailyStats(msgspec.Struct, frozen=True, kw_only=True):
    """A day's record; `status` "missing": no value was captured at its closing midnight, and no figure is invented."""

    day: str  # YYYY-MM-DD in the owner's zone
    start: int  # unix s, the local midnight that opens the day
    end: int  # unix s, the local midnight that closes it
    currency: str
    status: str
    closing: Decimal | None = None
    opening: Decimal | None = None
    pnl: Decimal | None = None
    realised: Decimal | None = None
    unrealised: Decimal | None = None
    fees: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)
    deposits: Decimal = Decimal(0)
    withdrawals: Decimal = Decimal(0)
    trades: int = 0
    closing_trades: int = 0
    winning_trades: int = 0
    win_rate: Decimal | None = None
    exposure: Decimal | None = None
    peak: Decimal | None = None
    drawdown: Decimal | None = None


def day_bounds(day: date, tz: tzinfo) -> tuple[int, int]:
    """[local midnight, next local midnight) of `day` in `tz`, unix s (a 23- or 25-hour day on a DST change)."""
    noon = int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())
    starts = bucket_starts(_DAY_TF, tz, noon - 2 * 86_400, noon + 2 * 86_400)
    for first, second in zip(starts[:-1], starts[1:], strict=True):
        if day_of(int(first), tz) == day:
            return int(first), int(second)
    raise ValueError(f"no local day {day} in {tz}")  # unreachable: every date has a midnight in every zone


def day_of(t: int, tz: tzinfo) -> date:
    """The local date in `tz` of the instant `t` (unix s)."""
    return datetime.fromtimestamp(t, UTC).astimezone(tz).date()


def next_day(day: date) -> date:
    """The calendar day after `day`."""
    return day + timedelta(days=1)


def money_kinds(scope: str) -> frozenset[str]:
    """Line kinds that move money into or out of a portfolio of this scope (not performance)."""
    kinds = {LineKind.VIRTUAL_TX.value, LineKind.VENUE_SYNC.value}
    if scope in _SCOPES_WITH_ALLOCATION:
        kinds.add(LineKind.ALLOCATE.value)
    return frozenset(kinds)


def missing_day(day: date, tz: tzinfo, currency: str) -> DailyStats:
    """The record of a day whose closing value was never captured (the server was down at its midnight)."""
    start, end = day_bounds(day, tz)
    return DailyStats(day=day.isoformat(), start=start, end=end, currency=currency, status="missing")


class _Cost:
    """Average cost of one base currency bought with one quote currency: held amount and what it cost (ATTO)."""

    __slots__ = ("held", "cost")

    def __init__(self) -> None:
        self.held = 0
        self.cost = 0

    def buy(self, base: int, quote: int) -> None:
        self.held += base
        self.cost += quote

    def sell(self, base: int, quote: int) -> Decimal | None:
        """Realised result (quote ATTO) of selling `base` for `quote`; None when nothing was held at a known cost."""
        if self.held <= 0:
            return None
        sold = min(base, self.held)
        basis = Decimal(self.cost) * sold / self.held
        self.cost -= int(basis)
        self.held -= sold
        proceeds = Decimal(quote) * sold / base
        return proceeds - basis


def _realised_trades(
    lines: Sequence[DayLine], fills: Mapping[int, str], start_ns: int, end_ns: int
) -> tuple[dict[str, Decimal], dict[int, Decimal]]:
    """Spot realised per quote currency inside (start, end], and each closing fill's result (quote ATTO)."""
    legs: dict[int, list[DayLine]] = {}
    for line in lines:
        if line.kind == LineKind.TRADE.value and line.fill_id is not None and line.ts <= end_ns:
            legs.setdefault(line.fill_id, []).append(line)
    costs: dict[tuple[str, str], _Cost] = {}
    realised: dict[str, Decimal] = {}
    results: dict[int, Decimal] = {}
    for fill_id, fill_lines in legs.items():  # insertion order is line order: time order
        symbol = fills.get(fill_id)
        if symbol is None or ":" in symbol:  # unknown fill, or a perpetual's (its result is a pnl line)
            continue
        base_ccy, _, quote_ccy = symbol.partition("/")
        base = sum(line.movement for line in fill_lines if line.currency == base_ccy)
        quote = sum(line.movement for line in fill_lines if line.currency == quote_ccy)
        cost = costs.setdefault((base_ccy, quote_ccy), _Cost())
        if base > 0:
            cost.buy(base, -quote)
            continue
        if base == 0:
            continue
        result = cost.sell(-base, quote)
        if result is not None and fill_lines[0].ts > start_ns:
            realised[quote_ccy] = realised.get(quote_ccy, Decimal(0)) + result
            results[fill_id] = result
    return realised, results


def day_stats(
    *,
    day: date,
    tz: tzinfo,
    scope: str,
    currency: str,
    closing: Decimal,
    opening: Decimal | None,
    lines: Sequence[DayLine],
    fills: Iterable[DayFill],
    known_symbols: Mapping[int, str],
    rates: Mapping[str, Decimal],
    cash: frozenset[str] = frozenset(),
    peak_before: Decimal | None,
) -> DailyStats:
    """The day's figures. `lines`: every line of the scope up to the day's end (the history feeds average costs);
    `fills`: the fills inside the day; `known_symbols`: fill id -> symbol for every fill of `lines`;
    `rates`: display-currency value of one unit of every currency in `lines` whose amounts count (KeyError otherwise);
    `cash`: the currencies held as cash besides the display currency itself (coins pegged to it)."""
    start, end = day_bounds(day, tz)
    start_ns, end_ns = start * _NS, end * _NS
    rate = {**rates, currency: Decimal(1)}

    def value(amount: int | Decimal, ccy: str) -> Decimal:
        return Decimal(amount) * rate[ccy] / _ATTO

    flows = money_kinds(scope)
    deposits = withdrawals = fees = funding = booked = Decimal(0)
    held: dict[str, int] = {}
    cash_currencies = cash | {currency}
    perp_results: dict[int, Decimal] = {}
    for line in lines:
        if line.ts > end_ns:
            continue
        if line.currency in cash_currencies:
            held[line.currency] = held.get(line.currency, 0) + line.movement
        if line.ts <= start_ns or (line.kind not in _COUNTED and line.kind not in flows):
            continue
        amount = value(line.movement, line.currency)
        if line.kind in flows:
            if amount > 0:
                deposits += amount
            else:
                withdrawals -= amount
        elif line.kind == LineKind.FEE.value:
            fees -= amount
        elif line.kind == LineKind.FUNDING.value:
            funding += amount
        elif line.kind in (LineKind.PNL.value, LineKind.LIQUIDATION.value):
            booked += amount
            if line.kind == LineKind.PNL.value and line.fill_id is not None:
                perp_results[line.fill_id] = perp_results.get(line.fill_id, Decimal(0)) + amount
    spot, spot_results = _realised_trades(lines, known_symbols, start_ns, end_ns)
    booked += sum((value(amount, quote) for quote, amount in spot.items()), Decimal(0))
    realised = booked + funding - fees
    results = {**spot_results, **perp_results}
    day_fills = [f for f in fills if start_ns < f.ts <= end_ns]
    closing_fills = [f.id for f in day_fills if f.id in results]
    wins = sum(1 for fid in closing_fills if results[fid] > 0)
    pnl = None if opening is None else closing - opening - (deposits - withdrawals)
    held_cash = sum((value(amount, ccy) for ccy, amount in held.items()), Decimal(0))
    peak = closing if peak_before is None or closing > peak_before else peak_before
    return DailyStats(
        day=day.isoformat(), start=start, end=end, currency=currency, status="recorded",
        closing=closing, opening=opening, pnl=pnl, realised=realised,
        unrealised=None if pnl is None else pnl - realised,
        fees=fees, funding=funding, deposits=deposits, withdrawals=withdrawals,
        trades=len(day_fills), closing_trades=len(closing_fills), winning_trades=wins,
        win_rate=Decimal(wins) / len(closing_fills) if closing_fills else None,
        exposure=(closing - held_cash) / closing if closing > 0 else None,
        peak=peak, drawdown=(peak - closing) / peak if peak > 0 else Decimal(0),
    )
