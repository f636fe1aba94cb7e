"""Margin formulas of linear perpetuals, exact: brackets, initial and maintenance margin, liquidation and bankruptcy prices, funding.

Binance USD-M's documented rules, in integers (money in ATTO of the settle currency, prices in
price units, rates in 1e-8):

- initial margin = notional at the mark / leverage (rounded up);
- maintenance margin = notional x mmr - cum, from the notional's bracket (rounded up, never < 0);
- margin ratio = maintenance margin / margin balance (100% = liquidation), margin balance =
  wallet balance + unrealised PnL (isolated: the position's margin + its uPnL);
- liquidation price: the price P at which margin balance = maintenance margin, Binance's

      LP = (WB - TMM1 + UPNL1 + cumB + cumL + cumS - Side1BOTH x Position1BOTH x EP1BOTH
            - Position1LONG x EP1LONG + Position1SHORT x EP1SHORT)
         / (Position1BOTH x MMRB + Position1LONG x MMRL + Position1SHORT x MMRS
            - Side1BOTH x Position1BOTH - Position1LONG + Position1SHORT)

  solved exactly and rounded to the tick towards the mark (a long's up, a short's down: the
  position is liquidated no later than the exact price says);
- bankruptcy price: the price at which the margin, the PnL and the clearance fee on the
  closed notional add up to 0 (rounded so what is left is never negative);
- funding = size x contract size x mark x rate, paid by longs to shorts when the rate is
  positive (the payer's amount rounded up, the receiver's down);
- mark price without a feed mark: the median of best bid, best ask and last trade.
"""

from __future__ import annotations

from collections.abc import Sequence

from coinwire.core.instruments import FEE_SCALE, Instrument, LeverageBracket
from coinwire.core.numbers import ceil_div
from coinwire.core.positions import Position

__all__ = ["bracket_for", "initial_margin", "maintenance_margin", "margin_ratio", "liquidation_price", "bankruptcy_price",
           "mark_price", "funding_payment", "funding_times", "order_margin", "max_open_size", "LIQUIDATE_RATIO", "NO_BRACKET"]

LIQUIDATE_RATIO = FEE_SCALE  # a margin ratio (1e-8 units) at or above this liquidates
NO_BRACKET = LeverageBracket(floor=0, cap=0, max_leverage=1, mmr=0, maint_amount=0)  # an instrument without brackets


def bracket_for(inst: Instrument, notional: int) -> LeverageBracket:
    """The bracket whose [floor, cap) holds `notional` (ATTO); the last bracket beyond every cap."""
    for bracket in inst.brackets:
        if bracket.cap == 0 or notional < bracket.cap:
            return bracket
    return inst.brackets[-1] if inst.brackets else NO_BRACKET


def _notional(inst: Instrument, pos: Position, mark: int) -> int:
    return inst.contract_notional(mark, abs(pos.size))


def initial_margin(inst: Instrument, pos: Position, mark: int) -> int:
    """The position's initial margin at `mark`: notional / leverage, rounded up."""
    return ceil_div(_notional(inst, pos, mark), pos.leverage)


def order_margin(inst: Instrument, price: int, size: int, leverage: int) -> int:
    """What opening `size` at `price` needs: its initial margin (rounded up) plus the taker fee on it (the worst rate)."""
    notional = inst.contract_notional(price, size)
    return ceil_div(notional, leverage) + inst.fee_atto(notional, maker=inst.maker_fee > inst.taker_fee)


