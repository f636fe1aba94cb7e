"""What a backtest of perpetuals adds to its report: funding, liquidations, leverage used, long and short exposure.

The venue tells the runtime of every step that changed a position (`PerpRecord.record`): an
order's fills, a funding time, a liquidation. From those this keeps, exactly (ATTO, price
units), the funding events with their rate and mark, the liquidations with their price and
clearance fee, each position's signed size and entry cost after every change (what the
equity curve values at each candle's close: wallet balance plus unrealised PnL), and the
largest effective leverage a change left the account at (total position notional at the mark
over the margin balance, Binance's "effective leverage").

Spot runs never create one of these records' events, and their reports carry none of its keys.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO_DECIMALS, units_to_str
from coinwire.core.orders import OrderType, Side
from coinwire.core.perp_execution import PerpStep
from coinwire.core.positions import unrealised_pnl
from coinwire.core.wallets import LineKind

if TYPE_CHECKING:
    from coinwire.engine.runtime import Runtime

__all__ = ["PerpRecord", "perp_report", "position_values", "upnl_at"]

_NS = 1_000_000_000
_FUNDING, _LIQUIDATION = LineKind.FUNDING, LineKind.LIQUIDATION


class PerpRecord:
    """The perpetual events of one run, in the order they happened."""

    __slots__ = ("funding", "liquidations", "points", "gaps", "max_leverage", "leverage")

    def __init__(self) -> None:
        self.funding: list[dict[str, Any]] = []
        self.liquidations: list[dict[str, Any]] = []
        # (ts, {symbol: (signed size, entry cost ATTO)}): the run's one-way positions after each change
        self.points: list[tuple[int, dict[str, tuple[int, int]]]] = []
        self.gaps: dict[str, list[tuple[int, int]]] = {}  # symbol -> funding times missing from its series (first, last ns)
        self.max_leverage = Decimal(0)
        self.leverage: dict[str, int] = {}  # symbol -> the highest leverage setting a position of it was opened with

    def __bool__(self) -> bool:
        return bool(self.points or self.gaps)

    def record(self, rt: Runtime, inst: Instrument, step: PerpStep, why: str, now: int) -> None:
        """One step of the venue (`why`: "order", "funding" or "liquidation") as report events."""
        if why == "funding":
            amount = sum(line.movement for line in step.lines if line.kind is _FUNDING)
            for pos in step.positions:
                self.funding.append({"time": now // _NS, "symbol": inst.symbol, "position_side": pos.side.value,
                                     "mark": inst.price_str(pos.mark) if pos.mark else None,
                                     "amount": units_to_str(amount, ATTO_DECIMALS)})
        for order in step.orders:
            if order.type is OrderType.LIQUIDATION:
                fills = [f for f in step.fills if f.order_id == order.id]
                fee = sum(line.movement for line in step.lines if line.kind is _LIQUIDATION)
                size = sum(f.size for f in fills)
                price = fills[0].price if fills else 0
                self.liquidations.append({"time": now // _NS, "symbol": inst.symbol, "position_side": order.position_side.value,
                                          "side": "long" if order.side is Side.SELL else "short",
                                          "size": inst.size_str(size), "price": inst.price_str(price) if price else None,
                                          "clearance_fee": units_to_str(-fee, ATTO_DECIMALS)})
        book = rt.ledger.positions
        account = rt.account_of(inst.exchange)
        current = dict(self.points[-1][1]) if self.points else {}
        for pos in book.of_account(account, inst.exchange):
            if pos.wallet_set_id == rt.wallet_set_id:
                current[pos.symbol] = (pos.size, pos.entry_cost)
                if pos.size:
                    self.leverage[pos.symbol] = max(self.leverage.get(pos.symbol, 0), pos.leverage)
        self.points.append((now, current))
        self._leverage(rt, inst, current)

    def _leverage(self, rt: Runtime, inst: Instrument, current: dict[str, tuple[int, int]]) -> None:
        """The account's effective leverage now: the positions' notional at the mark over wallet balance plus unrealised PnL."""
        notional = upnl = 0
        for symbol, (size, _) in current.items():
            if not size:
                continue
            market_inst = rt.instrument(symbol)
            if market_inst is None:
                continue
            pos = rt.ledger.positions.get(rt.account_of(market_inst.exchange), market_inst.exchange, symbol,
                                          wallet_set_id=rt.wallet_set_id)
            if pos is None:
                continue
            mark = rt.mark_units(market_inst)
            notional += market_inst.contract_notional(mark, abs(size))
            upnl += unrealised_pnl(pos, market_inst, mark)
        balance = rt.ledger.wallet(inst.exchange, inst.settle, rt.wallet_set_id).balance + upnl
        if notional and balance > 0:
            self.max_leverage = max(self.max_leverage, Decimal(notional) / Decimal(balance))


def position_values(rt: Runtime, record: PerpRecord, t: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Unrealised PnL of the run's perpetual positions at each close `t` (float, the quote), and each one's signed size there."""
    total = np.zeros(len(t))
    sizes: dict[str, np.ndarray] = {}
    if not record.points:
        return total, sizes
    ts = np.array([p[0] for p in record.points], dtype=np.int64)
    at = np.searchsorted(ts, t, side="right") - 1
    markets = rt.report_markets()
    for symbol in sorted({s for _, positions in record.points for s in positions}):
        market = markets.get(symbol)
        if market is None:
            continue
        inst = market.instrument
        base_per_unit = float(inst.contract_notional(10**inst.price_decimals, 1)) / 1e18  # base of one size unit
        size = np.array([p[1].get(symbol, (0, 0))[0] for p in record.points], dtype=np.float64)
        cost = np.array([p[1].get(symbol, (0, 0))[1] / 1e18 for p in record.points])
        signed_cost = np.where(size > 0, cost, -cost)
        held = np.where(at >= 0, size[np.clip(at, 0, None)], 0.0)
        paid = np.where(at >= 0, signed_cost[np.clip(at, 0, None)], 0.0)
        s = market.series
        idx = np.clip(np.searchsorted(s.close_ns, t, side="right") - 1, 0, s.n - 1)
        total += held * base_per_unit * s.close[idx] - paid
        sizes[symbol] = held
    return total, sizes


