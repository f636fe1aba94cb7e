"""The position view (what get_positions answers and positions_updated carries) against a reference written from Binance's
documented formulas in plain floats (not from coinwire's code)."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.instruments import Instrument, LeverageBracket
from coinwire.core.ledger import Ledger
from coinwire.core.orders import PositionSide
from coinwire.core.positions import MarginMode, Position
from coinwire.services.position_views import position_views

ATTO = 10**18
# Binance's first two BTCUSDT tiers (notional caps 50,000 and 250,000 USDT; mmr 0.4% and 0.5%; cum 0 and 50)
BRACKETS = (
    LeverageBracket(floor=0, cap=50_000 * ATTO, max_leverage=125, mmr=400_000, maint_amount=0),
    LeverageBracket(floor=50_000 * ATTO, cap=250_000 * ATTO, max_leverage=100, mmr=500_000, maint_amount=50 * ATTO),
)
BTC = Instrument(exchange="demo", symbol="BTC/USDT:USDT", base="BTC", quote="USDT", price_decimals=1, size_decimals=3, tick=1, step=1,
                 kind="perpetual", settle="USDT", brackets=BRACKETS, funding_interval_s=28_800, liquidation_fee=500_000)


def _pos(size: float, entry: float, mark: float, *, leverage: int = 10, mode: MarginMode = MarginMode.ISOLATED, margin: float = 0.0,
         side: PositionSide = PositionSide.BOTH) -> Position:
    contracts = round(size * 1000)
    return Position(account_id=7, exchange="demo", symbol=BTC.symbol, side=side, size=contracts,
                    entry_cost=round(abs(size) * entry * ATTO), leverage=leverage, margin_mode=mode,
                    isolated_margin=round(margin * ATTO), mark=round(mark * 10), updated_at=5, seq=9)


def views(positions: list[tuple[Position, Instrument]], wallet: float = 0.0) -> list[dict[str, Any]]:
    """The views of `positions` in a ledger whose account 7 holds `wallet` USDT (the cross pool's wallet)."""
    ledger = Ledger({"demo": ["USDT"]})
    if wallet:
        ledger.add_virtual_tx("demo", "USDT", round(wallet * ATTO), 1, account=7)
    instruments = {}
    for pos, inst in positions:
        ledger.positions.register(inst)  # as the venue does at start
        ledger.positions.put(pos)
        instruments[pos.symbol] = inst
    return [msgspec.to_builtins(v) for v in position_views(ledger, [p for p, _ in positions], lambda p: instruments[p.symbol])]


def _mmr_cum(notional: float) -> tuple[float, float]:
    return (0.004, 0.0) if notional < 50_000 else (0.005, 50.0)


def reference_liquidation(wb: float, legs: list[tuple[float, float]], mark: float, tmm1: float = 0.0, upnl1: float = 0.0) -> float:
    """Binance: LP = (WB - TMM1 + UPNL1 + cum - Side x Pos x EP) / (Pos x MMR - Side x Pos), legs (signed size, entry);
    MMR and cum of the bracket of the position's notional at the mark (its notional value as Binance's position risk shows it)."""
    num, den = wb - tmm1 + upnl1, 0.0
    for size, entry in legs:
        mmr, cum = _mmr_cum(abs(size) * mark)
        side = 1 if size > 0 else -1
        num += cum - side * abs(size) * entry
        den += abs(size) * mmr - side * abs(size)
    return num / den


def test_an_isolated_10x_long_shows_binances_numbers() -> None:
    pos = _pos(0.5, 60_000, 61_000, margin=3_000)
    (view,) = views([(pos, BTC)])
    notional = 0.5 * 61_000
    assert view["side"] == "long" and view["position_side"] == "both" and view["size"] == "0.5"
    assert float(view["entry_price"]) == 60_000 and view["mark_price"] == "61000"
    assert float(view["notional"]) == notional
    assert float(view["unrealised_pnl"]) == 500.0
    assert float(view["initial_margin"]) == notional / 10
    assert float(view["maintenance_margin"]) == pytest.approx(notional * 0.004)
    assert float(view["margin_ratio"]) == pytest.approx(notional * 0.004 / (3_000 + 500), abs=1e-8)
    lp = reference_liquidation(3_000, [(0.5, 60_000)], 61_000)
    assert abs(float(view["liquidation_price"]) - lp) <= 0.1  # within one tick
    assert view["isolated_margin"] == "3000" and view["margin_mode"] == "isolated" and view["seq"] == 9


def test_a_cross_short_shares_the_wallet_with_another_symbols_position() -> None:
    eth = msgspec.structs.replace(BTC, symbol="ETH/USDT:USDT", base="ETH")
    other = msgspec.structs.replace(_pos(2.0, 3_000, 2_900, mode=MarginMode.CROSS), symbol=eth.symbol)
    pos = _pos(-0.2, 60_000, 59_000, leverage=20, mode=MarginMode.CROSS)
    view = views([(pos, BTC), (other, eth)], wallet=2_000)[0]
    other_mm, other_upnl = 2.0 * 2_900 * 0.004, 2.0 * (2_900 - 3_000)
    upnl = 0.2 * (60_000 - 59_000)
    assert view["side"] == "short" and float(view["unrealised_pnl"]) == upnl and view["isolated_margin"] is None
    mm = 0.2 * 59_000 * 0.004
    assert float(view["margin_ratio"]) == pytest.approx((mm + other_mm) / (2_000 + upnl + other_upnl), abs=1e-8)
    lp = reference_liquidation(2_000, [(-0.2, 60_000)], 59_000, other_mm, other_upnl)
    assert abs(float(view["liquidation_price"]) - lp) <= 0.1


def test_hedge_legs_in_cross_are_liquidated_together() -> None:
    long_leg = _pos(0.3, 60_000, 60_500, mode=MarginMode.CROSS, side=PositionSide.LONG)
    short_leg = _pos(-0.1, 61_000, 60_500, mode=MarginMode.CROSS, side=PositionSide.SHORT)
    view = views([(long_leg, BTC), (short_leg, BTC)], wallet=1_500)[0]
    lp = reference_liquidation(1_500, [(0.3, 60_000), (-0.1, 61_000)], 60_500)
    assert view["position_side"] == "long" and abs(float(view["liquidation_price"]) - lp) <= 0.1


def test_a_flat_position_has_no_liquidation_price_and_zero_margins() -> None:
    flat = _pos(0.0, 0, 0, mode=MarginMode.CROSS)
    (view,) = views([(flat, BTC)], wallet=100)
    assert view["side"] == "flat" and view["liquidation_price"] is None
    assert view["margin_ratio"] == "0" and view["initial_margin"] == "0" and view["entry_price"] == "0"


@settings(max_examples=150, deadline=None)
@given(size=st.integers(1, 5_000), entry=st.integers(10_000, 1_000_000), move=st.integers(-300, 300), leverage=st.integers(1, 125),
       short=st.booleans())
def test_isolated_views_agree_with_the_reference_for_1x_to_125x(size: int, entry: int, move: int, leverage: int, short: bool) -> None:
    qty = size / 1000 * (-1 if short else 1)
    entry_price, mark = entry / 10, entry / 10 * (1 + move / 10_000)
    margin = abs(qty) * entry_price / leverage
    pos = _pos(qty, entry_price, mark, leverage=leverage, margin=margin)
    (view,) = views([(pos, BTC)])
    mark_used = pos.mark / 10
    upnl = qty * (mark_used - entry_price)
    assert math.isclose(float(view["unrealised_pnl"]), upnl, rel_tol=1e-9, abs_tol=1e-9)
    lp = reference_liquidation(pos.isolated_margin / ATTO, [(qty, pos.entry_cost / ATTO / abs(qty))], mark_used)
    if lp > 0.1:  # below one tick (a 1x long): no price on the grid liquidates it
        assert view["liquidation_price"] is not None and abs(float(view["liquidation_price"]) - lp) <= 0.1 + 1e-6 * lp
