"""One order path for perpetuals in every mode: check, hold margin, match, settle into positions; funding; liquidation.

What `core.execution` is for spot, this is for linear perpetuals; the paper gateway, the
simulated venue and the live venue call it (a venue branches once, on `inst.is_perpetual`).
Money moves on the settle currency's wallet of the order's partition (account, wallet set):

- an order holds the initial margin of the part that opens exposure, plus its worst fee
  (`margin.order_margin`, at the higher of its price and the mark); closing needs no margin;
- a fill moves that hold to the position's margin hold (`Position.hold_id`): its isolated
  margin, or for cross the initial margin at entry (entry cost / leverage); a reduction
  realises PnL on the entry cost it removes (a `pnl` line) and frees margin in proportion;
  the fee is a `fee` line; one-way positions flip through zero, hedge legs never do;
- funding is a `funding` line per open position (isolated: taken from, or added to, its margin);
- a position (isolated) or a pool of cross positions whose margin ratio reaches 100% at the
  mark is liquidated: a LIQUIDATION order and fill per position, the PnL realised, and what
  the margin had left taken as the clearance fee (a `liquidation` line), so the user loses
  that margin and never more. Isolated positions close at the bankruptcy price (clearance fee
  included), cross positions at the mark.

Every command validates first and raises a stable code before changing anything.
"""

from __future__ import annotations

import msgspec

from coinwire.core.errors import DomainError, InvalidInput, NotFound
from coinwire.core.execution import child_type
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.margin import (
    bankruptcy_price,
    bracket_for,
    funding_payment,
    initial_margin,
    order_margin,
)
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import atto_to_str, ceil_div
from coinwire.core.orders import DoneReason, Fill, InvalidTransition, Order, OrderStatus, OrderType, PositionSide, Side
from coinwire.core.position_risk import PoolState, PositionRisk, available_margin, liquidation_reached, pool_of, pool_state, position_risk
from coinwire.core.positions import MarginMode, Position, PositionBook, PositionSettings, unrealised_pnl
from coinwire.core.wallets import LineKind, WalletLine

__all__ = ["PerpStep", "place_perp_order", "accept_perp_order", "settle_perp_fills", "fire_perp", "release_perp_hold", "settle_funding",
           "liquidations", "set_leverage", "set_margin_mode", "set_hedge_mode", "adjust_margin", "close_position_order",
           "available_margin", "pool_state", "PoolState", "position_risk", "PositionRisk"]

_BUY, _SELL = Side.BUY, Side.SELL
_PNL, _FEE, _FUNDING, _LIQUIDATION = LineKind.PNL, LineKind.FEE, LineKind.FUNDING, LineKind.LIQUIDATION


class PerpStep:
    """What one perpetual command did: its fills, ledger lines, the positions it changed (new state), extra orders."""

    __slots__ = ("fills", "lines", "positions", "orders")

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.lines: list[WalletLine] = []
        self.positions: list[Position] = []
        self.orders: list[Order] = []

    def touched(self, pos: Position) -> None:
        if all(p is not pos for p in self.positions):
            self.positions.append(pos)

    def extend(self, other: PerpStep) -> PerpStep:
        self.fills += other.fills
        self.lines += other.lines
        for pos in other.positions:
            self.touched(pos)
        self.orders += other.orders
        return self


# --- orders -------------------------------------------------------------------------------------
def place_perp_order(ledger: Ledger, engine: MatchingEngine, order: Order, ts: int, *, mark: int) -> PerpStep:
    """Accept a pending perpetual order (checks, margin hold), match it now and settle its fills into the position."""
    step = PerpStep()
    step.lines += accept_perp_order(ledger, engine, order, ts, mark=mark)
    fills = engine.submit(order, ts)
    return step.extend(settle_perp_fills(ledger, engine.instrument, order, fills, ts, mark=mark))