def max_open_size(inst: Instrument, price: int, funds: int, leverage: int, *, maker: bool = False) -> int:
    """The largest size on the step grid whose initial margin at `price` plus its fee fits in `funds` (ATTO).

    How a strategy sizes a position at `leverage` times its available margin, fee included:
    notional / leverage (rounded up) + the fee on the notional (`maker` or taker) <= funds.
    Capped by the instrument's `max_size`; 0 when not even one step fits.
    """
    if funds <= 0 or price <= 0 or leverage < 1:
        return 0
    unit = inst.contract_notional(price, inst.step)  # the notional of one step
    rate = inst.maker_fee if maker else inst.taker_fee
    # notional x (1/leverage + rate/1e8) <= funds, before rounding; then step down until exact
    steps = funds * leverage * FEE_SCALE // (unit * (FEE_SCALE + rate * leverage))
    if inst.max_size:
        steps = min(steps, inst.max_size // inst.step)
    while steps > 0:
        notional = unit * steps
        if ceil_div(notional, leverage) + inst.fee_atto(notional, maker) <= funds:
            return steps * inst.step
        steps -= 1
    return 0


def maintenance_margin(inst: Instrument, pos: Position, mark: int) -> int:
    """The position's maintenance margin at `mark`: notional x mmr - cum of its bracket, rounded up, at least 0."""
    notional = _notional(inst, pos, mark)
    if notional == 0:
        return 0
    bracket = bracket_for(inst, notional)
    return max(0, ceil_div(notional * bracket.mmr, FEE_SCALE) - bracket.maint_amount)


def margin_ratio(maintenance: int, margin_balance: int) -> int:
    """Maintenance margin / margin balance in 1e-8 (rounded up); a balance at or below 0 is past liquidation."""
    if maintenance <= 0:
        return 0
    if margin_balance <= 0:
        return LIQUIDATE_RATIO * 100
    return ceil_div(maintenance * FEE_SCALE, margin_balance)


def liquidation_price(
    inst: Instrument,
    legs: Position | Sequence[Position],
    *,
    wallet_balance: int,
    mark: int,
    other_mm: int = 0,
    other_upnl: int = 0,
) -> int | None:
    """Binance's liquidation price of one symbol's position (one-way) or legs (hedge), or None when no price liquidates.

    `wallet_balance`: the isolated margin (isolated) or the cross wallet balance (cross);
    `other_mm` and `other_upnl` (cross only): TMM1 and UPNL1, the maintenance margin and
    unrealised PnL of the pool's positions in other symbols. Each leg's MMR and cum are those
    of its notional's bracket at `mark`. Rounded to the tick towards the mark.
    """
    positions = [legs] if isinstance(legs, Position) else list(legs)
    numerator = wallet_balance - other_mm + other_upnl  # ATTO
    denominator = 0  # ATTO per price unit, x 1e8
    for pos in positions:
        if pos.size == 0:
            continue
        quantity = abs(pos.size)
        per_unit = inst.contract_notional(1, quantity)  # ATTO per price unit of this size
        bracket = bracket_for(inst, inst.contract_notional(mark, quantity))
        sign = 1 if pos.size > 0 else -1
        numerator += bracket.maint_amount - sign * pos.entry_cost
        denominator += per_unit * bracket.mmr - sign * per_unit * FEE_SCALE
    if denominator == 0 or not any(p.size for p in positions):
        return None
    # P = numerator * 1e8 / denominator (price units); round to the tick: up when the pool is liquidated by a fall
    falls = denominator < 0  # margin balance - maintenance falls as the price falls: a net long pool
    exact_num, exact_den = numerator * FEE_SCALE, denominator
    if exact_den < 0:
        exact_num, exact_den = -exact_num, -exact_den
    tick = inst.tick
    if falls:
        price = ceil_div(exact_num, exact_den * tick) * tick
    else:
        price = (exact_num // (exact_den * tick)) * tick
    if price <= 0:  # a long pool no positive price liquidates, or a short pool already past it at any price
        return None if falls else tick
    return price


def bankruptcy_price(inst: Instrument, pos: Position, margin: int) -> int:
    """The price at which `margin` + the PnL of closing `pos` - the clearance fee on that notional = 0.

    Long: P = (entry_cost - margin) / (k x (1 - fee)); short: P = (entry_cost + margin) / (k x (1 + fee)),
    k the notional of the size per price unit. Rounded to the tick so the remainder is never
    negative (a long's up, a short's down); at least one tick.
    """
    quantity = abs(pos.size)
    per_unit = inst.contract_notional(1, quantity)
    tick = inst.tick
    if pos.size > 0:
        numerator = (pos.entry_cost - margin) * FEE_SCALE
        denominator = per_unit * (FEE_SCALE - inst.liquidation_fee) * tick
        price = ceil_div(numerator, denominator) * tick if numerator > 0 else 0
    else:
        numerator = (pos.entry_cost + margin) * FEE_SCALE
        denominator = per_unit * (FEE_SCALE + inst.liquidation_fee) * tick
        price = numerator // denominator * tick
    return max(price, tick)


def mark_price(best_bid: int | None, best_ask: int | None, last: int | None) -> int | None:
    """The mark when the feed carries none: the median of best bid, best ask and last trade.

    With one of the three missing: the mid of the other two (rounded down); with two missing:
    the one left; with none: None.
    """
    known = sorted(p for p in (best_bid, best_ask, last) if p)
    if not known:
        return None
    if len(known) == 3:
        return known[1]
    return (known[0] + known[-1]) // 2


def funding_payment(inst: Instrument, pos: Position, mark: int, rate: int) -> int:
    """What the position receives (+) or pays (-) at one funding time: size x contract size x mark x rate.

    Longs pay shorts when `rate` (1e-8) is positive. The payer's amount is rounded up, the
    receiver's down: never more than the exact amount changes hands in the account's favour.
    """
    if pos.size == 0 or rate == 0:
        return 0
    exact = inst.contract_notional(mark, abs(pos.size)) * rate  # x 1e-8 ATTO
    pays = (pos.size > 0) == (rate > 0)
    magnitude = abs(exact)
    return -ceil_div(magnitude, FEE_SCALE) if pays else magnitude // FEE_SCALE


def funding_times(interval_s: int, start_ns: int, end_ns: int) -> list[int]:
    """Funding instants (ns) in (start_ns, end_ns]: the multiples of the interval since the epoch (00:00, 08:00, 16:00 UTC)."""
    if interval_s <= 0 or end_ns <= start_ns:
        return []
    step = interval_s * 1_000_000_000
    first = (start_ns // step + 1) * step
    return list(range(first, end_ns + 1, step))

