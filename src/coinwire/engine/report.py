"""A run's report: equity curve, drawdown, trades and the metrics traders compare runs by.

Computed after the run from the exact fills and balance changes, vectorised over the
candles: holdings change only at fills, so the equity at every close is the last holdings
valued at that close. Same inputs, same bytes: nothing here reads a clock or a random source.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from coinwire.core.funds import fee_in_quote
from coinwire.core.numbers import ATTO_DECIMALS, units_to_str
from coinwire.core.orders import Side
from coinwire.engine.runtime import Runtime

__all__ = ["build_report", "equity_curve", "YEAR_NS"]

YEAR_NS = 365 * 86400 * 1_000_000_000
_NS = 1_000_000_000


def equity_curve(rt: Runtime) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(close instants ns, equity in the run's quote, base holdings per symbol) at every candle of the clock series."""
    markets = list(rt.report_markets().values())
    clock = markets[0].series
    t = clock.close_ns
    points_ts = np.array([ts for ts, _ in rt.balance_points], dtype=np.int64)
    at = np.searchsorted(points_ts, t, side="right") - 1
    currencies = sorted({c for _, totals in rt.balance_points for c in totals})
    held = {c: np.array([totals.get(c, 0) / 1e18 for _, totals in rt.balance_points])[at] for c in currencies}
    equity = held.get(rt.quote, np.zeros(len(t))).copy()
    positions: dict[str, np.ndarray] = {}
    for market in markets:
        inst = market.instrument
        if inst.quote != rt.quote or inst.base not in held:
            continue
        s = market.series
        idx = np.clip(np.searchsorted(s.close_ns, t, side="right") - 1, 0, s.n - 1)
        equity += held[inst.base] * s.close[idx]
        positions[inst.symbol] = held[inst.base]
    return t, equity, positions


def _round_trips(rt: Runtime) -> tuple[int, int, list[float]]:
    """Entries (flat -> long), exits (long -> flat) counted per order, and each closed round trip's P&L."""
    entries = exits = 0
    pnl: list[float] = []
    position: dict[str, int] = {}
    cost: dict[str, float] = {}
    by_order: dict[int, list[Any]] = {}
    for fill in rt.fills:  # fills are in time order; an order's fills are contiguous per instant
        by_order.setdefault(fill.order_id, []).append(fill)
    for fills in by_order.values():
        symbol = fills[0].symbol
        before = pos = position.get(symbol, 0)
        for fill in fills:
            notional, fee = fill.notional / 1e18, fee_in_quote(rt.instrument(fill.symbol), fill) / 1e18
            if fill.side is Side.BUY:
                pos += fill.size
                cost[symbol] = cost.get(symbol, 0.0) + notional + fee
            else:
                pos -= fill.size
                cost[symbol] = cost.get(symbol, 0.0) - (notional - fee)
        position[symbol] = pos
        if before == 0 and pos > 0:
            entries += 1
        elif before > 0 and pos == 0:
            exits += 1
            pnl.append(-cost.pop(symbol, 0.0))
    return entries, exits, pnl


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def build_report(rt: Runtime, meta: dict[str, Any]) -> dict[str, Any]:
    """The report as one JSON-ready dict (the CLI's `--json` object)."""
    t, equity, positions = equity_curve(rt)
    first_market = next(iter(rt.report_markets().values()))
    initial = _initial_equity(rt)
    final_exact = _final_equity(rt)
    final = float(final_exact)
    returns = np.diff(np.r_[initial, equity]) / np.r_[initial, equity][:-1] if len(equity) else np.array([])
    tf_ns = first_market.series.tf_ns
    per_year = YEAR_NS / tf_ns
    std = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    mean = float(np.mean(returns)) if len(returns) else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if len(returns) else 0.0
    peak = np.maximum.accumulate(np.r_[initial, equity])
    drawdown = 1.0 - np.r_[initial, equity] / peak
    duration_ns = int(t[-1] - rt.start_ns) if len(t) else 0
    years = duration_ns / YEAR_NS
    total_return = final / initial - 1.0 if initial else 0.0
    entries, exits, pnl = _round_trips(rt)
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p <= 0]
    in_market = np.zeros(len(t), dtype=bool)
    for held in positions.values():
        in_market |= held > 0
    fees = sum(fee_in_quote(rt.instrument(f.symbol), f) for f in rt.fills)  # in the quote, whatever each was paid in
    trades = []
    for fill in rt.fills:
        inst = rt.instrument(fill.symbol)
        trades.append({"time": fill.ts // _NS, "symbol": fill.symbol, "side": fill.side.value, "price": inst.price_str(fill.price),
                       "size": inst.size_str(fill.size), "fee": units_to_str(fill.fee, ATTO_DECIMALS),
                       "fee_currency": fill.fee_currency or inst.quote})
    return {
        **meta,
        "start": int(rt.start_ns // _NS),
        "end": int(rt.end_ns // _NS),
        "quote": rt.quote,
        "initial_equity": initial,
        "final_equity": final,
        "final_equity_exact": str(final_exact),
        "total_return": total_return,
        "cagr": (final / initial) ** (1 / years) - 1.0 if years > 0 and initial and final > 0 else None,
        "sharpe": mean / std * math.sqrt(per_year) if std > 0 else None,
        "sortino": mean / downside * math.sqrt(per_year) if downside > 0 else None,
        "max_drawdown": float(np.max(drawdown)) if len(drawdown) else 0.0,
        "entries": entries,
        "exits": exits,
        "round_trips": len(pnl),
        "win_rate": _ratio(len(wins), len(pnl)),
        "profit_factor": _ratio(sum(wins), -sum(losses)) if losses and sum(losses) < 0 else None,
        "exposure": float(np.mean(in_market)) if len(in_market) else 0.0,
        "fees": float(Decimal(fees).scaleb(-ATTO_DECIMALS)),
        "fees_exact": units_to_str(fees, ATTO_DECIMALS),
        "orders": len(rt.tickets),
        "events": rt.events,
        "candles": int(sum(s.n for s in {id(m.series): m.series for m in rt.report_markets().values()}.values())),
        "trades": trades,
    }


def _price_at_start(rt: Runtime, symbol: str) -> Decimal:
    s = rt.report_markets()[symbol].series
    return Decimal(repr(float(s.open[0])))


def _value(rt: Runtime, totals: dict[str, int], price: Any) -> Decimal:
    total = Decimal(0)
    for currency, amount in totals.items():
        units = Decimal(amount).scaleb(-ATTO_DECIMALS)
        if currency == rt.quote:
            total += units
        elif amount:
            symbol = f"{currency}/{rt.quote}"
            if symbol in rt.report_markets():
                total += units * price(symbol)
    return total


def _initial_equity(rt: Runtime) -> float:
    return float(_value(rt, rt.balance_points[0][1], lambda sym: _price_at_start(rt, sym)))


def _final_equity(rt: Runtime) -> Decimal:
    def last_close(symbol: str) -> Decimal:
        return Decimal(repr(float(rt.report_markets()[symbol].series.close[-1])))

    return _value(rt, rt.balance_points[-1][1], last_close)
