"""Perpetual order path on the real ledger and matching engine: margin holds, positions, PnL, funding, liquidation, checks."""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from coinwire.core.errors import CoinwireError
from coinwire.core.ids import IdSequence
from coinwire.core.instruments import FEE_SCALE, Instrument
from coinwire.core.ledger import Ledger
from coinwire.core.margin import bankruptcy_price, bracket_for, funding_payment, liquidation_price
from coinwire.core.matching import MatchingEngine
from coinwire.core.numbers import ATTO
from coinwire.core.orders import DoneReason, Order, OrderStatus, OrderType, PositionSide, Side
from coinwire.core.perp_execution import (
    PerpStep,
    accept_perp_order,
    adjust_margin,
    available_margin,
    close_position_order,
    fire_perp,
    liquidations,
    place_perp_order,
    pool_state,
    position_risk,
    release_perp_hold,
    set_hedge_mode,
    set_leverage,
    set_margin_mode,
    settle_funding,
)
from coinwire.core.positions import MarginMode, Position
from coinwire.core.wallets import LineKind
from coinwire.venues.brackets import perpetual_fields

EX = "binanceusdm"
BTC = Instrument(exchange=EX, symbol="BTC/USDT:USDT", base="BTC", quote="USDT", price_decimals=1, size_decimals=3,
                 kind="perpetual", settle="USDT", maker_fee=20_000, taker_fee=50_000,
                 **perpetual_fields(EX, "BTC/USDT:USDT"))  # type: ignore[arg-type]
DEPOSIT = 10_000 * ATTO


class Venue:
    """The pieces a paper venue composes: a ledger, a matching engine with a book, id sequences."""

    def __init__(self, deposit: int = DEPOSIT, accounts: tuple[int, ...] = (1,)) -> None:
        self.ledger = Ledger({EX: ["USDT", "BTC"]})
        for account in accounts:
            self.ledger.add_virtual_tx(EX, "USDT", deposit, 0, account)
        self.engine = MatchingEngine(BTC, IdSequence())
        self.order_ids = IdSequence()
        self.mark = 600_000
        self.book_at(600_000)

    def book_at(self, price: int) -> None:
        """A deep book one tick either side of `price`, which becomes the mark."""
        self.engine.on_snapshot([(price - 1, 100_000)], [(price + 1, 100_000)], 0)
        self.mark = price

    def order(self, side: Side, size: int, *, account: int = 1, type: OrderType = OrderType.MARKET, limit: int = 0,
              reduce_only: bool = False, position_side: PositionSide = PositionSide.BOTH, wallet_set_id: int | None = None,
              ts: int = 1) -> PerpStep:
        order = Order(id=self.order_ids.next(), client_oid=f"c{self.order_ids.last}", exchange=EX, symbol=BTC.symbol, side=side,
                      type=type, size=size, limit=limit, account_id=account, reduce_only=reduce_only, position_side=position_side,
                      wallet_set_id=wallet_set_id, created_at=ts)
        return place_perp_order(self.ledger, self.engine, order, ts, mark=self.mark)

    def configure(self, mode: MarginMode, leverage: int, hedge: bool = False, account: int = 1) -> None:
        """The account's margin mode, leverage and position mode for BTC, as a user sets them before trading."""
        set_margin_mode(self.ledger, BTC, account, mode, open_orders=False)
        set_hedge_mode(self.ledger, account, EX, hedge, open_orders=False)
        set_leverage(self.ledger, BTC, account, leverage, 0, mark=self.mark)

    def position(self, account: int = 1, side: PositionSide = PositionSide.BOTH) -> Position:
        pos = self.ledger.positions.get(account, EX, BTC.symbol, side)
        assert pos is not None
        return pos

    def balance(self, account: int = 1) -> int:
        return self.ledger.wallet(EX, "USDT", None, account).balance


def line_sum(step: PerpStep, kind: LineKind) -> int:
    return sum(line.movement for line in step.lines if line.kind is kind)


