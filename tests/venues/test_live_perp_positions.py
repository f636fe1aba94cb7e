"""Positions of a live perpetual account follow the venue: reconciled from the local USD-M server's reports, across a restart.

A real ccxt.binanceusdm talks to `tests/venues/binance_usdm.py`; the ledger and its PositionBook
are coinwire's own. The venue is the authority: a position opened or changed there while
coinwire was away is in the book after reconciling, on the unallocated position, with its
margin held; a position in a wallet set is never touched; settings come from the venue.
"""

from __future__ import annotations

from decimal import Decimal

from coinwire.core.instruments import Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.orders import PositionSide
from coinwire.core.positions import MarginMode, Position, PositionSettings
from coinwire.venues.ccxt_perp import PerpAccount
from coinwire.venues.ccxt_venue import CcxtVenue
from coinwire.venues.live_positions import PositionDrift, reconcile_positions
from tests.core.stored_ledger import StoredLedger
from tests.feeds.binance_server import ServerRunner
from tests.venues.binance_usdm import UsdmBinance
from tests.venues.usdm_helpers import ATTO, PERP, make_usdm_venue, perp_order, server, usdm, venue

__all__ = ["server", "usdm", "venue"]  # the fixtures these tests use

EX = "binance-usdm"
ACCOUNT = 7


def funded_ledger() -> StoredLedger:
    """A ledger keeping its lines as the store would (so it can be replayed after a restart), with 10000 USDT."""
    ledger = StoredLedger({EX: ["BTC", "USDT"]})
    ledger.sync_venue(EX, "USDT", 10_000 * ATTO, 1, ACCOUNT)
    return ledger


async def reconcile(ledger: Ledger, venue: CcxtVenue, ts: int) -> tuple[list[Position], list[PositionDrift]]:
    account = PerpAccount(venue)
    inst = venue.instruments[PERP]
    result = reconcile_positions(ledger, ACCOUNT, EX, {PERP: inst}, await account.positions([inst]), ts,
                                 hedge_mode=await account.hedge_mode())
    return result.positions, result.drifts


def held(ledger: Ledger) -> int:
    return ledger.account_balances(EX, ACCOUNT)["USDT"].hold


