"""A run's report: equity curve, drawdown, trades and the metrics traders compare runs by.

Computed after the run from the exact fills and balance changes, vectorised over the
candles: holdings change only at fills, so the equity at every close is the last holdings
valued at that close. Same inputs, same bytes: nothing here reads a clock or a random source.

The report carries bounded series for charts: `equity`, at most `MAX_EQUITY_POINTS` exact
points of the curve (picked so every bucket's low, high and deepest drawdown survive, and
with them the peak that drawdown is measured from), and `prices`, each market's candles
rolled up to the first common timeframe that gives at most `MAX_PRICE_BARS` bars.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from coinwire.core.errors import NotFound
from coinwire.core.funds import fee_in_quote
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO_DECIMALS, units_to_str
from coinwire.core.orders import Side
from coinwire.engine.perp_report import perp_report
from coinwire.engine.portfolio_report import portfolio_block
from coinwire.engine.runtime import Runtime
from coinwire.engine.valuation import holdings_value, plain_decimal, upnl_value, value_at, values_at
from coinwire.history.candles import timeframe_seconds

__all__ = ["build_report", "equity_curve", "equity_points", "keep_extremes", "price_bars", "MAX_EQUITY_POINTS",
           "MAX_PRICE_BARS", "YEAR_NS"]

YEAR_NS = 365 * 86400 * 1_000_000_000
MAX_EQUITY_POINTS = 2000
MAX_PRICE_BARS = 1000
_NS = 1_000_000_000
_CHART_TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "3d", "1w")


def equity_curve(rt: Runtime) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(close instants ns, equity in the run's quote, base holdings per symbol) at every candle of the clock series."""
    t = next(iter(rt.report_markets().values())).series.close_ns
    equity, positions = values_at(rt, t)
    return t, equity, positions


def _instrument(rt: Runtime, symbol: str, exchange: str | None = None) -> Instrument:
    """The instrument of a market the run traded (every fill's market has one)."""
    inst = rt.instrument(symbol, exchange)
    if inst is None:
        raise NotFound("unknown_symbol", f"no market {symbol} in this run")
    return inst


def _round_trips(rt: Runtime) -> tuple[int, int, list[float]]:
    """Entries (flat -> long or short), exits (back to flat) counted per order, and each closed round trip's P&L.

    A run funded with some of a market's base starts long: that holding, valued at the first
    open, is the position its first exit closes (otherwise a strategy that sells it all and
    then trades in and out would never be flat by the fills alone, and count no trips).
    """
    entries = exits = 0
    pnl: list[float] = []
    position: dict[str, int] = {}
    cost: dict[str, float] = {}
    seeded: set[str] = set()
    for symbol, market in rt.report_markets().items():
        inst = market.instrument
        atto = rt.balance_points[0][1].get(inst.base, 0) if rt.balance_points else 0
        units = atto // 10 ** (ATTO_DECIMALS - inst.size_decimals)
        if units > 0 and inst.quote == rt.quote and inst.base not in seeded:
            seeded.add(inst.base)
            position[symbol] = units
            cost[symbol] = atto / 1e18 * float(_price_at_start(rt, symbol))
    by_order: dict[int, list[Any]] = {}
    for fill in rt.fills:  # fills are in time order; an order's fills are contiguous per instant
        by_order.setdefault(fill.order_id, []).append(fill)
    for fills in by_order.values():
        symbol = fills[0].symbol
        before = pos = position.get(symbol, 0)
        for fill in fills:
            notional, fee = fill.notional / 1e18, fee_in_quote(_instrument(rt, fill.symbol, fill.exchange), fill) / 1e18
            if fill.side is Side.BUY:
                pos += fill.size
                cost[symbol] = cost.get(symbol, 0.0) + notional + fee
            else:
                pos -= fill.size
                cost[symbol] = cost.get(symbol, 0.0) - (notional - fee)
        position[symbol] = pos
        if before == 0 and pos != 0:  # a perpetual's short is a position too (the cash flows read the same)
            entries += 1
        elif before != 0 and pos == 0:
            exits += 1
            pnl.append(-cost.pop(symbol, 0.0))
    return entries, exits, pnl


def _returns(values: np.ndarray) -> np.ndarray:
    """Per-candle returns; 0 after an equity of 0 (a perpetual account wiped out by its liquidation has nothing left to grow)."""
    before = values[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before != 0, np.diff(values) / np.where(before != 0, before, 1.0), 0.0)


