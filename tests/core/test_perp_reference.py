"""coinwire's exact perpetuals against the independent float reference (Binance's documented formulas): a scenario table."""

from __future__ import annotations

import pytest

from coinwire.core.ids import IdSequence
from coinwire.core.instruments import Instrument
from coinwire.core.margin import liquidation_price, max_open_size
from coinwire.core.numbers import ATTO
from coinwire.core.orders import PositionSide, Side
from coinwire.core.perp_execution import liquidations, pool_state, settle_funding
from coinwire.core.positions import MarginMode, Position
from coinwire.venues.brackets import perpetual_fields
from tests.core import perp_reference as ref
from tests.core.test_perp_execution import BTC, EX, Venue

XRP = Instrument(exchange=EX, symbol="XRP/USDT:USDT", base="XRP", quote="USDT", price_decimals=4, size_decimals=1,
                 kind="perpetual", settle="USDT", maker_fee=20_000, taker_fee=50_000,
                 **perpetual_fields(EX, "XRP/USDT:USDT"))  # type: ignore[arg-type]
INSTRUMENTS = {"BTCUSDT": BTC, "XRPUSDT": XRP}


def close(a: float, b: float, rel: float = 1e-9, absolute: float = 1e-9) -> bool:
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), absolute)


def position(inst: Instrument, size: int, entry: int, side: PositionSide = PositionSide.BOTH) -> Position:
    return Position(account_id=1, exchange=EX, symbol=inst.symbol, side=side, size=size,
                    entry_cost=inst.contract_notional(entry, abs(size)), leverage=1, margin_mode=MarginMode.CROSS)


# (symbol, wallet, legs as (signed size in size units, entry in price units, position side), mark, TMM1, UPNL1)
LIQUIDATION_TABLE = [
    ("BTCUSDT", 60_001, [(1_000, 600_000, PositionSide.BOTH)], 600_000, 0, 0),  # 1x long: none
    ("BTCUSDT", 12_000, [(1_000, 600_000, PositionSide.BOTH)], 600_000, 0, 0),  # 5x long
    ("BTCUSDT", 3_000, [(-1_000, 600_000, PositionSide.BOTH)], 600_000, 0, 0),  # 20x short
    ("BTCUSDT", 600, [(500, 600_001, PositionSide.BOTH)], 600_000, 0, 0),  # 50x long
    ("BTCUSDT", 48, [(100, 600_000, PositionSide.BOTH)], 600_000, 0, 0),  # 125x long
    ("BTCUSDT", 48, [(-100, 600_000, PositionSide.BOTH)], 600_000, 0, 0),  # 125x short
    ("BTCUSDT", 250_000, [(20_000, 610_000, PositionSide.BOTH)], 600_000, 0, 0),  # bracket 3 (1.22M notional)
    ("BTCUSDT", 5_000, [(1_000, 600_000, PositionSide.BOTH)], 600_000, 120, -350),  # cross with other symbols
    ("BTCUSDT", 5_000, [(1_000, 600_000, PositionSide.LONG), (-400, 610_000, PositionSide.SHORT)], 600_000, 0, 0),  # hedge
    ("BTCUSDT", 2_000, [(300, 590_000, PositionSide.LONG), (-900, 605_000, PositionSide.SHORT)], 600_000, 10, 25),
    ("XRPUSDT", 100, [(7_500, 5_000, PositionSide.BOTH)], 5_000, 0, 0),  # 75x-ish XRP long
    ("XRPUSDT", 1_000, [(-200_000, 6_123, PositionSide.BOTH)], 6_100, 0, 0),  # XRP short in bracket 2
    ("XRPUSDT", 300, [(50_000, 6_000, PositionSide.LONG), (-30_000, 6_200, PositionSide.SHORT)], 6_050, 0, 0),
]


@pytest.mark.parametrize(("symbol", "wallet", "legs", "mark", "tmm1", "upnl1"), LIQUIDATION_TABLE)
def test_liquidation_price_agrees_within_one_tick(symbol: str, wallet: int, legs: list[tuple[int, int, PositionSide]], mark: int,
                                                 tmm1: int, upnl1: int) -> None:
    inst = INSTRUMENTS[symbol]
    price_scale = 10**inst.price_decimals
    size_scale = 10**inst.size_decimals
    ours = liquidation_price(inst, [position(inst, s, e, side) for s, e, side in legs], wallet_balance=wallet * ATTO,
                             mark=mark, other_mm=tmm1 * ATTO, other_upnl=upnl1 * ATTO)
    theirs = ref.liquidation_price(float(wallet), [ref.Leg(1 if s > 0 else -1, abs(s) / size_scale, e / price_scale, 1, False)
                                                   for s, e, _ in legs],
                                   ref.binance_tiers(symbol), mark / price_scale, float(tmm1), float(upnl1))
    if theirs is None:
        assert ours is None
        return
    assert ours is not None
    assert abs(ours / price_scale - theirs) <= inst.tick / price_scale + 1e-9