def upnl_at(rt: Runtime, record: PerpRecord, ts: int | None, price: Callable[[str], Decimal]) -> int:
    """The exact unrealised PnL (ATTO) of the positions held at `ts` (None: at the end), each valued at `price(symbol)`."""
    if not record.points:
        return 0
    at = len(record.points) - 1 if ts is None else bisect_right([p[0] for p in record.points], ts) - 1
    if at < 0:
        return 0
    total = 0
    for symbol, (size, cost) in record.points[at][1].items():
        inst = rt.instrument(symbol)
        if not size or inst is None:
            continue
        value = inst.contract_notional(int(price(symbol).scaleb(inst.price_decimals)), abs(size))
        total += value - cost if size > 0 else cost - value
    return total


def perp_report(rt: Runtime, record: PerpRecord, sizes: dict[str, np.ndarray]) -> dict[str, Any]:
    """The report's perpetual keys: funding paid and received (and every event), gaps, liquidations, leverage, exposure."""
    amounts = [Decimal(e["amount"]) for e in record.funding]
    n = max((len(v) for v in sizes.values()), default=0)
    long_ = np.zeros(n, dtype=bool)
    short = np.zeros(n, dtype=bool)
    for held in sizes.values():
        long_ |= held > 0
        short |= held < 0
    return {
        "funding_paid": str(-sum((a for a in amounts if a < 0), Decimal(0))),
        "funding_received": str(sum((a for a in amounts if a > 0), Decimal(0))),
        "funding_total": str(sum(amounts, Decimal(0))),
        "funding_events": len(record.funding),
        "funding": record.funding,
        "funding_gaps": {symbol: [[a // _NS, b // _NS] for a, b in gaps] for symbol, gaps in record.gaps.items() if gaps},
        "liquidations": record.liquidations,
        "liquidation_count": len(record.liquidations),
        "max_leverage_used": float(record.max_leverage),
        "leverage": dict(record.leverage),
        "long_exposure": float(np.mean(long_)) if n else 0.0,
        "short_exposure": float(np.mean(short)) if n else 0.0,
    }