def accept_perp_order(ledger: Ledger, engine: MatchingEngine, order: Order, ts: int, *, mark: int) -> list[WalletLine]:
    """The checks and the margin hold of `place_perp_order`, without matching (a live venue matches it).

    Refuses with: `invalid_order_type` (a liquidation order), `position_side_required` (hedge
    mode), `position_side_in_one_way_mode`, `reduce_only_would_open` (nothing to reduce; a
    larger reduce-only order is cut to the position), `leverage_above_maximum` (the position
    after the order is in a bracket that allows less), `insufficient_margin`, and the book
    checks of spot orders (`post_only_would_take`, `no_liquidity`, `notional_below_minimum`).
    """
    size = order.size
    try:
        return _accept(ledger, engine, order, ts, mark)
    except BaseException:
        order.size = size  # refused: the order is as it came (a reduce-only cut included)
        raise


def _accept(ledger: Ledger, engine: MatchingEngine, order: Order, ts: int, mark: int) -> list[WalletLine]:
    """`accept_perp_order`'s checks in order; may cut a reduce-only order's size before a later check refuses it."""
    inst = engine.instrument
    book = ledger.positions
    book.register(inst)
    if order.type is OrderType.LIQUIDATION:
        raise InvalidInput("invalid_order_type", "liquidation orders are made by the venue, never placed", field="type")
    _check_position_side(book, order)
    settings = book.settings(order.account_id, order.exchange, order.symbol, inst)
    pos = book.get(order.account_id, order.exchange, order.symbol, order.position_side, order.wallet_set_id)
    closable = _closable(pos, order, order.remaining)
    if (order.reduce_only or _closes_leg(order)) and closable < order.remaining:
        if closable == 0:
            raise DomainError("reduce_only_would_open", f"no {order.symbol} position for this {order.side.value} to reduce",
                              symbol=order.symbol, position_side=order.position_side.value)
        order.size = order.filled_size + closable  # cut to the position: reduce-only never opens
    trade_price = _order_price(engine, order, mark)
    price = max(trade_price, mark, 1)  # margin counts at the higher of the order's price and the mark
    opening = order.remaining - closable
    if order.type is OrderType.POST_ONLY and engine.preview(order.side, order.size, order.limit)[0] > 0:
        raise DomainError("post_only_would_take", "a post-only order must not take liquidity; it would cross the book now")
    if opening and inst.contract_notional(price, order.size) < inst.min_notional:
        raise InvalidInput("notional_below_minimum", f"order value is below the minimum notional for {inst.symbol}")
    leverage = pos.leverage if pos is not None and pos.size else settings.leverage
    if opening:
        after = abs(pos.size if pos is not None else 0) + opening if closable == 0 else opening
        _check_leverage(inst, leverage, inst.contract_notional(price, after))
    need = order_margin(inst, price, opening, leverage) if opening else 0
    currency = inst.settle
    held = ledger.hold_of(order.id)
    if need > held:
        free = available_margin(ledger, order.account_id, order.exchange, currency, order.wallet_set_id)
        if need - held > free:
            raise DomainError("insufficient_margin",
                              f"the order needs {atto_to_str(need)} {currency} of margin, {atto_to_str(free)} is available",
                              needed=atto_to_str(need), available=atto_to_str(free), currency=currency)
    if closable and pos is not None:
        _check_close_loss(ledger, inst, pos, order, closable, trade_price)
    return ledger.set_hold(order.id, order.exchange, currency, order.wallet_set_id, need, ts, order.account_id)


