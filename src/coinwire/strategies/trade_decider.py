"""`trade_decider`: the seed's scheduled, rate-based decider: every minute, buy or sell on the last week's rates.

Each period it compares the last price with the mean of the last week's closes: more than
`threshold` below the mean buys `fraction` of the available quote; more than `threshold`
above sells `fraction` of the position. It needs candles of `timeframe` covering a week, and
declares that window (`warm_up`), so a paper or live run loads the week before it starts and
decides from its first minute.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import numpy as np

from coinwire.engine.strategy import Strategy

__all__ = ["TradeDecider"]

_WEEK = 7 * 86400


class TradeDecider(Strategy):
    name = "trade_decider"
    symbol = "BTC/USDT"
    timeframe = "1h"
    interval = 60  # seconds between decisions
    threshold = 0.02  # relative distance from the weekly mean that triggers a trade
    fraction = 0.25  # share of the available quote (buy) or position (sell) traded per decision

    def on_start(self) -> None:
        self.warm_up(self.symbol, self.timeframe, seconds=_WEEK)
        self.every(self.interval, self.decide)

    def decide(self) -> None:
        candles = self.candles(self.symbol, self.timeframe)
        week = candles["close"][candles["time"] >= self.time - _WEEK]
        if len(week) < 2:
            return
        mean = float(np.mean(week))
        last = float(week[-1])
        base, quote = self.symbol.split("/")
        if last < mean * (1 - self.threshold):
            funds = (self.available(quote) * Decimal(repr(self.fraction))).quantize(Decimal("0.00000001"), ROUND_DOWN)
            if funds > 0 and not self.open_orders:
                self.buy(self.symbol, funds=funds)
        elif last > mean * (1 + self.threshold):
            size = (self.available(base) * Decimal(repr(self.fraction))).quantize(Decimal("0.00000001"), ROUND_DOWN)
            if size > 0 and not self.open_orders:
                self.sell(self.symbol, size=size)