def test_open_add_reduce_close_long_realises_exact_pnl() -> None:
    venue = Venue()
    set_leverage(venue.ledger, BTC, 1, 10, 0, mark=venue.mark)
    step = venue.order(Side.BUY, 100)  # 0.1 BTC at 60000.1
    pos = venue.position()
    assert (pos.size, pos.entry_cost) == (100, BTC.contract_notional(600_001, 100))
    assert venue.ledger.hold_of(pos.hold_id) == -(-pos.entry_cost // 10)  # cross: IM at entry
    assert line_sum(step, LineKind.FEE) == -BTC.fee_atto(BTC.contract_notional(600_001, 100), maker=False)
    venue.book_at(610_000)
    venue.order(Side.BUY, 100)  # adds at 61000.1: average entry
    assert venue.position().entry_cost == BTC.contract_notional(600_001, 100) + BTC.contract_notional(610_001, 100)
    venue.book_at(620_000)
    step = venue.order(Side.SELL, 50)  # reduces a quarter at 61999.9
    cost = BTC.contract_notional(600_001, 100) + BTC.contract_notional(610_001, 100)
    assert line_sum(step, LineKind.PNL) == BTC.contract_notional(619_999, 50) - cost * 50 // 200
    step = venue.order(Side.SELL, 150, reduce_only=True)
    assert venue.position().size == 0 and venue.position().entry_cost == 0
    assert venue.ledger.hold_of(venue.position().hold_id) == 0
    venue.ledger.check()
    fees = sum(f for f in (venue.position().fees,))
    assert venue.balance() == DEPOSIT + venue.position().realised_pnl - fees


def test_short_flip_through_zero_in_one_way_mode() -> None:
    venue = Venue()
    venue.order(Side.SELL, 100)
    assert venue.position().size == -100
    venue.book_at(590_000)
    step = venue.order(Side.BUY, 300)  # closes 100 at 59000.1 with a profit, opens 200 long
    pos = venue.position()
    assert pos.size == 200 and pos.entry_cost == BTC.contract_notional(590_001, 200)
    assert line_sum(step, LineKind.PNL) == BTC.contract_notional(599_999, 100) - BTC.contract_notional(590_001, 100)
    venue.ledger.check()


def test_reduce_only_is_cut_to_the_position_and_never_opens() -> None:
    venue = Venue()
    venue.order(Side.BUY, 100)
    step = venue.order(Side.SELL, 500, reduce_only=True)
    assert step.fills[0].size == 100 and venue.position().size == 0
    with pytest.raises(CoinwireError) as refused:
        venue.order(Side.SELL, 10, reduce_only=True)
    assert refused.value.code == "reduce_only_would_open"


def test_position_side_checks_and_hedge_legs_are_independent() -> None:
    venue = Venue()
    with pytest.raises(CoinwireError) as refused:
        venue.order(Side.BUY, 10, position_side=PositionSide.LONG)
    assert refused.value.code == "position_side_in_one_way_mode"
    set_hedge_mode(venue.ledger, 1, EX, True, open_orders=False)
    with pytest.raises(CoinwireError) as refused:
        venue.order(Side.BUY, 10)
    assert refused.value.code == "position_side_required"
    venue.order(Side.BUY, 100, position_side=PositionSide.LONG)
    venue.order(Side.SELL, 40, position_side=PositionSide.SHORT)
    assert venue.position(side=PositionSide.LONG).size == 100
    assert venue.position(side=PositionSide.SHORT).size == -40
    venue.order(Side.BUY, 100, position_side=PositionSide.SHORT)  # closes the short leg only (cut to 40)
    assert venue.position(side=PositionSide.SHORT).size == 0 and venue.position(side=PositionSide.LONG).size == 100
    with pytest.raises(CoinwireError) as refused:
        set_hedge_mode(venue.ledger, 1, EX, False, open_orders=False)
    assert refused.value.code == "position_mode_change_with_open_position"
    venue.ledger.check()


def test_leverage_and_margin_mode_checks() -> None:
    venue = Venue()
    with pytest.raises(CoinwireError) as refused:
        set_leverage(venue.ledger, BTC, 1, 126, 0, mark=venue.mark)
    assert refused.value.code == "leverage_above_maximum"
    set_leverage(venue.ledger, BTC, 1, 125, 0, mark=venue.mark)
    venue.order(Side.BUY, 100)
    with pytest.raises(CoinwireError) as refused:
        set_margin_mode(venue.ledger, BTC, 1, MarginMode.ISOLATED, open_orders=False)
    assert refused.value.code == "margin_mode_change_with_open_position"
    with pytest.raises(CoinwireError) as refused:
        venue.order(Side.BUY, 1_000)  # 1.1 BTC = 66000 of notional: bracket 2 allows 100x at most
    assert refused.value.code == "leverage_above_maximum"


def test_insufficient_margin_changes_nothing() -> None:
    venue = Venue(deposit=100 * ATTO)
    set_leverage(venue.ledger, BTC, 1, 5, 0, mark=venue.mark)
    before = venue.ledger.totals()
    with pytest.raises(CoinwireError) as refused:
        venue.order(Side.BUY, 100)  # 6000 of notional at 5x needs 1200
    assert refused.value.code == "insufficient_margin"
    after = venue.ledger.totals()
    assert (after.wallets, after.holds) == (before.wallets, before.holds) and venue.ledger.positions.get(1, EX, BTC.symbol) is None


def test_funding_lines_are_the_payments() -> None:
    venue = Venue(accounts=(1, 2))
    venue.order(Side.BUY, 100, account=1)
    venue.order(Side.SELL, 100, account=2)
    step = settle_funding(venue.ledger, BTC, 10_000, 600_000, 28_800 * 10**9)
    payments = [funding_payment(BTC, venue.position(a), 600_000, 10_000) for a in (1, 2)]
    assert payments == [-6 * ATTO // 10, 6 * ATTO // 10]  # 6000 x 0.0001
    assert sorted(line.movement for line in step.lines if line.kind is LineKind.FUNDING) == sorted(payments)
    assert venue.position(1).funding == -6 * ATTO // 10 and venue.position(2).funding == 6 * ATTO // 10
    venue.ledger.check()


def test_fifty_x_long_through_a_sharp_drop_is_liquidated_at_the_documented_price_with_the_fee() -> None:
    """Isolated 50x long of 0.5 BTC at 60000.1: liquidation at Binance's price, closed at the bankruptcy price, margin lost."""
    venue = Venue()
    venue.configure(MarginMode.ISOLATED, 50)
    venue.order(Side.BUY, 500)
    pos = venue.position()
    margin = pos.isolated_margin
    assert margin == -(-BTC.contract_notional(600_001, 500) // 50)
    # Binance: LP = (WB + cum - size x EP) / (size x MMR - size), bracket 1 (0.4%, cum 0): WB = 600.001
    exact = (margin / ATTO - 0.5 * 60000.1) / (0.5 * 0.004 - 0.5)
    lp = liquidation_price(BTC, pos, wallet_balance=margin, mark=venue.mark)
    assert lp is not None and abs(lp / 10 - exact) <= 0.1
    before = venue.balance()
    for price in range(600_000, lp, -500):  # the mark falls: nothing happens above the price
        assert not liquidations(venue.ledger, BTC, price, 2, venue.order_ids, IdSequence(50)).fills
    step = liquidations(venue.ledger, BTC, lp, 3, venue.order_ids, IdSequence(100))
    assert [o.type for o in step.orders] == [OrderType.LIQUIDATION] and step.orders[0].is_done
    bp = bankruptcy_price(BTC, Position(account_id=1, exchange=EX, symbol=BTC.symbol, size=500,
                                        entry_cost=BTC.contract_notional(600_001, 500), leverage=50,
                                        margin_mode=MarginMode.ISOLATED), margin)
    assert step.fills[0].price == bp and step.fills[0].size == 500
    fee = line_sum(step, LineKind.LIQUIDATION)
    clearance = BTC.contract_notional(bp, 500) * BTC.liquidation_fee // FEE_SCALE
    assert -fee >= clearance and -fee - clearance <= BTC.contract_notional(BTC.tick, 500)  # the fee, to a tick's rounding
    assert venue.balance() == before - margin  # the isolated margin is lost, nothing more
    assert venue.position().size == 0
    venue.ledger.check()


def test_cross_liquidation_takes_the_pool_and_never_goes_negative() -> None:
    venue = Venue(deposit=1_000 * ATTO)
    set_leverage(venue.ledger, BTC, 1, 20, 0, mark=venue.mark)
    venue.order(Side.BUY, 300)  # 18000 notional at 20x: 900 of IM
    pos = venue.position()
    lp = liquidation_price(BTC, pos, wallet_balance=pool_state(venue.ledger, pos).wallet_balance, mark=venue.mark)
    assert lp is not None
    assert not liquidations(venue.ledger, BTC, lp + BTC.tick, 2, venue.order_ids, IdSequence(50)).fills
    step = liquidations(venue.ledger, BTC, lp - 5_000, 3, venue.order_ids, IdSequence(100))  # a gap past bankruptcy
    assert step.fills and step.fills[0].price == lp - 5_000
    assert venue.balance() == 0
    venue.ledger.check()


def test_adjust_margin_isolated_only_and_not_below_initial() -> None:
    venue = Venue()
    venue.order(Side.BUY, 100)
    with pytest.raises(CoinwireError) as refused:
        adjust_margin(venue.ledger, BTC, 1, PositionSide.BOTH, None, ATTO, 2, mark=venue.mark)
    assert refused.value.code == "margin_mode_not_isolated"
    venue.order(Side.SELL, 100, reduce_only=True)
    set_margin_mode(venue.ledger, BTC, 1, MarginMode.ISOLATED, open_orders=False)
    venue.order(Side.BUY, 100)
    pos = venue.position()
    adjust_margin(venue.ledger, BTC, 1, PositionSide.BOTH, None, 100 * ATTO, 2, mark=venue.mark)
    assert venue.ledger.hold_of(pos.hold_id) == pos.isolated_margin
    with pytest.raises(CoinwireError) as refused:
        adjust_margin(venue.ledger, BTC, 1, PositionSide.BOTH, None, -pos.isolated_margin, 2, mark=venue.mark)
    assert refused.value.code == "margin_below_initial"
    adjust_margin(venue.ledger, BTC, 1, PositionSide.BOTH, None, -50 * ATTO, 2, mark=venue.mark)
    assert venue.ledger.hold_of(pos.hold_id) == pos.isolated_margin
    venue.ledger.check()


def test_close_position_order_and_two_users_never_cross() -> None:
    venue = Venue(accounts=(1, 2))
    venue.order(Side.BUY, 100, account=1)
    with pytest.raises(CoinwireError) as refused:
        close_position_order(venue.ledger, BTC, 2, BTC.symbol, PositionSide.BOTH, None, 99, "x", 2)
    assert refused.value.code == "no_position"
    order = close_position_order(venue.ledger, BTC, 1, BTC.symbol, PositionSide.BOTH, None, venue.order_ids.next(), "x", 2)
    assert order.reduce_only and order.side is Side.SELL and order.size == 100
    place_perp_order(venue.ledger, venue.engine, order, 2, mark=venue.mark)
    assert venue.position(1).size == 0 and venue.ledger.positions.get(2, EX, BTC.symbol) is None
    assert venue.balance(2) == DEPOSIT


def test_restore_rebuilds_positions_and_holds() -> None:
    venue = Venue()
    lines = []
    lines += venue.order(Side.BUY, 100).lines
    ledger = venue.ledger
    restored = Ledger.restore(ledger.all_wallets(), ledger.wallet_sets(active_only=False), ledger.totals(), {EX: ["USDT"]},
                              positions=ledger.positions.all(), position_settings=ledger.positions.all_settings())
    pos = restored.positions.get(1, EX, BTC.symbol)
    assert pos is not None and pos.size == 100 and restored.hold_of(pos.hold_id) == ledger.hold_of(pos.hold_id)
    restored.positions.register(BTC)
    assert available_margin(restored, 1, EX, "USDT", None) == available_margin(ledger, 1, EX, "USDT", None)


actions = st.lists(st.tuples(st.sampled_from(["buy", "sell", "reduce", "mark", "fund", "liq"]), st.integers(1, 200),
                             st.sampled_from([-250, -120, -60, -25, -8, -1, 1, 8, 25, 60, 120, 250])), min_size=1, max_size=25)


@settings(max_examples=300, deadline=None)
@given(actions, st.sampled_from([MarginMode.CROSS, MarginMode.ISOLATED]), st.integers(2, 100), st.booleans())
def test_random_paths_keep_the_books_balanced(script: list[tuple[str, int, int]], mode: MarginMode, leverage: int,
                                               hedge: bool) -> None:
    """Any path of orders, marks, funding and liquidation: the ledger balances, no wallet goes negative, reduce-only never
    grows a position, each funding settlement's lines are its payments, and the other hedge leg is untouched."""
    venue = Venue(deposit=2_000 * ATTO)
    set_margin_mode(venue.ledger, BTC, 1, mode, open_orders=False)
    set_hedge_mode(venue.ledger, 1, EX, hedge, open_orders=False)
    try:
        set_leverage(venue.ledger, BTC, 1, leverage, 0, mark=venue.mark)
    except CoinwireError:
        return
    ts = 1
    for action, size, move in script:
        ts += 1
        leg = (PositionSide.LONG if action == "buy" else PositionSide.SHORT) if hedge else PositionSide.BOTH
        other = venue.ledger.positions.get(1, EX, BTC.symbol, PositionSide.SHORT if leg is PositionSide.LONG else PositionSide.LONG)
        other_before = None if other is None else (other.size, other.entry_cost)
        if action in ("buy", "sell"):
            try:
                step = venue.order(Side.BUY if action == "buy" else Side.SELL, size, position_side=leg, ts=ts)
            except CoinwireError:
                continue
            event("order filled" if step.fills else "order rested or cancelled")
            if hedge and other is not None:
                assert (other.size, other.entry_cost) == other_before
        elif action == "reduce":
            for pos in venue.ledger.positions.of_account(1, EX):
                if pos.size:
                    before = abs(pos.size)
                    side = Side.SELL if pos.size > 0 else Side.BUY
                    try:
                        venue.order(side, size, reduce_only=True, position_side=pos.side, ts=ts)
                    except CoinwireError:
                        continue
                    assert abs(pos.size) <= before and (pos.size == 0 or (pos.size > 0) == (side is Side.SELL))
        elif action == "mark":  # a venue checks liquidations at every mark
            venue.book_at(venue.mark * (1_000 + move) // 1_000)  # moves in thousandths
            liquidated = liquidations(venue.ledger, BTC, venue.mark, ts, venue.order_ids, IdSequence(10_000 + ts * 10))
            event("liquidated" if liquidated.fills else "not liquidated")
            for pos in venue.ledger.positions.open_positions(EX):  # what survives the check has margin left at the mark
                assert pool_state(venue.ledger, pos, {BTC.symbol: venue.mark}).margin_balance > 0
        elif action == "fund":
            open_now = venue.ledger.positions.open_positions(EX)
            expected = {p.id: funding_payment(BTC, p, venue.mark, move * 97) for p in open_now}
            before_funding = {p.id: p.funding for p in open_now}
            step = settle_funding(venue.ledger, BTC, move * 97, venue.mark, ts)
            paid = sum(line.movement for line in step.lines if line.kind is LineKind.FUNDING)
            assert paid == sum(p.funding - before_funding[p.id] for p in step.positions)
            for p in step.positions:  # exactly the payment; only a payer with nothing left pays less
                got = p.funding - before_funding[p.id]
                assert got == expected[p.id] or expected[p.id] < got <= 0
        else:
            liquidated = liquidations(venue.ledger, BTC, venue.mark, ts, venue.order_ids, IdSequence(10_000 + ts * 10))
            event("liquidated" if liquidated.fills else "not liquidated")
        venue.ledger.check()
        wallet = venue.ledger.wallet(EX, "USDT", None, 1)
        assert wallet.balance >= 0 and wallet.available >= 0
        for pos in venue.ledger.positions.open_positions(EX):
            if pos.margin_mode is MarginMode.ISOLATED:
                assert venue.ledger.hold_of(pos.hold_id) == pos.isolated_margin


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 125), st.integers(1, 800), st.booleans(), st.sampled_from([MarginMode.CROSS, MarginMode.ISOLATED]))
def test_liquidation_happens_at_the_computed_price_not_a_tick_before(leverage: int, size: int, long: bool,
                                                                     mode: MarginMode) -> None:
    """On a mark path towards the liquidation price: nothing one tick before it, the position closed at it."""
    venue = Venue(deposit=200_000 * ATTO if mode is MarginMode.ISOLATED else 3_000 * ATTO)
    set_margin_mode(venue.ledger, BTC, 1, mode, open_orders=False)
    try:
        set_leverage(venue.ledger, BTC, 1, leverage, 0, mark=venue.mark)
        venue.order(Side.BUY if long else Side.SELL, size)
    except CoinwireError:
        return
    pos = venue.position()
    state = pool_state(venue.ledger, pos)
    lp = liquidation_price(BTC, pos, wallet_balance=state.wallet_balance, mark=venue.mark)
    if lp is None:
        return
    before = lp + BTC.tick if long else lp - BTC.tick
    if bracket_for(BTC, BTC.contract_notional(lp, size)) != bracket_for(BTC, BTC.contract_notional(venue.mark, size)):
        return  # the price is computed with the bracket at the mark; a path crossing a tier moves it
    assert not liquidations(venue.ledger, BTC, before, 2, venue.order_ids, IdSequence(100)).fills
    step = liquidations(venue.ledger, BTC, lp, 3, venue.order_ids, IdSequence(200))
    assert len(step.fills) == 1 and venue.position().size == 0
    event("liquidated at the price")
    venue.ledger.check()


def test_a_reduce_only_stop_fires_for_what_is_left_of_the_position() -> None:
    venue = Venue()
    venue.order(Side.BUY, 100)
    stop = Order(id=venue.order_ids.next(), client_oid="stop", exchange=EX, symbol=BTC.symbol, side=Side.SELL,
                 type=OrderType.STOP_MARKET, size=500, stop_price=590_000, account_id=1, reduce_only=True)
    accept_perp_order(venue.ledger, venue.engine, stop, 2, mark=venue.mark)
    assert stop.size == 100 and venue.ledger.hold_of(stop.id) == 0  # cut to the position; closing holds no margin
    stop.move(OrderStatus.UNTRIGGERED, 2)
    venue.order(Side.SELL, 40, reduce_only=True)
    venue.book_at(589_000)
    stop.move(OrderStatus.TRIGGERED, 3)
    step = fire_perp(venue.ledger, venue.engine, stop, 3, mark=venue.mark)
    assert [f.size for f in step.fills] == [60] and venue.position().size == 0 and stop.is_done
    again = Order(id=venue.order_ids.next(), client_oid="late", exchange=EX, symbol=BTC.symbol, side=Side.SELL,
                  type=OrderType.STOP_MARKET, size=10, stop_price=580_000, account_id=1, reduce_only=True,
                  status=OrderStatus.TRIGGERED)
    assert not fire_perp(venue.ledger, venue.engine, again, 4, mark=venue.mark).fills
    assert again.done_reason is DoneReason.CANCELLED
    venue.ledger.check()


def test_position_risk_is_what_the_venue_acts_on() -> None:
    venue = Venue()
    venue.configure(MarginMode.ISOLATED, 25)
    venue.order(Side.SELL, 200)
    pos = venue.position()
    risk = position_risk(venue.ledger, pos, {BTC.symbol: 610_000})
    assert risk.notional == BTC.contract_notional(610_000, 200)
    assert risk.unrealised_pnl == pos.entry_cost - risk.notional
    assert risk.margin_ratio == -(-risk.maintenance_margin * FEE_SCALE // (pos.isolated_margin + risk.unrealised_pnl))
    assert risk.liquidation_price == liquidation_price(BTC, pos, wallet_balance=pos.isolated_margin, mark=610_000)
    assert risk.liquidation_price is not None
    assert not liquidations(venue.ledger, BTC, risk.liquidation_price - BTC.tick, 2, venue.order_ids, IdSequence(10)).fills
    assert liquidations(venue.ledger, BTC, risk.liquidation_price, 3, venue.order_ids, IdSequence(20)).fills
    assert position_risk(venue.ledger, venue.position()).liquidation_price is None


def test_a_wallet_set_trades_perpetuals_inside_its_partition() -> None:
    venue = Venue()
    wallet_set, _ = venue.ledger.create_wallet_set("run-1", "perp run", [(EX, "USDT", 1_000 * ATTO)], 1, accounts={EX: 1})
    venue.order(Side.BUY, 100, wallet_set_id=wallet_set.id)
    inside = venue.ledger.positions.get(1, EX, BTC.symbol, PositionSide.BOTH, wallet_set.id)
    assert inside is not None and inside.size == 100 and venue.ledger.positions.get(1, EX, BTC.symbol) is None
    assert venue.balance() == DEPOSIT - 1_000 * ATTO  # the unallocated wallet paid nothing
    assert venue.ledger.wallet(EX, "USDT", wallet_set.id, 1).hold == venue.ledger.hold_of(inside.hold_id) > 0
    with pytest.raises(CoinwireError) as refused:
        venue.ledger.deactivate_wallet_set(wallet_set.id, 2)  # its margin is held while the position is open
    assert refused.value.code == "wallet_set_busy"
    with pytest.raises(CoinwireError) as refused:
        venue.order(Side.BUY, 2_000, wallet_set_id=wallet_set.id)  # 120000 notional at 20x: beyond the set's 1000
    assert refused.value.code == "insufficient_margin"
    venue.order(Side.SELL, 100, reduce_only=True, wallet_set_id=wallet_set.id)
    venue.ledger.deactivate_wallet_set(wallet_set.id, 3)
    venue.ledger.check()


def test_a_resting_limit_order_holds_its_margin_and_makes_no_position() -> None:
    venue = Venue()
    venue.configure(MarginMode.CROSS, 10)
    step = venue.order(Side.BUY, 100, type=OrderType.LIMIT, limit=590_000)  # rests below the book
    order_id = venue.order_ids.last
    assert not step.fills and not step.positions and venue.ledger.positions.get(1, EX, BTC.symbol) is None
    notional = BTC.contract_notional(600_000, 100)  # counted at the mark, above its limit
    assert venue.ledger.hold_of(order_id) == -(-notional // 10) + BTC.fee_atto(notional, maker=False)
    assert available_margin(venue.ledger, 1, EX, "USDT", None) == DEPOSIT - venue.ledger.hold_of(order_id)
    order = venue.engine.cancel(order_id, 2)
    release_perp_hold(venue.ledger, BTC, order, 2)
    assert venue.ledger.hold_of(order_id) == 0
    venue.ledger.check()


def test_a_liquidation_order_is_never_a_clients() -> None:
    from coinwire.core.orders import CLIENT_ORDER_TYPES
    from coinwire.engine.order_args import order_type

    assert "liquidation" not in CLIENT_ORDER_TYPES and set(CLIENT_ORDER_TYPES.values()) == set(OrderType) - {OrderType.LIQUIDATION}
    with pytest.raises(CoinwireError) as refused:
        order_type("liquidation", None)
    assert refused.value.code == "unknown_order_type"
    venue = Venue()
    with pytest.raises(CoinwireError) as refused:
        venue.order(Side.SELL, 10, type=OrderType.LIQUIDATION)
    assert refused.value.code == "invalid_order_type"


def test_a_refused_reduce_only_order_keeps_its_size() -> None:
    venue = Venue()
    venue.order(Side.BUY, 100)
    order = Order(id=venue.order_ids.next(), client_oid="po", exchange=EX, symbol=BTC.symbol, side=Side.SELL,
                  type=OrderType.POST_ONLY, size=500, limit=590_000, account_id=1, reduce_only=True)
    with pytest.raises(CoinwireError) as refused:
        accept_perp_order(venue.ledger, venue.engine, order, 2, mark=venue.mark)  # would take the bid at 59999.9
    assert refused.value.code == "post_only_would_take" and order.size == 500