def settle_perp_fills(ledger: Ledger, inst: Instrument, order: Order, fills: list[Fill], ts: int, *, mark: int) -> PerpStep:
    """Apply an order's new fills to its position (one fill at a time), then trim the order's hold to its remainder.

    Each fill: the part that reduces the position realises PnL on the entry cost it removes
    and frees margin in proportion; the part that opens (or, one-way, flips through zero)
    adds exposure at the fill price with its initial margin. A loss the partition cannot pay
    (a gap past everything it holds) is capped at what it has: the venue takes the rest, as
    its insurance fund does for a bankrupt position.
    """
    book = ledger.positions
    book.register(inst)
    step = PerpStep()
    settings = book.settings(order.account_id, order.exchange, order.symbol, inst)
    currency = inst.settle
    if not fills:  # an order that only rests leaves no position record behind
        step.lines += _trim_order_hold(ledger, inst, order, settings, ts, mark)
        return step
    pos = book.open_or_get(order.account_id, order.exchange, order.symbol, order.position_side, order.wallet_set_id,
                           settings, ts)
    for fill in fills:
        fill = _perp_fill(inst, fill, order.position_side)
        delta = fill.size if fill.side is _BUY else -fill.size
        closing = min(abs(delta), abs(pos.size)) if pos.size and (pos.size > 0) != (delta > 0) else 0
        opening = abs(delta) - closing
        removed, pnl, released_margin = _reduce(inst, pos, closing, fill.price)
        old_pos_hold = ledger.hold_of(pos.hold_id)
        order_hold = min(ledger.hold_of(order.id), _order_need(inst, book, order, settings, mark, after_fill=delta))
        free = ledger.available_of(order.exchange, currency, order.wallet_set_id, order.account_id)
        room = free + ledger.hold_of(order.id) - order_hold + old_pos_hold  # as if the position's margin were free
        if room + pnl - fill.fee < 0:
            pnl = fill.fee - room  # the loss beyond what the partition has is the venue's
        room += pnl - fill.fee
        was_flat = pos.size == 0 or (closing == abs(pos.size) and opening > 0)
        pos.size += delta
        pos.entry_cost -= removed
        if opening:
            pos.entry_cost += inst.contract_notional(fill.price, opening)
            pos.leverage = settings.leverage if was_flat else pos.leverage
            pos.margin_mode = settings.margin_mode if was_flat else pos.margin_mode
            if was_flat:
                pos.opened_at = ts
        if pos.margin_mode is MarginMode.ISOLATED:
            added = ceil_div(inst.contract_notional(fill.price, opening), pos.leverage) if opening else 0
            wanted = (pos.isolated_margin - released_margin + added) if pos.size else 0
        else:
            wanted = ceil_div(pos.entry_cost, pos.leverage) if pos.size else 0
        new_pos_hold = min(wanted, room)
        if pos.margin_mode is MarginMode.ISOLATED:
            pos.isolated_margin = new_pos_hold
        pos.realised_pnl += pnl
        pos.fees += fill.fee
        pos.mark = mark
        pos.updated_at = ts
        step.lines += ledger.settle_margin(
            order.exchange, currency, order.wallet_set_id, order.account_id, ts,
            holds=[(order.id, order_hold), (pos.hold_id, new_pos_hold)],
            movements=[(_PNL, pnl, order.id, fill.id), (_FEE, -fill.fee, order.id, fill.id)],
        )
        step.fills.append(fill)
    step.lines += _trim_order_hold(ledger, inst, order, settings, ts, mark)
    step.touched(pos)
    return step


def _trim_order_hold(ledger: Ledger, inst: Instrument, order: Order, settings: PositionSettings, ts: int, mark: int) -> list[WalletLine]:
    """Lower the order's margin hold to what its remainder needs now (never raise it: it was checked at acceptance)."""
    held = ledger.hold_of(order.id)
    need = min(held, _order_need(inst, ledger.positions, order, settings, mark)) if not order.is_done else 0
    if held == need:
        return []
    return ledger.set_hold(order.id, order.exchange, inst.settle, order.wallet_set_id, need, ts, order.account_id)


