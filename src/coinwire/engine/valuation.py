"""A run's holdings valued in its quote at any instant of its clock: exactly (Decimal) or for many instants at once (float).

One rule for every series the report derives (equity points, final equity, portfolio
candles): at instant `ts` the run holds the balances of its last balance point at or
before `ts`, and each market is priced at the close of its newest candle closed at or
before `ts` (its first open before any closed), perpetual positions adding their
unrealised PnL at that price. The float form only ranks and plots; every figure the
report prints as a decimal string is valued again exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from decimal import Decimal

import numpy as np

from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.engine.perp_report import position_values, upnl_at
from coinwire.engine.runtime import Runtime

__all__ = ["holdings_value", "plain_decimal", "price_at", "quantized_values_at", "upnl_value", "value_at", "values_at"]

Price = Callable[[str], Decimal]


def price_at(rt: Runtime, symbol: str, ts: int) -> Decimal:
    """The exact price of `symbol` at `ts`: its newest close at or before `ts`, its first open before any."""
    s = rt.report_markets()[symbol].series
    i = int(np.searchsorted(s.close_ns, ts, side="right")) - 1
    return Decimal(repr(float(s.open[0] if i < 0 else s.close[i])))


def holdings_value(rt: Runtime, totals: dict[str, int], price: Price) -> Decimal:
    """Balances (ATTO per currency) in the run's quote: the quote at face value, each base at `price("BASE/QUOTE")`."""
    total = Decimal(0)
    markets = rt.report_markets()
    for currency, amount in totals.items():
        units = Decimal(amount).scaleb(-ATTO_DECIMALS)
        if currency == rt.quote:
            total += units
        elif amount:
            symbol = f"{currency}/{rt.quote}"
            if symbol in markets:
                total += units * price(symbol)
    return total


def upnl_value(rt: Runtime, ts: int | None, price: Price) -> Decimal:
    """Perpetual positions' unrealised PnL at `ts` (None: the end) valued at `price(symbol)`: 0 in a spot run."""
    record = rt.perp
    return Decimal(upnl_at(rt, record, ts, price)).scaleb(-ATTO_DECIMALS) if record else Decimal(0)


def value_at(rt: Runtime, ts: int) -> Decimal:
    """The run's exact equity at `ts`: the balances after every event stamped at or before it, at the prices then."""
    points = rt.balance_points
    at = max(0, bisect_right(points, ts, key=lambda p: p[0]) - 1)

    def price(symbol: str) -> Decimal:
        return price_at(rt, symbol, ts)

    return holdings_value(rt, points[at][1], price) + upnl_value(rt, ts, price)


def values_at(rt: Runtime, t: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(equity in the run's quote, base holdings per symbol) at each instant of the sorted `t` (ns), as floats."""
    points_ts = np.array([ts for ts, _ in rt.balance_points], dtype=np.int64)
    at = np.clip(np.searchsorted(points_ts, t, side="right") - 1, 0, None)
    currencies = sorted({c for _, totals in rt.balance_points for c in totals})
    held = {c: np.array([totals.get(c, 0) / 1e18 for _, totals in rt.balance_points])[at] for c in currencies}
    equity = held.get(rt.quote, np.zeros(len(t))).copy()
    positions: dict[str, np.ndarray] = {}
    markets = list(rt.report_markets().values())
    clock = markets[0].series
    for market in markets:
        inst = market.instrument
        if inst.quote != rt.quote or inst.base not in held:
            continue
        s = market.series
        if s is clock and t is s.close_ns:  # the clock's own closes: no search (500,000 bars cost ~10 ms of binary search)
            equity += held[inst.base] * s.close
        else:
            idx = np.searchsorted(s.close_ns, t, side="right") - 1
            equity += held[inst.base] * np.where(idx >= 0, s.close[np.clip(idx, 0, s.n - 1)], s.open[0])
        positions[inst.symbol] = held[inst.base]
    record = rt.perp
    if record:
        upnl, sizes = position_values(rt, record, t)
        equity += upnl
        positions.update(sizes)
    return equity, positions


def plain_decimal(value: Decimal) -> str:
    """A decimal as plain digits (no exponent, no trailing zeros): `1E+4` -> `10000`, `0E-18` -> `0`."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def quantized_values_at(rt: Runtime, t: np.ndarray, decimals: int) -> np.ndarray | None:
    """`value_at` for every instant of the sorted `t` at once, as int64 multiples of 10**-decimals (half-even), or None.

    Exact without a Decimal per instant, for a spot run whose prices lie on their instruments'
    grids (a backtest's always do: `backtest.instrument_for`), where a price's units times
    10**-price_decimals is exactly its `Decimal(repr(price))`: a float estimate of every value
    with a proven error bound rounds to the exact result unless it lies within that bound of a
    half unit, and only those few (and any too large for a float's 52 bits) are valued again in
    Python integers. None for a run with perpetual positions or a price off its grid: the caller
    values those with `value_at`.
    """
    if rt.perp:
        return None
    points = rt.balance_points
    points_ts = np.array([ts for ts, _ in points], dtype=np.int64)
    at = np.clip(np.searchsorted(points_ts, t, side="right") - 1, 0, None)
    markets = [m for m in rt.report_markets().values()
               if m.instrument.quote == rt.quote and any(totals.get(m.instrument.base) for _, totals in points)]
    scale = max((m.instrument.price_decimals for m in markets), default=0)
    step = 10 ** (ATTO_DECIMALS + scale - min(decimals, ATTO_DECIMALS))
    # per balance point, exact ints at 10**-(ATTO + scale) and their correctly rounded floats in result units
    quote = [totals.get(rt.quote, 0) * 10**scale for _, totals in points]
    terms: list[tuple[list[int], np.ndarray]] = []
    estimate = np.array([q / step for q in quote])[at]
    size = np.abs(estimate)
    for market in markets:
        inst, s = market.instrument, market.series
        idx = np.searchsorted(s.close_ns, t, side="right") - 1
        price = np.where(idx >= 0, s.close[np.clip(idx, 0, max(0, s.n - 1))], s.open[0])
        units = np.round(price * 10.0**inst.price_decimals)
        if not np.array_equal(units / 10.0**inst.price_decimals, price) or np.any(np.abs(units) >= 2**53):
            return None
        held = [totals.get(inst.base, 0) * 10 ** (scale - inst.price_decimals) for _, totals in points]
        term = np.array([h / step for h in held])[at] * units
        estimate += term
        size += np.abs(term)
        terms.append((held, units))
    # each rounding (a division, a product, a sum) errs by at most 2**-53 of `size`: 3 per market, 2 more, doubled
    bound = size * (6 * len(markets) + 4) * 2.0**-53 + 2.0**-40  # + an absolute slack for `estimate - floor` below 1
    doubt = (np.abs(estimate - np.floor(estimate) - 0.5) <= bound) | (size >= 2.0**50)
    out = np.rint(np.where(doubt, 0.0, estimate)).astype(np.int64)  # a doubted one may not even fit an int64
    again = np.flatnonzero(doubt)  # 424 of the SMA benchmark's 500,000 values (10,000 USDT: bounds ~1e-3 units)
    if len(again):
        total = np.array(quote, dtype=object)[at[again]]
        for held, units in terms:
            total = total + np.array(held, dtype=object)[at[again]] * units[again].astype(np.int64).astype(object)
        whole, rest = total // step, total % step
        up = (rest * 2 > step) | ((rest * 2 == step) & (whole % 2 == 1))
        out[again] = np.array((whole + up.astype(np.int64)).tolist(), dtype=np.int64)
    return np.asarray(out, dtype=np.int64)
