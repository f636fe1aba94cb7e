"""Margin formulas: brackets, margins, liquidation and bankruptcy prices, mark rule, funding, on Binance's shipped tiers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.instruments import FEE_SCALE, Instrument
from coinwire.core.margin import (
    LIQUIDATE_RATIO,
    bankruptcy_price,
    bracket_for,
    funding_payment,
    funding_times,
    initial_margin,
    liquidation_price,
    maintenance_margin,
    margin_ratio,
    mark_price,
    max_open_size,
)
from coinwire.core.numbers import ATTO
from coinwire.core.orders import PositionSide
from coinwire.core.positions import MarginMode, Position, unrealised_pnl
from coinwire.venues.brackets import perpetual_fields

BTC = Instrument(exchange="binanceusdm", symbol="BTC/USDT:USDT", base="BTC", quote="USDT", price_decimals=1, size_decimals=3,
                 kind="perpetual", settle="USDT", maker_fee=20_000, taker_fee=50_000,
                 **perpetual_fields("binanceusdm", "BTC/USDT:USDT"))  # type: ignore[arg-type]


def position(size: int, price: int, leverage: int = 10, side: PositionSide = PositionSide.BOTH) -> Position:
    return Position(account_id=1, exchange=BTC.exchange, symbol=BTC.symbol, side=side, size=size,
                    entry_cost=BTC.contract_notional(price, abs(size)), leverage=leverage, margin_mode=MarginMode.ISOLATED)


def test_brackets_are_binance_tiers() -> None:
    assert bracket_for(BTC, 0).max_leverage == 125
    assert bracket_for(BTC, 50_000 * ATTO - 1).mmr == 400_000
    second = bracket_for(BTC, 50_000 * ATTO)
    assert (second.max_leverage, second.mmr, second.maint_amount) == (100, 500_000, 50 * ATTO)


def test_margins_of_a_position() -> None:
    pos = position(1_000, 600_000)  # 1 BTC at 60000.0, 10x: notional 60000
    assert initial_margin(BTC, pos, 600_000) == 6_000 * ATTO
    assert maintenance_margin(BTC, pos, 600_000) == 60_000 * 500_000 // FEE_SCALE * ATTO - 50 * ATTO  # 300 - 50
    assert margin_ratio(250 * ATTO, 1_000 * ATTO) == 25_000_000
    assert margin_ratio(1, 0) >= LIQUIDATE_RATIO


def test_isolated_long_liquidation_price_is_binance_formula() -> None:
    # 1 BTC long at 60000, isolated margin 6000, bracket 2 (mmr 0.5%, cum 50):
    # LP = (6000 + 50 - 60000) / (1 x 0.005 - 1) = 54221.1055... -> up to the tick 54221.2
    pos = position(1_000, 600_000)
    assert liquidation_price(BTC, pos, wallet_balance=6_000 * ATTO, mark=600_000) == 542_212


def test_isolated_short_liquidation_price() -> None:
    # LP = (6000 + 50 + 60000) / (0.005 + 1) = 65721.39... -> down to 65721.3
    pos = position(-1_000, 600_000)
    assert liquidation_price(BTC, pos, wallet_balance=6_000 * ATTO, mark=600_000) == 657_213


def test_a_fully_margined_long_has_no_liquidation_price() -> None:
    pos = position(1_000, 600_000, leverage=1)
    assert liquidation_price(BTC, pos, wallet_balance=60_100 * ATTO, mark=600_000) is None


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5_000), st.integers(100_000, 1_000_000), st.integers(1, 125), st.booleans())
def test_at_the_liquidation_price_margin_balance_meets_maintenance(size: int, price: int, leverage: int, long: bool) -> None:
    """The price is within one tick of where margin balance meets maintenance, on the safe side (rounded towards the mark)."""
    pos = position(size if long else -size, price, leverage)
    margin = initial_margin(BTC, pos, price)
    lp = liquidation_price(BTC, pos, wallet_balance=margin, mark=price)
    if lp is None:
        assert long  # only a long can be beyond every positive price
        return
    if bracket_for(BTC, BTC.contract_notional(lp, size)) != bracket_for(BTC, BTC.contract_notional(price, size)):
        return  # the formula takes the bracket at the mark, as Binance's page does
    left = margin + unrealised_pnl(pos, BTC, lp) - maintenance_margin(BTC, pos, lp)
    assert -1 <= left <= 2 * BTC.contract_notional(BTC.tick, size)
    beyond = lp - BTC.tick if long else lp + BTC.tick
    if beyond > 0:
        assert margin + unrealised_pnl(pos, BTC, beyond) - maintenance_margin(BTC, pos, beyond) <= 1


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5_000), st.integers(100_000, 1_000_000), st.integers(1, 125), st.booleans(), st.integers(0, 3_000_000))
def test_bankruptcy_price_leaves_nothing_negative(size: int, price: int, leverage: int, long: bool, fee: int) -> None:
    inst = Instrument(**{**{f: getattr(BTC, f) for f in BTC.__struct_fields__}, "liquidation_fee": fee})
    pos = position(size if long else -size, price, leverage)
    margin = initial_margin(inst, pos, price)
    bp = bankruptcy_price(inst, pos, margin)
    left = margin + unrealised_pnl(pos, inst, bp) - inst.contract_notional(bp, size) * fee // FEE_SCALE
    assert left >= 0
    if bp > inst.tick:  # one tick further would leave nothing: it is the last price the margin covers
        worse = bp - inst.tick if long else bp + inst.tick
        assert margin + unrealised_pnl(pos, inst, worse) - inst.contract_notional(worse, size) * fee // FEE_SCALE <= 0


def test_mark_price_median_rule() -> None:
    assert mark_price(100, 104, 103) == 103
    assert mark_price(100, 104, 99) == 100
    assert mark_price(100, 104, None) == 102
    assert mark_price(None, None, 7) == 7
    assert mark_price(None, None, None) is None


def test_funding_payment_longs_pay_shorts_when_positive() -> None:
    long, short = position(1_000, 600_000), position(-1_000, 600_000)
    rate = 10_000  # 0.0001
    assert funding_payment(BTC, long, 600_000, rate) == -6 * ATTO  # 60000 x 0.0001
    assert funding_payment(BTC, short, 600_000, rate) == 6 * ATTO
    assert funding_payment(BTC, long, 600_000, -rate) == 6 * ATTO
    odd = position(1, 333_333)  # 0.001 BTC at 33333.3: 33.3333 x 0.0001 = 0.00333333 exactly; 7e-9 rate rounds
    assert funding_payment(BTC, odd, 333_333, 7) == -(BTC.contract_notional(333_333, 1) * 7) // FEE_SCALE  # paid: rounded up
    assert funding_payment(BTC, position(-1, 333_333), 333_333, 7) == BTC.contract_notional(333_333, 1) * 7 // FEE_SCALE


def test_funding_times_are_the_utc_eight_hour_marks() -> None:
    hour = 3_600 * 10**9
    assert funding_times(28_800, 0, 24 * hour) == [8 * hour, 16 * hour, 24 * hour]
    assert funding_times(28_800, 8 * hour, 16 * hour - 1) == []
    assert funding_times(28_800, 8 * hour - 1, 8 * hour) == [8 * hour]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(1, 125), st.booleans())
def test_max_open_size_is_the_largest_that_fits(price: int, funds_usdt: int, leverage: int, maker: bool) -> None:
    funds = funds_usdt * ATTO // 100
    size = max_open_size(BTC, price, funds, leverage, maker=maker)
    def cost(s: int) -> int:
        notional = BTC.contract_notional(price, s)
        return -(-notional // leverage) + BTC.fee_atto(notional, maker)
    assert size % BTC.step == 0 and (size == 0 or cost(size) <= funds)
    assert cost(size + BTC.step) > funds