def fire_perp(ledger: Ledger, engine: MatchingEngine, order: Order, ts: int, *, mark: int) -> PerpStep:
    """Execute a triggered conditional perpetual order (a reduce-only stop, a take-profit) as its child, then settle it.

    A reduce-only order is cut first to what its position still holds (it may have shrunk while
    the order waited), and does nothing when the position is gone (cancelled, its hold released).
    """
    if order.status is not OrderStatus.TRIGGERED:
        raise InvalidTransition(f"order {order.id}: only a triggered order fires, not a {order.status.value} one")
    pos = ledger.positions.get(order.account_id, order.exchange, order.symbol, order.position_side, order.wallet_set_id)
    if order.reduce_only or _closes_leg(order):
        closable = _closable(pos, order, order.remaining)
        if closable == 0:
            order.exchange_at = ts
            order.move(OrderStatus.DONE, ts, DoneReason.CANCELLED)
            step = PerpStep()
            step.lines += release_perp_hold(ledger, engine.instrument, order, ts)
            return step
        order.size = order.filled_size + closable
    fills = engine.submit(order, ts, as_type=child_type(order))
    return settle_perp_fills(ledger, engine.instrument, order, fills, ts, mark=mark)


def release_perp_hold(ledger: Ledger, inst: Instrument, order: Order, ts: int) -> list[WalletLine]:
    """After a cancel or expiry: the order's margin hold goes back (a done order holds nothing)."""
    return ledger.set_hold(order.id, order.exchange, inst.settle, order.wallet_set_id, 0, ts, order.account_id)


def close_position_order(ledger: Ledger, inst: Instrument, account: int, symbol: str, position_side: PositionSide,
                         wallet_set_id: int | None, order_id: int, client_oid: str, ts: int) -> Order:
    """A reduce-only market order for the whole position (or hedge leg); `no_position` when it is flat."""
    pos = ledger.positions.get(account, inst.exchange, symbol, position_side, wallet_set_id)
    if pos is None or pos.size == 0:
        raise NotFound("no_position", f"no open {symbol} position to close", symbol=symbol, position_side=position_side.value)
    return Order(id=order_id, client_oid=client_oid, exchange=inst.exchange, symbol=symbol,
                 side=_SELL if pos.size > 0 else _BUY, type=OrderType.MARKET, size=abs(pos.size), wallet_set_id=wallet_set_id,
                 account_id=account, created_at=ts, last_updated_at=ts, reduce_only=True, position_side=position_side)


# --- funding and liquidation ---------------------------------------------------------------------
def settle_funding(ledger: Ledger, inst: Instrument, rate: int, mark: int, ts: int) -> PerpStep:
    """Pay or receive funding for every open position of the symbol at one funding time: a `funding` line each.

    An isolated position's funding comes out of (or goes into) its margin, as on Binance; a
    cross position's out of its wallet's available funds, then out of its own margin hold.
    What a position cannot pay at all is not taken (the liquidation check follows at the mark).
    """
    book = ledger.positions
    book.register(inst)
    step = PerpStep()
    for pos in book.open_positions(inst.exchange, inst.symbol):
        amount = funding_payment(inst, pos, mark, rate)
        if amount == 0:
            continue
        hold = ledger.hold_of(pos.hold_id)
        free = ledger.available_of(pos.exchange, inst.settle, pos.wallet_set_id, pos.account_id)
        if pos.margin_mode is MarginMode.ISOLATED:
            amount = max(amount, -hold)
            new_hold = hold + amount
            pos.isolated_margin = new_hold
        else:
            amount = max(amount, -(free + hold))
            new_hold = min(hold, free + hold + amount)
        pos.funding += amount
        pos.mark = mark
        pos.updated_at = ts
        step.lines += ledger.settle_margin(pos.exchange, inst.settle, pos.wallet_set_id, pos.account_id, ts,
                                           holds=[(pos.hold_id, new_hold)], movements=[(_FUNDING, amount, None, None)])
        step.touched(pos)
    return step


