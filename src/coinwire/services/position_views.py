"""Position views: each perpetual position with its margin, margin ratio and liquidation price at its mark, as clients see it.

Every number is core's (`core.position_risk.position_risk`, the code the liquidation check
uses): an isolated position is its own margin pool, cross positions share their account
partition's settle-currency wallet. The views are what `positions_updated` carries and
`get_positions` answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.numbers import ATTO_DECIMALS
from coinwire.core.position_risk import position_risk
from coinwire.core.positions import MarginMode, Position, entry_price
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
    risk = position_risk(ledger, pos) if pos.mark else None  # no mark known yet (a restored position before market data)
    pd = inst.price_decimals
    liquidation = risk.liquidation_price if risk is not None else None
    return PositionView(
        account=pos.account_id, exchange=pos.exchange, symbol=pos.symbol, position_side=pos.side.value,
        side=pos.direction, size=units_text(abs(pos.size), inst.size_decimals),
        entry_price=format(entry_price(pos, inst).quantize(Decimal(1).scaleb(-pd - 4)).normalize(), "f") if pos.size else "0",
        mark_price=units_text(pos.mark, pd), notional=_atto(risk.notional if risk else 0),
        unrealised_pnl=_atto(risk.unrealised_pnl if risk else 0), realised_pnl=_atto(pos.realised_pnl),
        funding=_atto(pos.funding), fees=_atto(pos.fees), leverage=pos.leverage, margin_mode=pos.margin_mode.value,
        isolated_margin=_atto(pos.isolated_margin) if pos.margin_mode is _ISOLATED else None,
        initial_margin=_atto(risk.initial_margin if risk else 0), maintenance_margin=_atto(risk.maintenance_margin if risk else 0),
        margin_ratio=_ratio(risk.margin_ratio if risk else 0),
        liquidation_price=units_text(liquidation, pd) if liquidation is not None else None,
        wallet_set_id=pos.wallet_set_id, updated_at=pos.updated_at, seq=seq,
    )
