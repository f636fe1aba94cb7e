"""A live account's perpetual positions brought to what the venue reports: the venue's word wins, differences are named.

On a live account the exchange is the authority on positions: it fills, funds and liquidates
whether coinwire runs or not. `reconcile_positions` compares the PositionBook's positions of
one account on one exchange (summed over its wallet sets, per symbol and leg) with the venue's
`PositionReport`s and makes the book agree, the way `LiveVenue.sync_balances` makes the
wallets agree: a difference in size goes to the account's unallocated position (wallet set
None), which a wallet set never owns; its margin hold follows it (the isolated wallet the venue
reports, or for cross the initial margin at entry), and the account's position alone on a leg
takes the venue's isolated wallet when only that differs (margin added or removed). Leverage, margin mode, mark and the
account's hedge mode are taken from the venue for every position of the symbol. A leg the
venue does not list is flat there.

Sizes on both sides are exact integers; an entry price the venue reports is rounded to the
tick, so a position reopened from the venue's report has `entry_cost` at that rounded price,
while a position whose size already agrees keeps its own exact entry cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.numbers import ceil_div
from coinwire.core.orders import PositionSide
from coinwire.core.positions import MarginMode, Position, PositionSettings
from coinwire.core.wallets import WalletLine
from coinwire.venues.reports import PositionReport

__all__ = ["PositionDrift", "Reconciled", "reconcile_positions"]


class PositionDrift(msgspec.Struct, frozen=True):
    """One leg whose size coinwire had wrong: what the book held (all wallet sets) and what the venue holds."""

    symbol: str
    leg: PositionSide
    stored: int
    venue: int


class Reconciled(msgspec.Struct):
    """What a reconciliation changed: positions (new state), margin hold lines, and the legs that drifted."""

    positions: list[Position]
    lines: list[WalletLine]
    drifts: list[PositionDrift]


def reconcile_positions(
    ledger: Ledger,
    account: int,
    exchange: str,
    instruments: Mapping[str, Instrument],
    reports: Sequence[PositionReport],
    ts: int,
    *,
    hedge_mode: bool | None = None,
) -> Reconciled:
    """Make `ledger.positions` of (account, exchange) agree with the venue's reports for these perpetuals.

    `hedge_mode`: the account's mode at the venue when known (else inferred from a hedge leg).
    """
    book = ledger.positions
    if hedge_mode is None and any(r.leg != PositionSide.BOTH.value for r in reports):
        hedge_mode = True
    if hedge_mode is not None:
        book.put_hedge_mode(account, exchange, hedge_mode)
    by_leg = {(r.symbol, PositionSide(r.leg)): r for r in reports if r.symbol in instruments}
    stored: dict[tuple[str, PositionSide], list[Position]] = {}
    for pos in book.of_account(account, exchange):
        if pos.symbol in instruments:
            stored.setdefault((pos.symbol, pos.side), []).append(pos)
    out = Reconciled([], [], [])
    for key in sorted(set(by_leg) | {k for k, ps in stored.items() if any(p.size for p in ps)}, key=_leg_order):
        symbol, leg = key
        inst = instruments[symbol]
        report = by_leg.get(key)
        positions = stored.get(key, [])
        if report is not None:
            settings = PositionSettings(account_id=account, exchange=exchange, symbol=symbol, leverage=report.leverage,
                                        margin_mode=MarginMode(report.margin_mode))
            book.put_settings(settings)
        else:
            settings = book.settings(account, exchange, symbol, inst)
        venue_size = report.size if report is not None else 0
        held = sum(p.size for p in positions)
        changed = [p for p in positions if _follow(p, settings, report, ts)]
        if venue_size != held:
            out.drifts.append(PositionDrift(symbol, leg, held, venue_size))
            spare = book.open_or_get(account, exchange, symbol, leg, None, settings, ts)
            _follow(spare, settings, report, ts)
            _resize(spare, inst, spare.size + venue_size - held, report, ts)
            out.lines += _hold(ledger, inst, spare, report, ts)
            if spare not in changed:
                changed.append(spare)
        elif report is not None and len(positions) == 1 and positions[0].wallet_set_id is None and positions[0].size:
            pos = positions[0]  # the account's own position alone on this leg: its isolated margin is the venue's
            if pos.margin_mode is MarginMode.ISOLATED and pos.isolated_margin != report.isolated_margin:
                out.lines += _hold(ledger, inst, pos, report, ts)
                pos.updated_at = ts
                if pos not in changed:
                    changed.append(pos)
        out.positions += changed
    return out


def _leg_order(key: tuple[str, PositionSide]) -> tuple[str, str]:
    return key[0], key[1].value


def _follow(pos: Position, settings: PositionSettings, report: PositionReport | None, ts: int) -> bool:
    """Take the venue's settings and mark for one stored position; True when anything changed."""
    mark = report.mark if report is not None else pos.mark
    if (pos.leverage, pos.margin_mode, pos.mark) == (settings.leverage, settings.margin_mode, mark):
        return False
    pos.leverage, pos.margin_mode, pos.mark, pos.updated_at = settings.leverage, settings.margin_mode, mark, ts
    return True


def _resize(pos: Position, inst: Instrument, size: int, report: PositionReport | None, ts: int) -> None:
    """Set the unallocated position's size; a reduction keeps its average entry, anything else takes the venue's."""
    if size == 0:
        pos.entry_cost = 0
    elif pos.size and (size > 0) == (pos.size > 0) and abs(size) <= abs(pos.size):
        pos.entry_cost = pos.entry_cost * abs(size) // abs(pos.size)
    else:
        entry = report.entry_price if report is not None else 0
        pos.entry_cost = inst.contract_notional(entry, abs(size))
        if not pos.size:
            pos.opened_at = ts
    pos.size = size
    pos.updated_at = ts


def _hold(ledger: Ledger, inst: Instrument, pos: Position, report: PositionReport | None, ts: int) -> list[WalletLine]:
    """The unallocated position's margin hold: its isolated wallet at the venue (also its `isolated_margin`), or its
    initial margin at entry (cross)."""
    if not pos.size:
        amount = pos.isolated_margin = 0
    elif pos.margin_mode is MarginMode.ISOLATED and report is not None and report.isolated_margin:
        amount = pos.isolated_margin = report.isolated_margin
    else:
        amount = ceil_div(pos.entry_cost, pos.leverage)  # initial margin at entry: entry notional / leverage, rounded up
    return ledger.set_hold(pos.hold_id, pos.exchange, inst.settle, None, amount, ts, pos.account_id)