def liquidations(ledger: Ledger, inst: Instrument, mark: int, ts: int, order_ids: IdSequence, fill_ids: IdSequence) -> PerpStep:
    """Liquidate what the mark puts at a margin ratio of 100% or more: each such isolated position, each such cross pool.

    Every liquidated position gets a LIQUIDATION order (done, filled) and one fill for its
    whole size; its PnL is realised at the fill price and what its margin has left goes as the
    clearance fee (`liquidation` line), so the wallet keeps what was not pledged to it.
    Isolated: at the bankruptcy price of its margin (the clearance fee included). Cross: every
    cross position of the pool closes at its mark. Open orders are the venue's to cancel.
    """
    book = ledger.positions
    book.register(inst)
    step = PerpStep()
    done: set[int] = set()
    for pos in book.open_positions(inst.exchange, inst.symbol):
        if pos.id in done or pos.size == 0:
            continue
        marks = {inst.symbol: mark}
        members = pool_of(book, pos)
        if not liquidation_reached(ledger, pos, marks):
            continue
        done.update(m.id for m in members)
        step.extend(_liquidate(ledger, members, marks, ts, order_ids, fill_ids))
    return step


# --- settings and margin --------------------------------------------------------------------------
def set_leverage(ledger: Ledger, inst: Instrument, account: int, leverage: int, ts: int, *, mark: int) -> tuple[PositionSettings, PerpStep]:
    """Set the account's leverage for a symbol, open positions included (cross: their margin hold follows).

    `invalid_leverage` below 1; `leverage_above_maximum` above what the bracket of the
    account's position notional in the symbol (at `mark`) allows; `insufficient_margin` when
    a cross position's larger initial margin is not available.
    """
    book = ledger.positions
    book.register(inst)
    if not isinstance(leverage, int) or isinstance(leverage, bool) or leverage < 1:
        raise InvalidInput("invalid_leverage", f"leverage must be a whole number >= 1, got {leverage}", field="leverage")
    positions = [p for p in book.of_account(account, inst.exchange) if p.symbol == inst.symbol and p.size]
    _check_leverage(inst, leverage, sum(inst.contract_notional(mark, abs(p.size)) for p in positions))
    current = book.settings(account, inst.exchange, inst.symbol, inst)
    changes: list[tuple[Position, int]] = []
    for pos in positions:
        if pos.margin_mode is MarginMode.CROSS:
            wanted = ceil_div(pos.entry_cost, leverage)
            extra = wanted - ledger.hold_of(pos.hold_id)
            if extra > ledger.available_of(pos.exchange, inst.settle, pos.wallet_set_id, account):
                raise DomainError("insufficient_margin", f"leverage {leverage} needs {atto_to_str(extra)} {inst.settle} more margin",
                                  needed=atto_to_str(extra), currency=inst.settle)
            changes.append((pos, wanted))
    step = PerpStep()
    for pos, wanted in sorted(changes, key=lambda c: c[1] - ledger.hold_of(c[0].hold_id)):  # releases first
        step.lines += ledger.set_hold(pos.hold_id, pos.exchange, inst.settle, pos.wallet_set_id, wanted, ts, account)
    for pos in positions:
        pos.leverage = leverage
        pos.updated_at = ts
        step.touched(pos)
    settings = PositionSettings(account_id=account, exchange=inst.exchange, symbol=inst.symbol, leverage=leverage,
                                margin_mode=current.margin_mode)
    book.put_settings(settings)
    return settings, step


def set_margin_mode(ledger: Ledger, inst: Instrument, account: int, mode: MarginMode, *, open_orders: bool) -> PositionSettings:
    """Switch a symbol between isolated and cross: refused (`margin_mode_change_with_open_position`) with a position or orders open."""
    book = ledger.positions
    book.register(inst)
    if book.has_open(account, inst.exchange, inst.symbol) or open_orders:
        raise DomainError("margin_mode_change_with_open_position",
                          f"close the {inst.symbol} position and cancel its open orders before changing the margin mode",
                          symbol=inst.symbol)
    current = book.settings(account, inst.exchange, inst.symbol, inst)
    settings = PositionSettings(account_id=account, exchange=inst.exchange, symbol=inst.symbol, leverage=current.leverage,
                                margin_mode=MarginMode(mode))
    book.put_settings(settings)
    return settings


