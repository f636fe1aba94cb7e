"""CcxtVenue and PerpAccount against a real ccxt.binanceusdm talking to the local signed Binance USD-M server.

Nothing here mocks CCXT or coinwire: `tests/venues/binance_usdm.py` speaks Binance's signed
futures REST API, keeps the account's positions, leverage, margin type and position mode, and
every expectation is worked out from that server's book and Binance's published numbers.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from coinwire.core.errors import DomainError, InvalidInput
from coinwire.core.instruments import Instrument, LeverageBracket
from coinwire.core.orders import DoneReason, OrderType, PositionSide
from coinwire.venues.ccxt_perp import PerpAccount
from coinwire.venues.ccxt_quirks import perp_order_params
from coinwire.venues.ccxt_venue import CcxtVenue
from coinwire.venues.reports import ReportReason
from tests.venues.binance_usdm import UsdmBinance
from tests.venues.conftest import make_order
from tests.venues.usdm_helpers import ATTO, PERP, perp, perp_order, server, usdm, venue

__all__ = ["perp", "server", "usdm", "venue"]  # the fixtures these tests use

async def test_a_linear_perpetual_loads_with_the_venues_brackets_and_clearance_fee(perp: Instrument) -> None:
    assert (perp.symbol, perp.kind, perp.base, perp.quote, perp.settle) == (PERP, "perpetual", "BTC", "USDT", "USDT")
    assert (perp.price_decimals, perp.tick, perp.min_notional) == (1, 1, 100 * ATTO)
    assert (perp.contract_size, perp.funding_interval_s, perp.liquidation_fee) == (10**8, 28_800, 1_250_000)
    assert perp.max_leverage == 125 and len(perp.brackets) == 10
    # Binance's published "cum" for BTCUSDT, derived from the tiers' floors and rates
    assert perp.brackets[:3] == (
        LeverageBracket(floor=0, cap=50_000 * ATTO, max_leverage=125, mmr=400_000, maint_amount=0),
        LeverageBracket(floor=50_000 * ATTO, cap=250_000 * ATTO, max_leverage=100, mmr=500_000, maint_amount=50 * ATTO),
        LeverageBracket(floor=250_000 * ATTO, cap=3_000_000 * ATTO, max_leverage=50, mmr=1_000_000,
                        maint_amount=1300 * ATTO),
    )
    assert perp.brackets[-1].cap == 0 and perp.brackets[-1].maint_amount == 101_421_300 * ATTO


async def test_leverage_and_margin_mode_are_set_at_the_venue_and_setting_twice_is_safe(
    venue: CcxtVenue, perp: Instrument, usdm: UsdmBinance
) -> None:
    account = PerpAccount(venue)
    await account.set_leverage(perp, 10)
    await account.set_margin_mode(perp, "isolated")
    await account.set_margin_mode(perp, "isolated")  # -4046 "No need to change margin type": success
    assert (usdm.leverage, usdm.margin_type) == (10, "isolated")
    with pytest.raises(InvalidInput) as raised:
        await account.set_margin_mode(perp, "portfolio")
    assert raised.value.code == "invalid_margin_mode"
    assert not await account.hedge_mode()
    await account.set_hedge_mode(True)
    await account.set_hedge_mode(True)  # -4059 "No need to change position side": success
    assert usdm.dual and await account.hedge_mode()


async def test_a_market_order_fills_and_the_position_comes_from_the_venue(
    venue: CcxtVenue, perp: Instrument, usdm: UsdmBinance
) -> None:
    account = PerpAccount(venue)
    await account.set_leverage(perp, 10)
    await account.set_margin_mode(perp, "isolated")
    report = await venue.place(perp_order(perp, "perp-1", "buy", "0.010"), perp)
    assert (report.reason, report.filled_size, report.average_price) == (ReportReason.FILLED, 10, 1_000_100)
    [fill] = report.fills
    # 0.01 x 100010.0 = 1000.10 USDT; Binance's taker 0.04% fee on it, in USDT
    assert (fill.notional, fill.fee, fill.fee_currency) == (100_010 * ATTO // 100, 400_040 * ATTO // 10**6, "USDT")
    [pos] = await account.positions([perp])
    assert (pos.leg, pos.size, pos.entry_price, pos.leverage, pos.margin_mode) == ("both", 10, 1_000_100, 10, "isolated")
    assert pos.mark == 1_000_050  # the server's mark: the mid of 100000.0 and 100010.0
    assert pos.isolated_margin == 100_010 * ATTO // 1000  # 1000.10 / 10
    assert pos.unrealised_pnl == -5 * ATTO // 100  # (100005.0 - 100010.0) x 0.01
    # Binance's isolated one-way formula, with the first bracket (0.4%, cum 0), rounded to the 0.1 tick
    wallet, amt, entry, mmr = Decimal("100.01"), Decimal("0.01"), Decimal("100010"), Decimal("0.004")
    expected = (wallet - amt * entry) / (amt * mmr - amt)
    assert pos.liquidation_price == int((expected * 10).to_integral_value())
    assert await venue.balances() == {"USDT": (10_000 * ATTO - fill.fee, 0)}  # the wallet: no uPnL in it


async def test_refusals_carry_the_perpetual_codes(venue: CcxtVenue, perp: Instrument, usdm: UsdmBinance) -> None:
    account = PerpAccount(venue)
    with pytest.raises(DomainError) as raised:
        await venue.place(perp_order(perp, "ro-1", "sell", "0.010", reduce_only=True), perp)
    assert raised.value.code == "reduce_only_would_open"  # flat: a reduce-only order has nothing to reduce
    with pytest.raises(InvalidInput) as raised:
        await venue.place(perp_order(perp, "leg-1", "buy", "0.010", leg=PositionSide.LONG), perp)
    assert raised.value.code == "position_side_mismatch"  # a hedge leg in one-way mode
    with pytest.raises(DomainError) as funds:
        await venue.place(perp_order(perp, "big-1", "buy", "3.000"), perp)  # 300k notional at 20x needs 15k
    assert funds.value.code == "insufficient_margin"
    await venue.place(perp_order(perp, "open-1", "buy", "0.010"), perp)
    with pytest.raises(DomainError) as conflict:
        await account.set_margin_mode(perp, "isolated")
    assert conflict.value.code == "margin_mode_change_with_open_position"
    with pytest.raises(DomainError) as conflict:
        await account.set_hedge_mode(True)
    assert conflict.value.code == "position_mode_change_with_open_position"
    assert usdm.refusals == [("/fapi/v1/order", -2022), ("/fapi/v1/order", -4061), ("/fapi/v1/order", -2019),
                             ("/fapi/v1/marginType", -4048), ("/fapi/v1/positionSide/dual", -4068)]


async def test_a_reduce_only_order_larger_than_the_position_is_cut_to_it(
    venue: CcxtVenue, perp: Instrument, usdm: UsdmBinance
) -> None:
    account = PerpAccount(venue)
    await venue.place(perp_order(perp, "open-2", "buy", "0.010"), perp)
    report = await venue.place(perp_order(perp, "close-2", "sell", "0.025", reduce_only=True), perp)
    assert (report.filled_size, report.reason) == (10, ReportReason.EXPIRED)  # 0.010 filled, the rest expired
    assert report.done_reason(OrderType.MARKET) is DoneReason.CANCELLED
    assert await account.positions([perp]) == []  # flat: the venue lists nothing
    # realised: (100000.0 - 100010.0) x 0.01 = -0.10, and two taker fees
    fees = Decimal("100010") * Decimal("0.01") * Decimal("0.0004") + Decimal("100000") * Decimal("0.01") * Decimal("0.0004")
    assert usdm.wallet == Decimal(10000) - Decimal("0.1") - fees


async def test_hedge_mode_legs_are_independent_and_closed_by_their_opposite_side(
    venue: CcxtVenue, perp: Instrument, usdm: UsdmBinance
) -> None:
    account = PerpAccount(venue)
    await account.set_hedge_mode(True)
    await venue.place(perp_order(perp, "long-1", "buy", "0.010", leg=PositionSide.LONG), perp)
    await venue.place(perp_order(perp, "short-1", "sell", "0.020", leg=PositionSide.SHORT), perp)
    legs = {p.leg: p.size for p in await account.positions([perp])}
    assert legs == {"long": 10, "short": -20}
    sent = [o for o in usdm.orders.values() if o["clientOrderId"] == "long-2"]
    assert not sent
    # closing the long leg: a sell on LONG (Binance refuses reduceOnly in hedge mode, so it is not sent)
    await venue.place(perp_order(perp, "long-2", "sell", "0.010", reduce_only=True, leg=PositionSide.LONG), perp)
    [sent_order] = [o for o in usdm.orders.values() if o["clientOrderId"] == "long-2"]
    assert (sent_order["positionSide"], sent_order["reduceOnly"]) == ("LONG", False)
    legs = {p.leg: p.size for p in await account.positions([perp])}
    assert legs == {"short": -20}  # a flat leg is not listed


async def test_isolated_margin_is_added_and_removed_on_the_leg(
    venue: CcxtVenue, perp: Instrument, usdm: UsdmBinance
) -> None:
    account = PerpAccount(venue)
    await account.set_margin_mode(perp, "isolated")
    await account.set_leverage(perp, 10)
    await venue.place(perp_order(perp, "iso-1", "buy", "0.010"), perp)
    await account.adjust_margin(perp, 50 * ATTO, "both")
    [pos] = await account.positions([perp])
    assert pos.isolated_margin == (Decimal("100.01") + 50) * ATTO
    await account.adjust_margin(perp, -25 * ATTO, "both")
    [pos] = await account.positions([perp])
    assert pos.isolated_margin == (Decimal("100.01") + 25) * ATTO
    with pytest.raises(DomainError) as raised:
        await account.adjust_margin(perp, -1000 * ATTO, "both")
    assert raised.value.code == "margin_below_initial"


@pytest.mark.parametrize(("ccxt_id", "leg", "side_closes", "reduce_only", "params"), [
    ("binanceusdm", "both", False, False, {"positionSide": "BOTH"}),
    ("binanceusdm", "both", False, True, {"positionSide": "BOTH", "reduceOnly": True}),
    ("binanceusdm", "long", True, True, {"positionSide": "LONG"}),  # Binance refuses reduceOnly in hedge mode
    ("binanceusdm", "short", False, False, {"positionSide": "SHORT"}),
    ("bybit", "both", False, True, {"reduceOnly": True}),
    ("bybit", "long", False, False, {"hedged": True}),  # CCXT: positionIdx 1 for a buy that opens
    ("bybit", "long", True, False, {"hedged": True, "reduceOnly": True}),  # a sell of the long leg closes it
    ("bitget", "short", True, True, {"hedged": True, "reduceOnly": True}),  # CCXT: tradeSide close
])
def test_each_exchange_names_a_perpetual_orders_leg_as_its_quirks_row_says(
    ccxt_id: str, leg: str, side_closes: bool, reduce_only: bool, params: dict[str, object]
) -> None:
    assert perp_order_params(ccxt_id, leg=leg, reduce_only=reduce_only, closes_leg=side_closes) == params


def test_an_exchange_without_a_perpetual_row_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        perp_order_params("kraken", leg="both", reduce_only=False, closes_leg=False)
    assert raised.value.code == "perpetuals_not_supported"


async def test_time_in_force_and_post_only_reach_the_venue(venue: CcxtVenue, perp: Instrument, usdm: UsdmBinance) -> None:
    kill = make_order(perp, "fok-1", "buy", OrderType.FOK, "1.500", "100010.0")  # the book has 1 up to 100010.0: nothing
    report = await venue.place(kill, perp)
    assert (report.filled_size, report.reason) == (0, ReportReason.EXPIRED)
    assert report.done_reason(OrderType.FOK) is DoneReason.KILLED
    fok = make_order(perp, "fok-2", "buy", OrderType.FOK, "0.500", "100010.0")
    report = await venue.place(fok, perp)
    assert (report.filled_size, report.reason) == (500, ReportReason.FILLED)
    with pytest.raises(DomainError) as raised:
        await venue.place(make_order(perp, "gtx-1", "buy", OrderType.POST_ONLY, "0.010", "100020.0"), perp)
    assert raised.value.code == "post_only_would_take"