async def test_a_position_opened_at_the_venue_enters_the_book_with_its_settings_and_margin(
    venue: CcxtVenue, usdm: UsdmBinance
) -> None:
    inst: Instrument = venue.instruments[PERP]
    account = PerpAccount(venue)
    await account.set_leverage(inst, 10)
    await account.set_margin_mode(inst, "isolated")
    await venue.place(perp_order(inst, "away-1", "buy", "0.010"), inst)
    ledger = funded_ledger()
    positions, drifts = await reconcile(ledger, venue, ts=5)
    assert drifts == [PositionDrift(PERP, PositionSide.BOTH, 0, 10)]
    [pos] = positions
    assert (pos.size, pos.entry_cost, pos.leverage, pos.margin_mode, pos.mark, pos.wallet_set_id) == (
        10, 100_010 * ATTO // 100, 10, MarginMode.ISOLATED, 1_000_050, None)
    assert ledger.positions.get(ACCOUNT, EX, PERP) is pos
    assert ledger.positions.settings(ACCOUNT, EX, PERP) == PositionSettings(
        account_id=ACCOUNT, exchange=EX, symbol=PERP, leverage=10, margin_mode=MarginMode.ISOLATED)
    assert held(ledger) == Decimal("100.01") * ATTO  # the isolated wallet the venue gave it
    assert await reconcile(ledger, venue, ts=6) == ([], [])  # agreeing: nothing changes


async def test_reconcile_after_a_restart_takes_what_the_venue_did_meanwhile(
    venue: CcxtVenue, server: ServerRunner, usdm: UsdmBinance
) -> None:
    inst = venue.instruments[PERP]
    await venue.place(perp_order(inst, "open-1", "buy", "0.030"), inst)  # cross, 20x: the venue's defaults
    ledger = funded_ledger()
    await reconcile(ledger, venue, ts=5)
    entry_cost = ledger.positions.get(ACCOUNT, EX, PERP).entry_cost  # type: ignore[union-attr]
    assert entry_cost == Decimal("0.03") * 100_010 * ATTO  # at the best ask
    assert held(ledger) == -(-entry_cost // 20)  # cross: the initial margin at entry
    await venue.close()
    # coinwire is down; at the venue a third of the position is closed by hand and the leverage changed
    usdm.set_book([("100100.0", "5")], [("100110.0", "5")])
    outside = make_usdm_venue(server)
    await outside.load_instruments([PERP])
    await outside.place(perp_order(inst, "manual-1", "sell", "0.010", reduce_only=True), inst)
    await PerpAccount(outside).set_leverage(inst, 5)
    await outside.close()
    # restart: the ledger comes back from its records, a new client connects
    restored = Ledger.replay(ledger.all_wallets(), ledger.wallet_sets(active_only=False), ledger.lines(), {EX: ["USDT"]},
                             positions=ledger.positions.all(), position_settings=ledger.positions.all_settings())
    assert restored.positions.get(ACCOUNT, EX, PERP).size == 30  # type: ignore[union-attr]
    again = make_usdm_venue(server)
    try:
        await again.load_instruments([PERP])
        [pos], drifts = await reconcile(restored, again, ts=9)
    finally:
        await again.close()
    assert drifts == [PositionDrift(PERP, PositionSide.BOTH, 30, 20)]
    # a reduction keeps the average entry: two thirds of the entry cost, exactly
    assert (pos.size, pos.entry_cost, pos.leverage, pos.mark) == (20, entry_cost * 2 // 3, 5, 1_001_050)
    assert held(restored) == -(-(entry_cost * 2 // 3) // 5)


async def test_a_wallet_sets_position_is_kept_and_the_difference_goes_to_the_unallocated_one(
    venue: CcxtVenue, usdm: UsdmBinance
) -> None:
    inst = venue.instruments[PERP]
    await venue.place(perp_order(inst, "open-2", "sell", "0.020"), inst)  # short 0.020 at 100000.0 (the bid)
    ledger = funded_ledger()
    set_id = ledger.create_wallet_set("run", "d", [(EX, "USDT", 1000 * ATTO)], ts=2, accounts={EX: ACCOUNT})[0].id
    run_pos = Position(account_id=ACCOUNT, exchange=EX, symbol=PERP, wallet_set_id=set_id, size=-5,
                       entry_cost=inst.contract_notional(1_000_000, 5), leverage=20, margin_mode=MarginMode.CROSS)
    ledger.positions.put(run_pos)
    positions, drifts = await reconcile(ledger, venue, ts=5)
    assert drifts == [PositionDrift(PERP, PositionSide.BOTH, -5, -20)]
    spare = ledger.positions.get(ACCOUNT, EX, PERP)
    assert spare is not None and spare.size == -15 and spare.entry_cost == inst.contract_notional(1_000_000, 15)
    assert run_pos.size == -5 and run_pos.mark == 1_000_050 and positions == [run_pos, spare]
    # the venue's position closes: the unallocated one goes flat (the run's stays: the run owns it)
    await venue.place(perp_order(inst, "close-2", "buy", "0.020", reduce_only=True), inst)
    positions, drifts = await reconcile(ledger, venue, ts=6)
    assert drifts == [PositionDrift(PERP, PositionSide.BOTH, -20, 0)]
    assert spare.size == 5 and run_pos.size == -5  # the book sums to the venue's flat leg


async def test_hedge_legs_are_reconciled_each_and_the_mode_comes_from_the_venue(
    venue: CcxtVenue, usdm: UsdmBinance
) -> None:
    inst = venue.instruments[PERP]
    await PerpAccount(venue).set_hedge_mode(True)
    await venue.place(perp_order(inst, "l-1", "buy", "0.010", leg=PositionSide.LONG), inst)
    await venue.place(perp_order(inst, "s-1", "sell", "0.020", leg=PositionSide.SHORT), inst)
    ledger = funded_ledger()
    positions, drifts = await reconcile(ledger, venue, ts=5)
    assert ledger.positions.hedge_mode(ACCOUNT, EX)
    assert [(p.side, p.size) for p in positions] == [(PositionSide.LONG, 10), (PositionSide.SHORT, -20)]
    assert [d.leg for d in drifts] == [PositionSide.LONG, PositionSide.SHORT]