def set_hedge_mode(ledger: Ledger, account: int, exchange: str, hedge: bool, *, open_orders: bool) -> None:
    """One-way or hedge mode for the account's perpetuals on `exchange`: refused with any position or order open."""
    book = ledger.positions
    if book.hedge_mode(account, exchange) == hedge:
        return
    if book.has_open(account, exchange) or open_orders:
        raise DomainError("position_mode_change_with_open_position",
                          f"close every {exchange} position and cancel its open orders before changing the position mode",
                          exchange=exchange)
    book.put_hedge_mode(account, exchange, hedge)


def adjust_margin(ledger: Ledger, inst: Instrument, account: int, position_side: PositionSide, wallet_set_id: int | None,
                  amount: int, ts: int, *, mark: int) -> PerpStep:
    """Add (+) or remove (-) margin of an isolated position: `margin_mode_not_isolated`, `no_position`,
    `insufficient_margin` (adding more than is available), `margin_below_initial` (removing below the initial margin at `mark`)."""
    book = ledger.positions
    book.register(inst)
    pos = book.get(account, inst.exchange, inst.symbol, position_side, wallet_set_id)
    if pos is None or pos.size == 0:
        raise NotFound("no_position", f"no open {inst.symbol} position", symbol=inst.symbol, position_side=position_side.value)
    if pos.margin_mode is not MarginMode.ISOLATED:
        raise DomainError("margin_mode_not_isolated", "only an isolated position's margin can be adjusted", symbol=inst.symbol)
    if not isinstance(amount, int) or amount == 0:
        raise InvalidInput("invalid_amount", "the margin change must be a non-zero amount", field="amount")
    hold = ledger.hold_of(pos.hold_id)
    if amount > 0:
        free = ledger.available_of(inst.exchange, inst.settle, wallet_set_id, account)
        if amount > free:
            raise DomainError("insufficient_margin", f"{atto_to_str(amount)} {inst.settle} asked, {atto_to_str(free)} available",
                              needed=atto_to_str(amount), available=atto_to_str(free), currency=inst.settle)
    else:
        floor = initial_margin(inst, pos, mark) - min(0, unrealised_pnl(pos, inst, mark))
        if hold + amount < floor:
            raise DomainError("margin_below_initial", f"at most {atto_to_str(max(0, hold - floor))} {inst.settle} can be removed",
                              maximum=atto_to_str(max(0, hold - floor)), currency=inst.settle)
    step = PerpStep()
    step.lines += ledger.set_hold(pos.hold_id, inst.exchange, inst.settle, wallet_set_id, hold + amount, ts, account)
    pos.isolated_margin = hold + amount
    pos.mark = mark
    pos.updated_at = ts
    step.touched(pos)
    return step


# --- internals ---------------------------------------------------------------------------------------
def _check_position_side(book: PositionBook, order: Order) -> None:
    hedge = book.hedge_mode(order.account_id, order.exchange)
    if hedge and order.position_side is PositionSide.BOTH:
        raise InvalidInput("position_side_required", "hedge mode: say which position the order trades (long or short)",
                           field="position_side")
    if not hedge and order.position_side is not PositionSide.BOTH:
        raise InvalidInput("position_side_in_one_way_mode", "one-way mode: an order has no position side (switch to hedge mode)",
                           field="position_side")


def _closes_leg(order: Order) -> bool:
    """A hedge-mode order that trades against its leg (a sell of the long, a buy of the short) only closes it."""
    side = order.position_side
    return (side is PositionSide.LONG and order.side is _SELL) or (side is PositionSide.SHORT and order.side is _BUY)


