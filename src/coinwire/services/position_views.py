"""Position views: each perpetual position with its margin, margin ratio and liquidation price at its mark, as clients see it.

A position's risk is its margin pool's (core.perp_execution.pool_state): an isolated position
is its own pool, cross positions share their account partition's settle-currency wallet and
are liquidated together, so a cross position's liquidation price also counts the maintenance
margin and unrealised PnL of the pool's other symbols (Binance's TMM1 and UPNL1). The views are
what `positions_updated` carries and `get_positions` answers; every number is core's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.margin import initial_margin, liquidation_price, maintenance_margin
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.perp_execution import pool_state
from coinwire.core.positions import MarginMode, Position, entry_price, notional_at, unrealised_pnl
from coinwire.messages import PositionView
from coinwire.store.codec import units_text

__all__ = ["position_views"]

_ISOLATED = MarginMode.ISOLATED


def _atto(amount: int) -> str:
    return units_text(amount, ATTO_DECIMALS)


def _ratio(value: int) -> str:
    """A 1e-8 ratio (core.margin's unit) as decimal text ("0.0123" = 1.23%), without trailing zeros."""
    return format(Decimal(value).scaleb(-8).normalize(), "f")


def position_views(ledger: Ledger, positions: Iterable[Position], instrument: Callable[[Position], Instrument],
                   seqs: Callable[[Position], int] | None = None) -> list[PositionView]:
    """The views of `positions`, each at its own `mark`; `instrument(pos)`: its market's; `seqs(pos)`: the sequence
    its notification carries (default: its own)."""
    return [_view(ledger, instrument(pos), pos, seqs(pos) if seqs is not None else pos.seq) for pos in positions]


def _view(ledger: Ledger, inst: Instrument, pos: Position, seq: int) -> PositionView:
    mark = pos.mark
    upnl = mm = im = ratio = 0
    liquidation: int | None = None
    if pos.size and mark:
        upnl = unrealised_pnl(pos, inst, mark)
        mm = maintenance_margin(inst, pos, mark)
        im = initial_margin(inst, pos, mark)
        pool = pool_state(ledger, pos)
        ratio = pool.ratio
        if pos.margin_mode is _ISOLATED:
            liquidation = liquidation_price(inst, pos, wallet_balance=pos.isolated_margin, mark=mark)
        else:  # this symbol's cross legs, against the pool's wallet and its other symbols
            book = ledger.positions
            legs = [p for p in book.of_account(pos.account_id, pos.exchange)
                    if p.size and p.symbol == pos.symbol and p.margin_mode is not _ISOLATED and p.wallet_set_id == pos.wallet_set_id]
            own_mm = sum(maintenance_margin(inst, p, p.mark or mark) for p in legs)
            own_upnl = sum(unrealised_pnl(p, inst, p.mark or mark) for p in legs)
            liquidation = liquidation_price(inst, legs, wallet_balance=pool.wallet_balance, mark=mark,
                                            other_mm=pool.maintenance - own_mm, other_upnl=pool.unrealised - own_upnl)
    pd = inst.price_decimals
    return PositionView(
        account=pos.account_id, exchange=pos.exchange, symbol=pos.symbol, position_side=pos.side.value,
        side=pos.direction, size=units_text(abs(pos.size), inst.size_decimals),
        entry_price=format(entry_price(pos, inst).quantize(Decimal(1).scaleb(-pd - 4)).normalize(), "f") if pos.size else "0",
        mark_price=units_text(mark, pd), notional=_atto(notional_at(inst, pos.size, mark) if mark else 0),
        unrealised_pnl=_atto(upnl), realised_pnl=_atto(pos.realised_pnl), funding=_atto(pos.funding), fees=_atto(pos.fees),
        leverage=pos.leverage, margin_mode=pos.margin_mode.value,
        isolated_margin=_atto(pos.isolated_margin) if pos.margin_mode is _ISOLATED else None,
        initial_margin=_atto(im), maintenance_margin=_atto(mm), margin_ratio=_ratio(ratio),
        liquidation_price=units_text(liquidation, pd) if liquidation is not None else None,
        wallet_set_id=pos.wallet_set_id, updated_at=pos.updated_at, seq=seq,
    )
