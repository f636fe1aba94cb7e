"""An account's past value rebuilt from its history: holdings walked back from today's balances, valued at past prices.

Why backwards: the venue tells us today's balances and the events that led to them (trades,
deposits, withdrawals), not what the account held when its history begins. Walking every
event back from today's balances gives the holdings before each event exactly, and needs no
guess about a start; events the venue did not report (transfers between its own wallets,
airdrops) show up as holdings before the first event instead of being invented.

The rules, stated once:

- holdings at an instant are the holdings after every event stamped at or before it;
- a past price at an instant is the close of the last candle that had closed by then (its
  close time, open plus timeframe, at or before the instant): no candle is looked into before
  it closed, and between sparse candles the last close holds;
- samples are taken at every candle close and after every group of events stamped at the
  same instant, and fed to core.portfolio's CandleBuilder, so the buckets follow the same rules
  at an instant as the live tracker's (a close at a boundary, a fill at a boundary counted in
  the bucket that ends there, flat buckets between prices);
- a trade's volume is its cost in the quote times the quote's price in the value currency
  (1 when the quote is that currency); an asset with no price at an instant makes that
  sample unvalued (skipped; the trade's volume still counts when its quote is priced);
- only assets in `prices` (and the value currency itself) are valued: the caller leaves out,
  and reports, assets it found no market for;
- in a display currency other than the value currency (`rate`: one unit of the value currency
  in the display currency over time, a step series like the prices), every value and volume is
  the value-currency amount times the rate at the same instant (read at the price instants and
  the events, not sampled on its own: a per-minute rate would multiply the work by the minutes);
  an instant before the rate's first point is unvalued, and a bucket opening before it is not
  returned (its value would be a guess);
- a user's total at a past bucket (`user_totals`) is one account's rebuilt candle plus every
  other account of the user whose value there is known exactly: a stored flat candle (a
  constant, so the sum's high and low are exact) or nothing at all (an account opened after the
  bucket ended, not a live one whose past is the venue's); any other bucket is left out.

Exact Decimals throughout; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import groupby
from typing import Final

import msgspec

from coinwire.core.portfolio import BUCKET_S, CandleBuilder, PortfolioCandle, Unpriced, bucket_end, value_of

__all__ = [
    "OtherAccount",
    "PastTrade",
    "PastTransfer",
    "PriceSeries",
    "changes_of",
    "holdings_at",
    "rebuild_history",
    "start_holdings",
    "user_totals",
]

_MS_NS: Final = 1_000_000
_S_NS: Final = 1_000_000_000
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)


class PastTrade(msgspec.Struct, frozen=True):
    """One fill of the account as the venue reports it: `amount` of base for `cost` of quote, `fee` in `fee_asset`."""

    ts_ms: int
    base: str
    quote: str
    buy: bool
    amount: Decimal
    cost: Decimal
    fee: Decimal = _ZERO
    fee_asset: str = ""


class PastTransfer(msgspec.Struct, frozen=True):
    """A deposit (`amount` > 0) or a withdrawal (`amount` < 0, its fee included) that completed at `ts_ms`."""

    ts_ms: int
    asset: str
    amount: Decimal


Event = PastTrade | PastTransfer


def changes_of(event: Event) -> list[tuple[str, Decimal]]:
    """How an event changes the holdings: (asset, signed amount) pairs."""
    if isinstance(event, PastTransfer):
        return [(event.asset, event.amount)]
    sign = 1 if event.buy else -1
    out = [(event.base, sign * event.amount), (event.quote, -sign * event.cost)]
    if event.fee and event.fee_asset:
        out.append((event.fee_asset, -event.fee))
    return out


def _apply(holdings: dict[str, Decimal], event: Event, sign: int = 1) -> None:
    for asset, amount in changes_of(event):
        holdings[asset] = holdings.get(asset, _ZERO) + sign * amount


def start_holdings(now: Mapping[str, Decimal], events: Iterable[Event]) -> dict[str, Decimal]:
    """The holdings before every one of `events`, given the holdings `now` after all of them."""
    holdings = dict(now)
    for event in events:
        _apply(holdings, event, -1)
    return holdings


def holdings_at(now: Mapping[str, Decimal], events: Sequence[Event], ts_ms: int) -> dict[str, Decimal]:
    """The holdings after every event stamped at or before `ts_ms` (today's balances minus what came after)."""
    return start_holdings(now, (e for e in events if e.ts_ms > ts_ms))


class PriceSeries:
    """One asset's past prices in the value currency: candle closes by close time (unix s), oldest first."""

    __slots__ = ("times", "closes")

    def __init__(self, closes: Iterable[tuple[int, Decimal]]) -> None:
        pairs = sorted(closes)
        self.times = [t for t, _ in pairs]
        self.closes = [p for _, p in pairs]

    def at(self, ts_ns: int) -> Decimal | None:
        """The close of the last candle closed at or before `ts_ns`; None before the first one closed."""
        index = bisect_right(self.times, ts_ns // _S_NS) - 1
        return self.closes[index] if index >= 0 else None


def _prices_at(prices: Mapping[str, PriceSeries], ts_ns: int) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for asset, series in prices.items():
        price = series.at(ts_ns)
        if price is not None:
            out[asset] = price
    return out


def _value(holdings: Mapping[str, Decimal], prices: Mapping[str, PriceSeries], currency: str, ts_ns: int,
           rate: PriceSeries | None = None) -> Decimal | None:
    valued = {a: q for a, q in holdings.items() if a == currency or a in prices}
    factor = _ONE if rate is None else rate.at(ts_ns)
    if factor is None:
        return None
    try:
        return value_of(valued, _prices_at(prices, ts_ns), currency) * factor
    except Unpriced:
        return None


def _notional(trade: PastTrade, prices: Mapping[str, PriceSeries], currency: str, ts_ns: int,
              rate: PriceSeries | None = None) -> Decimal:
    factor = _ONE if rate is None else rate.at(ts_ns)
    if factor is None:
        return _ZERO
    if trade.quote == currency:
        return trade.cost * factor
    series = prices.get(trade.quote)
    price = series.at(ts_ns) if series is not None else None
    return trade.cost * price * factor if price is not None else _ZERO


def rebuild_history(
    now: Mapping[str, Decimal],
    events: Iterable[Event],
    prices: Mapping[str, PriceSeries],
    currency: str,
    end_s: int,
    rate: PriceSeries | None = None,
) -> list[PortfolioCandle]:
    """The 15-minute value candles from the bucket of the first event to the last boundary at or before `end_s`.

    `now`: the holdings after every event (today's balances); `prices`: each valued asset's
    closes in `currency`; `end_s`: how far prices reach (usually the last candle's close);
    `rate`: one `currency` in the display currency over time (None: values stay in `currency`).
    Every bucket returned is complete: the whole of it is known from the history.
    """
    ordered = sorted(events, key=lambda e: e.ts_ms)
    if not ordered:
        return []
    holdings = start_holdings(now, ordered)
    start_s = bucket_end(ordered[0].ts_ms * _MS_NS) - BUCKET_S  # the boundary before the first event's bucket
    last_s = end_s - end_s % BUCKET_S
    if last_s <= start_s or (rate is not None and not rate.times):
        return []
    start_value = _value(holdings, prices, currency, start_s * _S_NS, rate)
    builder = CandleBuilder(start_value if start_value is not None else _ZERO, start_s * _S_NS)
    closed: list[PortfolioCandle] = []
    instants = sorted({t for series in prices.values() for t in series.times if start_s < t <= last_s})
    groups = [(ts_ms * _MS_NS, list(group)) for ts_ms, group in groupby(ordered, key=lambda e: e.ts_ms)]
    price_index = 0
    for ts_ns, group in groups:
        if ts_ns > last_s * _S_NS:
            break
        while price_index < len(instants) and instants[price_index] * _S_NS < ts_ns:
            closed += _sample(builder, holdings, prices, currency, instants[price_index] * _S_NS, rate)
            price_index += 1
        notional = _ZERO
        for event in group:
            _apply(holdings, event)
            if isinstance(event, PastTrade):
                notional += _notional(event, prices, currency, ts_ns, rate)
        closed += builder.trade(ts_ns, notional, _value(holdings, prices, currency, ts_ns, rate))
    for instant in instants[price_index:]:
        closed += _sample(builder, holdings, prices, currency, instant * _S_NS, rate)
    closed += builder.close_until(last_s * _S_NS)
    if rate is not None:  # a bucket opening before the rate's first point would hold a guess
        closed = [c for c in closed if c.open_time >= rate.times[0]]
    return closed


def _sample(builder: CandleBuilder, holdings: Mapping[str, Decimal], prices: Mapping[str, PriceSeries], currency: str,
            ts_ns: int, rate: PriceSeries | None) -> list[PortfolioCandle]:
    value = _value(holdings, prices, currency, ts_ns, rate)
    return builder.sample(ts_ns, value) if value is not None else builder.close_until(ts_ns - 1)


class OtherAccount(msgspec.Struct, frozen=True):
    """Another account counted in the same user total: its stored candles by open time (unix s), and when it was opened
    (unix s; None: a live account, whose past is the venue's and not known here)."""

    candles: Mapping[int, PortfolioCandle]
    opened_s: int | None


def user_totals(own: Sequence[PortfolioCandle], others: Sequence[OtherAccount]) -> list[PortfolioCandle]:
    """The user's total at each of `own`'s buckets where every other account's part is known exactly, else left out.

    Another account's part is its stored candle when that is flat (open = high = low = close: a
    constant added keeps the sum's high and low exact; its volume adds), nothing when it was opened
    at or after the bucket's end; a candle that moved, a `missing` one, or no candle of an account
    that existed then make the total unknown.
    """
    out: list[PortfolioCandle] = []
    for candle in own:
        extra, volume, known = _ZERO, _ZERO, True
        for other in others:
            theirs = other.candles.get(candle.open_time)
            if theirs is not None and theirs.status != "missing":
                if not theirs.open == theirs.high == theirs.low == theirs.close:
                    known = False
                    break
                extra += theirs.close
                volume += theirs.volume
            elif other.opened_s is None or other.opened_s < candle.close_time:
                known = False
                break
        if known:
            out.append(PortfolioCandle(candle.open_time, candle.open + extra, candle.high + extra, candle.low + extra,
                                       candle.close + extra, candle.volume + volume, candle.status))
    return out