def _cagr(initial: float, final: float, years: float) -> float | None:
    """The yearly growth rate; None when it has no value, or no float holds it (a gain over a few seconds, compounded)."""
    if not (years > 0 and initial and final > 0):
        return None
    try:
        return float((final / initial) ** (1 / years) - 1.0)
    except OverflowError:
        return None


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def build_report(rt: Runtime, meta: dict[str, Any]) -> dict[str, Any]:
    """The report as one JSON-ready dict (the CLI's `--json` object)."""
    t, equity, positions = equity_curve(rt)
    first_market = next(iter(rt.report_markets().values()))
    initial = _initial_equity(rt)
    final_exact = _final_equity(rt)
    final = float(final_exact)
    returns = _returns(np.r_[initial, equity]) if len(equity) else np.array([])
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
        in_market |= held != 0  # a short perpetual position is in the market too
    fees = sum(fee_in_quote(_instrument(rt, f.symbol, f.exchange), f) for f in rt.fills)  # in the quote, whatever each was paid in
    trades = []
    for fill in rt.fills:
        inst = _instrument(rt, fill.symbol, fill.exchange)
        trade = {"time": fill.ts // _NS, "exchange": fill.exchange, "symbol": fill.symbol, "side": fill.side.value,
                 "price": inst.price_str(fill.price), "size": inst.size_str(fill.size), "fee": units_to_str(fill.fee, ATTO_DECIMALS),
                 "fee_currency": fill.fee_currency or inst.quote}
        if inst.is_perpetual:
            trade["position_side"] = fill.position_side.value
        trades.append(trade)
    perpetual = {s for s, m in rt.report_markets().items() if m.instrument.is_perpetual}
    extra = perp_report(rt, rt.perp, {s: h for s, h in positions.items() if s in perpetual}) if perpetual else {}
    return {
        **meta,
        "start": int(rt.start_ns // _NS),
        "end": int((rt.end_ns or rt.now_ns()) // _NS),  # a running run's report ends now
        "quote": rt.quote,
        "initial_equity": initial,
        "final_equity": final,
        "final_equity_exact": str(final_exact),
        "total_return": total_return,
        "cagr": _cagr(initial, final, years),
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
        "equity_sampled_from": len(equity) + 1,
        "equity": equity_points(rt, t, equity, initial),
        "prices": price_bars(rt, {f.symbol for f in rt.fills}),
        "portfolio": portfolio_block(rt),
        "signals": [{"time": ts // _NS, "name": name, "value": value} for ts, name, value in rt.signals],
        **extra,
        **({"rule_firings": list(rt.rules.firings)} if rt.rules is not None else {}),
    }


def keep_extremes(values: np.ndarray, limit: int) -> np.ndarray:
    """Indices of `values` to draw with at most `limit` points, the first and last always among them.

    Each of `(limit - 2) // 4` buckets keeps its lowest and highest point, its deepest
    drawdown and the running peak that drawdown is measured from: a drawdown derived from
    the kept points alone never exceeds the true one and equals it at its deepest.
    """
    n = len(values)
    if n <= limit:
        return np.arange(n)
    peak = np.maximum.accumulate(values)
    at_peak = np.maximum.accumulate(np.where(values >= peak, np.arange(n), 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peak > 0, 1.0 - values / peak, 0.0)
    edges = np.linspace(0, n, max(1, (limit - 2) // 4) + 1).astype(np.int64)
    keep = [0, n - 1]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        deepest = lo + int(np.argmax(drawdown[lo:hi]))
        keep += [lo + int(np.argmin(values[lo:hi])), lo + int(np.argmax(values[lo:hi])), deepest, int(at_peak[deepest])]
    return np.unique(np.array(keep, dtype=np.int64))


def equity_points(rt: Runtime, t: np.ndarray, equity: np.ndarray, initial: float,
                  limit: int = MAX_EQUITY_POINTS) -> list[list[Any]]:
    """`[[unix seconds, equity in the quote as an exact decimal string], ...]`: the start, then candle closes (bounded).

    The float curve only chooses which points to keep; each kept point is valued again
    exactly, like `final_equity_exact`: the holdings then, at that candle's close.
    """
    keep = keep_extremes(np.r_[initial, equity], limit)
    out: list[list[Any]] = []
    for i in keep.tolist():
        if i == 0:
            out.append([int(rt.start_ns // _NS), plain_decimal(_start_value(rt))])
            continue
        ts = int(t[i - 1])
        out.append([ts // _NS, plain_decimal(value_at(rt, ts))])
    return out


def price_bars(rt: Runtime, traded: set[str], limit: int = MAX_PRICE_BARS) -> dict[str, dict[str, Any]]:
    """Candles of the traded markets (the first market when none traded) for a price chart with the trades on it.

    `{symbol: {timeframe, candles: [[open time s, open, high, low, close, volume], ...]}}`, like
    the OHLCV API: each market rolled up to the first chart timeframe that gives at most `limit` bars.
    """
    markets = rt.report_markets()
    symbols = [s for s in markets if s in traded] or list(markets)[:1]
    out: dict[str, dict[str, Any]] = {}
    for symbol in symbols:
        s = markets[symbol].series
        if s.n:
            span = int(s.close_ns[-1] - s.time_ns[0])
            for tf in _CHART_TIMEFRAMES:
                wide = timeframe_seconds(tf) * _NS
                if wide >= s.tf_ns and wide % s.tf_ns == 0 and (span // wide < limit or tf == _CHART_TIMEFRAMES[-1]):
                    if wide > s.tf_ns:
                        s = s.rollup(tf)
                    break
        out[symbol] = {"timeframe": s.timeframe, "candles": [
            [int(s.time_ns[i] // _NS), float(s.open[i]), float(s.high[i]), float(s.low[i]), float(s.close[i]), float(s.volume[i])]
            for i in range(s.n)]}
    return out


def _price_at_start(rt: Runtime, symbol: str) -> Decimal:
    s = rt.report_markets()[symbol].series
    return Decimal(repr(float(s.open[0])))


def _start_value(rt: Runtime) -> Decimal:
    """The run's funds at its first instant, each base at its market's first open."""
    return holdings_value(rt, rt.balance_points[0][1], lambda sym: _price_at_start(rt, sym))


def _initial_equity(rt: Runtime) -> float:
    return float(_start_value(rt))


def _final_equity(rt: Runtime) -> Decimal:
    def last_close(symbol: str) -> Decimal:
        return Decimal(repr(float(rt.report_markets()[symbol].series.close[-1])))

    return holdings_value(rt, rt.balance_points[-1][1], last_close) + upnl_value(rt, None, last_close)
