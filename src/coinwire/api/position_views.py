"""The position view: one perpetual position as JSON clients see it, computed exactly with `coinwire.core.margin`.

Pure (core and messages only), so whatever publishes a position change (the gateway, a live
venue's reconciliation) builds the same view as `get_positions` answers. Money is the settle
currency's decimal text (ATTO exact), prices the instrument's, `margin_ratio` a fraction
("0.0123" = 1.23%, "1" = liquidation): maintenance margin over the margin balance that backs
the position (isolated: its isolated margin plus its uPnL; cross: the account's settle wallet
balance plus every cross position's uPnL).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from coinwire.core import margin
from coinwire.core.instruments import Instrument
from coinwire.core.numbers import ATTO_DECIMALS, atto_to_str
from coinwire.core.positions import MarginMode, Position, entry_price, notional_at, unrealised_pnl
from coinwire.messages import PositionView

__all__ = ["RATIO_DECIMALS", "margin_ratio_text", "position_view"]

RATIO_DECIMALS = 8  # margin_ratio's text: a fraction to 1e-8 (the rates' scale)
_RATIO_QUANT = Decimal(1).scaleb(-RATIO_DECIMALS)


def margin_ratio_text(maintenance: int, balance: int) -> str:
    """Maintenance margin over margin balance as a fraction's text; "1" or more is liquidation, "0" with nothing open.

    A balance at or below zero with margin to keep is past liquidation: "1" (never a division by zero).
    """
    if maintenance <= 0:
        return "0"
    if balance <= 0:
        return "1"
    return _plain(Decimal(maintenance) / Decimal(balance))


def _plain(value: Decimal) -> str:
    text = format(value.quantize(_RATIO_QUANT), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def position_view(
    pos: Position, inst: Instrument, *, seq: int = 0, wallet_balance: int = 0, others: Sequence[tuple[Position, Instrument]] = (),
) -> PositionView:
    """The view of `pos` at its own `mark` (`Position.mark`; its entry price before the first mark).

    `wallet_balance`: the account's (or wallet set's) settle-currency wallet balance in ATTO,
    which backs cross positions; `others`: the account's other open cross positions on the
    exchange, each with its instrument, whose maintenance
    margin and uPnL share that balance (Binance's cross formula). Isolated positions use
    neither.
    """
    mark = pos.mark or _entry_units(pos, inst)
    size = abs(pos.size)
    upnl = unrealised_pnl(pos, inst, mark) if size else 0
    initial = margin.initial_margin(inst, pos, mark) if size else 0
    maintenance = margin.maintenance_margin(inst, pos, mark) if size else 0
    isolated = pos.margin_mode is MarginMode.ISOLATED
    if isolated:
        balance, maintenance_all = pos.isolated_margin + upnl, maintenance
    else:
        balance, maintenance_all = wallet_balance + upnl, maintenance
        for other, other_inst in others:
            other_mark = other.mark or _entry_units(other, other_inst)
            balance += unrealised_pnl(other, other_inst, other_mark)
            maintenance_all += margin.maintenance_margin(other_inst, other, other_mark)
    liquidation = None
    if size:
        if isolated:
            liquidation = margin.liquidation_price(inst, pos, wallet_balance=pos.isolated_margin)
        else:
            liquidation = margin.liquidation_price(inst, pos, wallet_balance=wallet_balance, others=list(others))
    notional = notional_at(inst, size, mark)
    side = "flat" if not pos.size else "long" if pos.size > 0 else "short"
    return PositionView(
        account=pos.account_id,
        exchange=pos.exchange,
        symbol=pos.symbol,
        position_side=pos.side.value,
        side=side,
        size=inst.size_str(size),
        entry_price=_price_text(entry_price(pos, inst), inst) if size else "0",
        mark_price=inst.price_str(mark),
        notional=atto_to_str(notional),
        unrealised_pnl=atto_to_str(upnl),
        realised_pnl=atto_to_str(pos.realised_pnl),
        funding=atto_to_str(pos.funding),
        fees=atto_to_str(pos.fees),
        leverage=pos.leverage,
        margin_mode=pos.margin_mode.value,
        isolated_margin=atto_to_str(pos.isolated_margin) if isolated else None,
        initial_margin=atto_to_str(initial),
        maintenance_margin=atto_to_str(maintenance),
        margin_ratio=margin_ratio_text(maintenance_all, balance),
        liquidation_price=inst.price_str(liquidation) if liquidation is not None else None,
        wallet_set_id=pos.wallet_set_id,
        updated_at=pos.updated_at,
        seq=seq or pos.seq,
    )





def _entry_units(pos: Position, inst: Instrument) -> int:
    """The average entry price in price units (rounded half down to the tick), the mark before any mark arrived."""
    if not pos.size:
        return 0
    return int(entry_price(pos, inst).scaleb(inst.price_decimals).to_integral_value())


def _price_text(price: Decimal, inst: Instrument) -> str:
    """An average entry price: exact to the instrument's price decimals plus four (an average is rarely on the tick)."""
    digits = min(inst.price_decimals + 4, ATTO_DECIMALS)
    text = format(price.quantize(Decimal(1).scaleb(-digits)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