def _closable(pos: Position | None, order: Order, size: int) -> int:
    """How much of `size` reduces the position (the rest opens exposure)."""
    if pos is None or pos.size == 0 or (pos.size > 0) == (order.side is _BUY):
        return 0
    return min(size, abs(pos.size))


def _order_price(engine: MatchingEngine, order: Order, mark: int) -> int:
    """The price the order trades at or better: its limit (or stop), a market order's average over the book now."""
    if order.type is OrderType.MARKET or (order.type.conditional and not order.limit):
        took, notional = engine.preview(order.side, order.remaining, None)
        if took == 0 and order.type is OrderType.MARKET:
            raise DomainError("no_liquidity", f"no liquidity on the {order.side.opposite.value} side of {order.symbol}")
        if took == 0:
            return order.stop_price or mark
        unit = engine.instrument.contract_notional(1, took)
        return ceil_div(notional, unit) if order.side is _BUY else notional // unit
    return order.limit or order.stop_price or mark


def _check_leverage(inst: Instrument, leverage: int, notional: int) -> None:
    bracket = bracket_for(inst, notional)
    if inst.brackets and bracket.cap and notional >= bracket.cap:
        raise DomainError("leverage_above_maximum", f"a {inst.symbol} position of this size is beyond the venue's largest bracket",
                          symbol=inst.symbol, maximum=0)
    if leverage > bracket.max_leverage:
        raise DomainError("leverage_above_maximum",
                          f"leverage {leverage} is above the maximum {bracket.max_leverage} for this {inst.symbol} position size",
                          symbol=inst.symbol, maximum=bracket.max_leverage)


def _check_close_loss(ledger: Ledger, inst: Instrument, pos: Position, order: Order, closing: int, price: int) -> None:
    """Refuse a close whose loss at its price is more than the partition has (a hedged pair: close the winner first)."""
    removed = pos.entry_cost if closing == abs(pos.size) else pos.entry_cost * closing // abs(pos.size)
    exit_value = inst.contract_notional(price, closing)
    loss = removed - exit_value if pos.size > 0 else exit_value - removed
    room = ledger.available_of(order.exchange, inst.settle, order.wallet_set_id, order.account_id) + ledger.hold_of(pos.hold_id)
    if loss > room:
        raise DomainError("insufficient_margin", f"closing would realise a loss of {atto_to_str(loss)} {inst.settle}, "
                          f"more than the {atto_to_str(room)} the account has free", needed=atto_to_str(loss),
                          available=atto_to_str(room), currency=inst.settle)


def _order_need(inst: Instrument, book: PositionBook, order: Order, settings: PositionSettings, mark: int,
                after_fill: int = 0) -> int:
    """The margin the order's remainder needs against its position (with a fill of signed `after_fill` applied first)."""
    if order.is_done:
        return 0
    pos = book.get(order.account_id, order.exchange, order.symbol, order.position_side, order.wallet_set_id)
    size = (pos.size if pos is not None else 0) + after_fill
    remaining = order.remaining
    closable = min(remaining, abs(size)) if size and (size > 0) != (order.side is _BUY) else 0
    opening = remaining - closable
    if opening == 0:
        return 0
    leverage = pos.leverage if pos is not None and size else settings.leverage
    return order_margin(inst, max(order.limit or mark, mark, 1), opening, leverage)


def _perp_fill(inst: Instrument, fill: Fill, side: PositionSide) -> Fill:
    """The fill with its position side, and its notional and fee counted in contracts (a contract size other than 1)."""
    if inst.contract_size == 10**8:
        return msgspec.structs.replace(fill, position_side=side)
    notional = inst.contract_notional(fill.price, fill.size)
    return msgspec.structs.replace(fill, position_side=side, notional=notional, fee=inst.fee_atto(notional, fill.maker))