# Scenario steps: ("mark", price) | ("buy"/"sell", size, leg) | ("fund", rate 1e-8) | ("liq",)
SCENARIOS = {
    "one-way cross 10x long, add, reduce, funding, close": (MarginMode.CROSS, False, 10, [
        ("buy", 200, "both"), ("mark", 610_000), ("buy", 100, "both"), ("fund", 10_000), ("mark", 590_000),
        ("sell", 150, "both"), ("fund", -3_700), ("mark", 620_000), ("sell", 150, "both")]),
    "one-way isolated 3x short flipped to long": (MarginMode.ISOLATED, False, 3, [
        ("sell", 300, "both"), ("fund", 12_345), ("mark", 570_000), ("buy", 500, "both"), ("fund", 10_000),
        ("mark", 580_000), ("sell", 200, "both")]),
    "hedge cross 20x both legs": (MarginMode.CROSS, True, 20, [
        ("buy", 300, "long"), ("sell", 200, "short"), ("fund", 10_000), ("mark", 615_000), ("sell", 100, "long"),
        ("buy", 200, "short"), ("fund", -5_000), ("mark", 605_000), ("sell", 200, "long")]),
    "hedge isolated 125x legs": (MarginMode.ISOLATED, True, 125, [
        ("buy", 50, "long"), ("sell", 50, "short"), ("mark", 601_000), ("fund", 10_000), ("sell", 50, "long")]),
    "isolated 50x long liquidated": (MarginMode.ISOLATED, False, 50, [
        ("buy", 500, "both"), ("fund", 10_000), ("mark", 595_000), ("liq",), ("mark", 588_000), ("liq",)]),
    "isolated 20x short liquidated": (MarginMode.ISOLATED, False, 20, [
        ("sell", 400, "both"), ("mark", 620_000), ("liq",), ("mark", 630_000), ("liq",)]),
    "one-way cross 1x long through a crash": (MarginMode.CROSS, False, 1, [
        ("buy", 100, "both"), ("mark", 300_000), ("liq",), ("fund", 10_000), ("sell", 100, "both")]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_agrees_on_pnl_funding_fees_and_liquidation(name: str) -> None:
    mode, hedge, leverage, steps = SCENARIOS[name]
    venue = Venue(deposit=10_000 * ATTO)
    venue.configure(mode, leverage, hedge)
    account = ref.Account(wallet=10_000.0, tiers=ref.binance_tiers("BTCUSDT"), fee=0.0005, hedge=hedge,
                          isolated=mode is MarginMode.ISOLATED, leverage=leverage,
                          clearance_fee=ref.binance_clearance_fee("BTCUSDT"))
    sides = {"both": PositionSide.BOTH, "long": PositionSide.LONG, "short": PositionSide.SHORT}
    ts = 1
    liquidated = 0
    for step in steps:
        ts += 1
        if step[0] == "mark":
            venue.book_at(int(step[1]))
        elif step[0] in ("buy", "sell"):
            _, size, leg = step
            done = venue.order(Side.BUY if step[0] == "buy" else Side.SELL, int(size), position_side=sides[str(leg)], ts=ts)
            for fill in done.fills:
                account.trade(step[0] == "buy", fill.size / 1_000, fill.price / 10, str(leg))
        elif step[0] == "fund":
            settle_funding(venue.ledger, BTC, int(step[1]), venue.mark, ts)
            account.settle_funding(venue.mark / 10, int(step[1]) / 1e8)
        else:
            liquidated += len(liquidations(venue.ledger, BTC, venue.mark, ts, venue.order_ids, IdSequence(1_000 * ts)).fills)
            for leg_name in list(account.legs):
                account.liquidate_if_reached(leg_name, venue.mark / 10)
        venue.ledger.check()
    positions = venue.ledger.positions.of_account(1, EX)
    realised = sum(p.realised_pnl for p in positions) / ATTO
    funding = sum(p.funding for p in positions) / ATTO
    fees = sum(p.fees for p in positions) / ATTO
    assert close(funding, account.funding_total), (funding, account.funding_total)
    assert close(venue.balance() / ATTO, account.wallet), (venue.balance() / ATTO, account.wallet)
    # the reference books a liquidation as losing the margin; coinwire as PnL at the bankruptcy price + the clearance fee
    assert close(realised - (fees - account.fees), account.realised, absolute=1e-6), (realised, fees, account.realised)
    assert liquidated == account.liquidations == (1 if "liquidated" in name else 0)
    for pos in positions:
        if pos.size:
            name = "both" if pos.side is PositionSide.BOTH else pos.side.value
            state = pool_state(venue.ledger, pos)
            legs = [pos] if pos.margin_mode is MarginMode.ISOLATED else [p for p in positions if p.size]
            ours = liquidation_price(BTC, legs, wallet_balance=state.wallet_balance, mark=venue.mark)
            theirs = account.liquidation_price(name, venue.mark / 10)
            assert (ours is None) == (theirs is None)
            if ours is not None and theirs is not None:
                assert abs(ours / 10 - theirs) <= 0.1 + 1e-9


@pytest.mark.parametrize(("price", "funds", "leverage"), [(600_000, 1_000, 1), (600_123, 2_345, 3), (612_345, 10_000, 20),
                                                         (599_999, 77, 125), (600_000, 50, 50)])
def test_position_sizing_agrees(price: int, funds: int, leverage: int) -> None:
    ours = max_open_size(BTC, price, funds * ATTO, leverage)
    theirs = ref.max_open_size(price / 10, float(funds), leverage, 0.0005, 0.001)
    assert ours == round(theirs * 1_000)
