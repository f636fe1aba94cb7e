"""The position view: one perpetual position as JSON clients see it, computed exactly with `coinwire.core.margin`.

Pure (core, messages and the venue contract's records only), so whatever publishes a position change (the gateway, a live
venue's reconciliation) builds the same view as `get_positions` answers. Money is the settle
currency's decimal text (ATTO exact), prices the instrument's, `margin_ratio` a fraction
("0.0123" = 1.23%, "1" = liquidation): maintenance margin over the margin balance that backs
the position (isolated: its isolated margin plus its uPnL; cross: the account's settle wallet
balance plus the uPnL of every cross position, against all their maintenance margin).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from decimal import Decimal

from coinwire.core import margin
from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.numbers import ATTO_DECIMALS, atto_to_str
from coinwire.core.positions import MarginMode, Position, entry_price, notional_at, unrealised_pnl
from coinwire.messages import PositionView
from coinwire.venues.base import FundingPayment

__all__ = ["RATIO_DECIMALS", "funding_view", "margin_ratio_text", "position_view", "pool_view", "views_of"]

RATIO_DECIMALS = 8  # margin_ratio's scale (core.margin: 1e-8 units)


def margin_ratio_text(ratio: int) -> str:
    """`core.margin.margin_ratio`'s 1e-8 units as a fraction's text: 2_400_000 -> "0.024", 100_000_000 -> "1"."""
    text = format(Decimal(ratio).scaleb(-RATIO_DECIMALS), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def position_view(
    pos: Position, inst: Instrument, *, seq: int = 0, wallet_balance: int = 0, legs: Sequence[Position] = (),
    others: Sequence[tuple[Position, Instrument]] = (),
) -> PositionView:
    """The view of `pos` at its own `mark` (`Position.mark`; its entry price before the first mark).

    Cross margin only: `wallet_balance` is the account's (or wallet set's) settle wallet balance
    in ATTO that backs the pool; `legs` the other legs of the same symbol (hedge mode) and
    `others` the pool's positions in other symbols, each with its instrument: their maintenance
    margin and uPnL share the balance (Binance's TMM1 and UPNL1). Isolated positions stand alone
    on their isolated margin.
    """
    mark = pos.mark or _entry_units(pos, inst)
    size = abs(pos.size)
    upnl = unrealised_pnl(pos, inst, mark)
    maintenance = margin.maintenance_margin(inst, pos, mark)
    liquidation = None
    if pos.margin_mode is MarginMode.ISOLATED:
        ratio = margin.margin_ratio(maintenance, pos.isolated_margin + upnl)
        if size:
            liquidation = margin.liquidation_price(inst, pos, wallet_balance=pos.isolated_margin, mark=mark)
    else:
        other_mm = other_upnl = 0
        for other, other_inst in others:
            other_mark = other.mark or _entry_units(other, other_inst)
            other_mm += margin.maintenance_margin(other_inst, other, other_mark)
            other_upnl += unrealised_pnl(other, other_inst, other_mark)
        pool_mm, pool_upnl = maintenance + other_mm, upnl + other_upnl
        for leg in legs:
            pool_mm += margin.maintenance_margin(inst, leg, mark)
            pool_upnl += unrealised_pnl(leg, inst, mark)
        ratio = margin.margin_ratio(pool_mm, wallet_balance + pool_upnl)
        if size:
            liquidation = margin.liquidation_price(inst, [pos, *legs], wallet_balance=wallet_balance, mark=mark, other_mm=other_mm,
                                                   other_upnl=other_upnl)
    isolated = pos.margin_mode is MarginMode.ISOLATED
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
        notional=atto_to_str(notional_at(inst, size, mark)),
        unrealised_pnl=atto_to_str(upnl),
        realised_pnl=atto_to_str(pos.realised_pnl),
        funding=atto_to_str(pos.funding),
        fees=atto_to_str(pos.fees),
        leverage=pos.leverage,
        margin_mode=pos.margin_mode.value,
        isolated_margin=atto_to_str(pos.isolated_margin) if isolated else None,
        initial_margin=atto_to_str(margin.initial_margin(inst, pos, mark) if size else 0),
        maintenance_margin=atto_to_str(maintenance),
        margin_ratio=margin_ratio_text(ratio),
        liquidation_price=inst.price_str(liquidation) if liquidation is not None else None,
        wallet_set_id=pos.wallet_set_id,
        updated_at=pos.updated_at,
        seq=seq or pos.seq,
    )


def pool_view(ledger: Ledger, pos: Position, instrument_of: Callable[[str, str], Instrument], seq: int = 0) -> PositionView:
    """`position_view` of a position in the ledger, with what shares its margin there.

    A cross position's pool is its account's cross positions on the exchange in the same
    partition (wallet set, or the account's unallocated funds), backed by that partition's
    settle wallet balance; hedge legs of its symbol are `legs`, other symbols `others`.
    """
    inst = instrument_of(pos.exchange, pos.symbol)
    if pos.margin_mode is MarginMode.ISOLATED:
        return position_view(pos, inst, seq=seq)
    legs: list[Position] = []
    others: list[tuple[Position, Instrument]] = []
    for other in ledger.positions.of_account(pos.account_id, pos.exchange):
        if other is pos or other.size == 0 or other.margin_mode is not MarginMode.CROSS or other.wallet_set_id != pos.wallet_set_id:
            continue
        if other.symbol == pos.symbol:
            legs.append(other)
        else:
            others.append((other, instrument_of(other.exchange, other.symbol)))
    settle = inst.settle or inst.quote
    balance = ledger.wallet(pos.exchange, settle, pos.wallet_set_id, pos.account_id).balance
    return position_view(pos, inst, seq=seq, wallet_balance=balance, legs=legs, others=others)


def views_of(ledger: Ledger, instrument_of: Callable[[str, str], Instrument], accounts: Collection[int] | None,
             exchange: str | None = None, symbol: str | None = None) -> list[PositionView]:
    """The open positions of `accounts` (None: every account), optionally of one exchange and symbol, as views."""
    views = []
    for pos in ledger.positions.all():
        if pos.size == 0 or (accounts is not None and pos.account_id not in accounts):
            continue
        if (exchange is not None and pos.exchange != exchange) or (symbol is not None and pos.symbol != symbol):
            continue
        views.append(pool_view(ledger, pos, instrument_of))
    return views


def funding_view(payment: FundingPayment, inst: Instrument) -> dict[str, object]:
    """One funding payment as JSON: `amount` received (+) or paid (-) in the settle currency, `rate` as a fraction."""
    return {
        "id": payment.id, "account": payment.account_id, "exchange": payment.exchange, "symbol": payment.symbol,
        "position_side": payment.side.value, "wallet_set_id": payment.wallet_set_id, "time": payment.ts,
        "size": inst.size_str(payment.size), "rate": margin_ratio_text(payment.rate), "mark_price": inst.price_str(payment.mark),
        "amount": atto_to_str(payment.amount), "currency": inst.settle or inst.quote,
    }


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
