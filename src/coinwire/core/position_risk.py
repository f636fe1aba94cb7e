"""A position's risk at the marks: its margin pool, margins, margin ratio, liquidation price, and the margin left for orders.

What the venues (to decide a liquidation), the API (the position view) and the dashboard show
all come from here, so the liquidation price a user sees is the one the venue acts on. A pool
is the margin a position draws on: the position alone when isolated, else every open cross
position of its account's partition (account, exchange, wallet set) in its settle currency.
Marks come as {symbol: mark}; a symbol without one is valued at its position's last `mark`.
"""

from __future__ import annotations

import msgspec

from coinwire.core.ledger import Ledger
from coinwire.core.margin import LIQUIDATE_RATIO, initial_margin, liquidation_price, maintenance_margin, margin_ratio
from coinwire.core.positions import MarginMode, Position, PositionBook, unrealised_pnl

__all__ = ["PoolState", "PositionRisk", "pool_of", "pool_state", "pool_liquidation_price", "liquidation_reached",
           "position_risk", "available_margin"]

Marks = dict[str, int]


class PoolState(msgspec.Struct, frozen=True):
    """A margin pool at the marks (ATTO of the settle currency)."""

    wallet_balance: int  # the isolated margin, or the cross wallet balance (available + the cross margin holds)
    unrealised: int
    maintenance: int
    initial: int

    @property
    def margin_balance(self) -> int:
        return self.wallet_balance + self.unrealised

    @property
    def ratio(self) -> int:
        """Maintenance / margin balance, in 1e-8 (100% = FEE_SCALE: liquidation)."""
        return margin_ratio(self.maintenance, self.margin_balance)


class PositionRisk(msgspec.Struct, frozen=True):
    """One position at its mark: what the position view shows (ATTO, price units, ratio in 1e-8 of its pool)."""

    mark: int
    notional: int
    unrealised_pnl: int
    initial_margin: int
    maintenance_margin: int
    margin_ratio: int
    liquidation_price: int | None


def pool_of(book: PositionBook, pos: Position) -> list[Position]:
    """The positions sharing `pos`'s margin: itself when isolated, else the partition's open cross positions in its settle currency."""
    if pos.margin_mode is MarginMode.ISOLATED:
        return [pos]
    settle = book.instrument(pos.exchange, pos.symbol).settle
    return [p for p in book.of_account(pos.account_id, pos.exchange)
            if p.size and p.margin_mode is MarginMode.CROSS and p.wallet_set_id == pos.wallet_set_id
            and book.instrument(p.exchange, p.symbol).settle == settle]


def _mark(pos: Position, marks: Marks | None) -> int:
    return (marks or {}).get(pos.symbol, pos.mark)


def pool_state(ledger: Ledger, pos: Position, marks: Marks | None = None) -> PoolState:
    """The margin pool `pos` belongs to, valued at `marks`."""
    book = ledger.positions
    members = pool_of(book, pos)
    unrealised = maintenance = initial = 0
    for member in members:
        inst = book.instrument(member.exchange, member.symbol)
        at = _mark(member, marks)
        unrealised += unrealised_pnl(member, inst, at)
        maintenance += maintenance_margin(inst, member, at)
        initial += initial_margin(inst, member, at)
    if pos.margin_mode is MarginMode.ISOLATED:
        wallet_balance = pos.isolated_margin
    else:
        settle = book.instrument(pos.exchange, pos.symbol).settle
        wallet_balance = ledger.available_of(pos.exchange, settle, pos.wallet_set_id, pos.account_id)
        wallet_balance += sum(ledger.hold_of(m.hold_id) for m in members)
    return PoolState(wallet_balance, unrealised, maintenance, initial)


def pool_liquidation_price(ledger: Ledger, pos: Position, marks: Marks | None = None, state: PoolState | None = None) -> int | None:
    """Binance's liquidation price of `pos`'s symbol in its pool: its own legs there, the pool's other symbols as TMM1/UPNL1."""
    book = ledger.positions
    members = pool_of(book, pos)
    state = state or pool_state(ledger, pos, marks)
    legs = [m for m in members if m.symbol == pos.symbol]
    other_mm = other_upnl = 0
    for member in members:
        if member.symbol != pos.symbol:
            inst = book.instrument(member.exchange, member.symbol)
            other_mm += maintenance_margin(inst, member, _mark(member, marks))
            other_upnl += unrealised_pnl(member, inst, _mark(member, marks))
    return liquidation_price(book.instrument(pos.exchange, pos.symbol), legs or [pos], wallet_balance=state.wallet_balance,
                             mark=_mark(pos, marks), other_mm=other_mm, other_upnl=other_upnl)


def liquidation_reached(ledger: Ledger, pos: Position, marks: Marks) -> bool:
    """Has the mark reached the pool's liquidation price (rounded towards the mark), or its margin ratio 100%?"""
    state = pool_state(ledger, pos, marks)
    if state.ratio >= LIQUIDATE_RATIO:
        return True
    net = sum(m.size for m in pool_of(ledger.positions, pos) if m.symbol == pos.symbol)
    price = pool_liquidation_price(ledger, pos, marks, state)
    if price is None or net == 0:
        return False
    mark = _mark(pos, marks)
    return mark <= price if net > 0 else mark >= price


def position_risk(ledger: Ledger, pos: Position, marks: Marks | None = None) -> PositionRisk:
    """The position at its mark: notional, uPnL, its own initial and maintenance margin, its pool's ratio and liquidation price."""
    inst = ledger.positions.instrument(pos.exchange, pos.symbol)
    mark = _mark(pos, marks)
    if pos.size == 0:
        return PositionRisk(mark=mark, notional=0, unrealised_pnl=0, initial_margin=0, maintenance_margin=0, margin_ratio=0,
                            liquidation_price=None)
    state = pool_state(ledger, pos, marks)
    return PositionRisk(
        mark=mark,
        notional=inst.contract_notional(mark, abs(pos.size)),
        unrealised_pnl=unrealised_pnl(pos, inst, mark),
        initial_margin=initial_margin(inst, pos, mark),
        maintenance_margin=maintenance_margin(inst, pos, mark),
        margin_ratio=state.ratio,
        liquidation_price=pool_liquidation_price(ledger, pos, marks, state),
    )


def available_margin(ledger: Ledger, account: int, exchange: str, settle: str, wallet_set_id: int | None,
                     marks: Marks | None = None) -> int:
    """What new orders may use: the wallet's available funds (position and order margins held) less the
    cross positions' unrealised losses at `marks`; unrealised profit is not lent."""
    free = ledger.available_of(exchange, settle, wallet_set_id, account)
    book = ledger.positions
    losses = 0
    for pos in book.of_account(account, exchange):
        if pos.size and pos.wallet_set_id == wallet_set_id and pos.margin_mode is MarginMode.CROSS:
            inst = book.instrument(pos.exchange, pos.symbol)
            if inst.settle == settle:
                losses += min(0, unrealised_pnl(pos, inst, _mark(pos, marks)))
    return max(0, free + losses)
