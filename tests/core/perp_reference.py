"""An independent reference for linear perpetuals in plain floats, written from Binance USD-M's documentation.

Nothing here imports coinwire: it restates what Binance's pages say, so the tests can hold the
exact integer core against it. Sources (Binance support FAQ, USD-M futures):

- "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts":
      LP = (WB - TMM1 + UPNL1 + cumB + cumL + cumS - Side1BOTH*Position1BOTH*EP1BOTH
            - Position1LONG*EP1LONG + Position1SHORT*EP1SHORT)
         / (Position1BOTH*MMRB + Position1LONG*MMRL + Position1SHORT*MMRS
            - Side1BOTH*Position1BOTH - Position1LONG + Position1SHORT)
  WB is the isolated wallet balance (isolated) or the cross wallet balance (cross); TMM1 and
  UPNL1 are the maintenance margin and unrealised PnL of all other contracts (cross only).
- "Leverage and Margin of USDⓈ-M Futures": initial margin = notional / leverage;
  maintenance margin = notional * maintenance margin rate - maintenance amount, by notional tier.
- "Introduction to Binance Futures Funding Rates": funding = position value * funding rate,
  position value = mark price * size; longs pay shorts when the rate is positive.
- Realised PnL of a linear contract: (exit - entry) * size for a long, (entry - exit) * size for a short;
  entries average by size.

`Account` is a small float account (one-way or hedge, isolated or cross) that a test, or a
backtest comparison, drives with open/close/funding/liquidate and reads equity from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

BRACKETS_FILE = Path(__file__).resolve().parents[2] / "src" / "coinwire" / "venues" / "data" / "binance_usdm_brackets.json"


@dataclass(frozen=True)
class Tier:
    """One notional tier: [floor, cap), maximum leverage, maintenance margin rate, maintenance amount (cum)."""

    floor: float
    cap: float
    max_leverage: int
    mmr: float
    cum: float


def binance_tiers(symbol: str) -> list[Tier]:
    """The tiers of a Binance symbol (`BTCUSDT`) from the leverageBracket payload shipped as data."""
    document = json.loads(BRACKETS_FILE.read_text())
    for entry in document["brackets"]:
        if entry["symbol"] == symbol:
            return [Tier(float(b["notionalFloor"]), float(b["notionalCap"]), int(b["initialLeverage"]),
                         float(b["maintMarginRatio"]), float(b["cum"])) for b in entry["brackets"]]
    raise KeyError(symbol)


def binance_clearance_fee(symbol: str) -> float:
    return float(json.loads(BRACKETS_FILE.read_text())["liquidation_fee"][symbol])


def tier_of(tiers: list[Tier], notional: float) -> Tier:
    for tier in tiers:
        if notional < tier.cap:
            return tier
    return tiers[-1]


@dataclass
class Leg:
    """One position (one-way: side +1/-1; hedge: the long or the short leg)."""

    side: int  # +1 long, -1 short
    size: float  # >= 0
    entry: float  # average entry price
    leverage: int
    isolated: bool
    margin: float = 0.0  # isolated margin

    def upnl(self, mark: float) -> float:
        return self.side * (mark - self.entry) * self.size

    def maintenance(self, tiers: list[Tier], mark: float) -> float:
        notional = mark * self.size
        tier = tier_of(tiers, notional)
        return notional * tier.mmr - tier.cum


def liquidation_price(wallet: float, legs: list[Leg], tiers: list[Tier], mark: float, tmm1: float = 0.0,
                      upnl1: float = 0.0) -> float | None:
    """Binance's formula for one symbol's BOTH position, or its LONG and SHORT legs (hedge)."""
    numerator = wallet - tmm1 + upnl1
    denominator = 0.0
    for leg in legs:
        if leg.size == 0:
            continue
        tier = tier_of(tiers, mark * leg.size)
        numerator += tier.cum - leg.side * leg.size * leg.entry
        denominator += leg.size * tier.mmr - leg.side * leg.size
    if denominator == 0:
        return None
    price = numerator / denominator
    return price if price > 0 else None


def bankruptcy_price(leg: Leg, margin: float, clearance_fee: float) -> float:
    """The price at which margin + PnL - clearance fee on the notional = 0."""
    if leg.side > 0:
        return (leg.entry * leg.size - margin) / (leg.size * (1 - clearance_fee))
    return (leg.entry * leg.size + margin) / (leg.size * (1 + clearance_fee))


def funding(leg: Leg, mark: float, rate: float) -> float:
    """What the leg receives (+) or pays (-)."""
    return -leg.side * leg.size * mark * rate


@dataclass
class Account:
    """A float account on one symbol: a wallet and legs; fees at `fee` per trade notional."""

    wallet: float
    tiers: list[Tier]
    fee: float
    clearance_fee: float = 0.0
    hedge: bool = False
    isolated: bool = False
    leverage: int = 20
    legs: dict[str, Leg] = field(default_factory=dict)
    realised: float = 0.0
    fees: float = 0.0
    funding_total: float = 0.0
    liquidations: int = 0

    def leg(self, name: str) -> Leg | None:
        found = self.legs.get(name)
        return found if found is not None and found.size > 0 else None

    def trade(self, buy: bool, size: float, price: float, leg_name: str = "both") -> float:
        """Buy or sell `size` at `price` on a leg ("both" in one-way mode): reduces first, then opens. Returns realised PnL."""
        fee = size * price * self.fee
        self.wallet -= fee
        self.fees += fee
        leg = self.leg(leg_name)
        direction = 1 if buy else -1
        pnl = 0.0
        if leg is not None and leg.side != direction:
            closing = min(size, leg.size)
            pnl = leg.side * (price - leg.entry) * closing
            if leg.isolated:
                freed = leg.margin * closing / leg.size
                leg.margin -= freed
            leg.size -= closing
            size -= closing
            self.wallet += pnl
            self.realised += pnl
        if size > 0:
            leg = self.leg(leg_name)
            if leg is None:
                leg = Leg(direction, 0.0, price, self.leverage, self.isolated)
                self.legs[leg_name] = leg
            leg.entry = (leg.entry * leg.size + price * size) / (leg.size + size)
            leg.size += size
            if leg.isolated:
                leg.margin += price * size / leg.leverage
        return pnl

    def close(self, price: float, leg_name: str = "both") -> float:
        leg = self.leg(leg_name)
        if leg is None:
            return 0.0
        return self.trade(leg.side < 0, leg.size, price, leg_name)

    def settle_funding(self, mark: float, rate: float) -> float:
        total = 0.0
        for leg in self.legs.values():
            if leg.size > 0:
                amount = funding(leg, mark, rate)
                total += amount
                if leg.isolated:
                    leg.margin += amount
                self.wallet += amount
        self.funding_total += total
        return total

    def cross_wallet(self) -> float:
        return self.wallet - sum(leg.margin for leg in self.legs.values() if leg.isolated and leg.size > 0)

    def liquidation_price(self, leg_name: str, mark: float) -> float | None:
        leg = self.leg(leg_name)
        if leg is None:
            return None
        if leg.isolated:
            return liquidation_price(leg.margin, [leg], self.tiers, mark)
        legs = [x for x in self.legs.values() if x.size > 0 and not x.isolated]
        return liquidation_price(self.cross_wallet(), legs, self.tiers, mark)

    def liquidate_if_reached(self, leg_name: str, mark: float) -> bool:
        """Close a leg whose mark reached its liquidation price: at the bankruptcy price (isolated) losing its margin."""
        leg = self.leg(leg_name)
        price = self.liquidation_price(leg_name, mark)
        if leg is None or price is None:
            return False
        if not ((leg.side > 0 and mark <= price) or (leg.side < 0 and mark >= price)):
            return False
        lost = leg.margin if leg.isolated else self.cross_wallet()
        self.wallet -= lost
        self.realised -= lost
        leg.size = 0.0
        leg.margin = 0.0
        self.liquidations += 1
        return True

    def equity(self, mark: float) -> float:
        return self.wallet + sum(leg.upnl(mark) for leg in self.legs.values() if leg.size > 0)

    def available(self, mark: float) -> float:
        """Binance's available balance: wallet - position initial margins (+ cross unrealised losses; no profit lent)."""
        free = self.wallet
        for leg in self.legs.values():
            if leg.size > 0:
                free -= leg.margin if leg.isolated else leg.entry * leg.size / leg.leverage
                if not leg.isolated:
                    free += min(0.0, leg.upnl(mark))
        return max(0.0, free)


def max_open_size(price: float, funds: float, leverage: int, fee: float, step: float) -> float:
    """The largest multiple of `step` whose initial margin (notional / leverage) plus fee (notional x fee) fits in `funds`."""
    steps = int(funds / (price * step * (1 / leverage + fee)) + 1e-9)
    while steps > 0 and steps * step * price * (1 / leverage + fee) > funds * (1 + 1e-12):
        steps -= 1
    return steps * step