def _reduce(inst: Instrument, pos: Position, closing: int, price: int) -> tuple[int, int, int]:
    """(entry cost removed, realised PnL, isolated margin freed) of closing `closing` of the position at `price`."""
    if closing == 0:
        return 0, 0, 0
    whole = closing == abs(pos.size)
    removed = pos.entry_cost if whole else pos.entry_cost * closing // abs(pos.size)
    exit_value = inst.contract_notional(price, closing)
    pnl = exit_value - removed if pos.size > 0 else removed - exit_value
    freed = pos.isolated_margin if whole else pos.isolated_margin * closing // abs(pos.size)
    return removed, pnl, freed


def _liquidate(ledger: Ledger, members: list[Position], marks: dict[str, int], ts: int, order_ids: IdSequence,
               fill_ids: IdSequence) -> PerpStep:
    """Close every position of one pool by a LIQUIDATION order; the pool's margin pays the losses and the clearance fee."""
    book = ledger.positions
    first = members[0]
    settle = book.instrument(first.exchange, first.symbol).settle
    step = PerpStep()
    pledged = sum(ledger.hold_of(m.hold_id) for m in members)
    if first.margin_mode is MarginMode.CROSS:
        pledged += ledger.available_of(first.exchange, settle, first.wallet_set_id, first.account_id)
    left = pledged
    closes: list[tuple[Position, Order, Fill, int]] = []
    for pos in members:
        inst = book.instrument(pos.exchange, pos.symbol)
        at = marks.get(pos.symbol, pos.mark)
        price = bankruptcy_price(inst, pos, ledger.hold_of(pos.hold_id)) if pos.margin_mode is MarginMode.ISOLATED else at
        size = abs(pos.size)
        order = Order(id=order_ids.next(), client_oid=f"liquidation-{pos.id}-{ts}", exchange=pos.exchange, symbol=pos.symbol,
                      side=_SELL if pos.size > 0 else _BUY, type=OrderType.LIQUIDATION, size=size, limit=price,
                      wallet_set_id=pos.wallet_set_id, account_id=pos.account_id, created_at=ts, last_updated_at=ts,
                      reduce_only=True, position_side=pos.side, status=OrderStatus.OPEN, exchange_at=ts)
        notional = inst.contract_notional(price, size)
        order.record_fill(price, size, notional, 0, ts)
        order.move(OrderStatus.DONE, ts, DoneReason.FILLED)
        fill = Fill(id=fill_ids.next(), order_id=order.id, client_oid=order.client_oid, exchange=pos.exchange, symbol=pos.symbol,
                    side=order.side, order_type=OrderType.LIQUIDATION, price=price, size=size, notional=notional, fee=0,
                    maker=False, ts=ts, wallet_set_id=pos.wallet_set_id, account_id=pos.account_id, position_side=pos.side)
        _, pnl, _ = _reduce(inst, pos, size, price)
        pnl = max(pnl, -left)  # never more than the pool pledged (a gap past bankruptcy is the venue's)
        left += pnl
        closes.append((pos, order, fill, pnl))
    movements: list[tuple[LineKind, int, int | None, int | None]] = [(_PNL, pnl, order.id, fill.id) for _, order, fill, pnl in closes]
    last_order, last_fill = closes[-1][1], closes[-1][2]
    movements.append((_LIQUIDATION, -left, last_order.id, last_fill.id))  # what the margin had left: the clearance fee
    step.lines += ledger.settle_margin(first.exchange, settle, first.wallet_set_id, first.account_id, ts,
                                       holds=[(m.hold_id, 0) for m in members], movements=movements)
    share = left // len(closes)
    for index, (pos, order, fill, pnl) in enumerate(closes):
        pos.realised_pnl += pnl
        pos.fees += left - share * (len(closes) - 1) if index == 0 else share
        pos.size = 0
        pos.entry_cost = 0
        pos.isolated_margin = 0
        pos.mark = marks.get(pos.symbol, pos.mark)
        pos.updated_at = ts
        step.orders.append(order)
        step.fills.append(fill)
        step.touched(pos)
    return step
