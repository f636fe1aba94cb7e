"""Test strategies for rule sets in runs: each buys, and tries to buy again, so a pause or a scale shows in what it did."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from coinwire.engine.strategy import Strategy


class TwoCoins(Strategy):
    """Buys BTC and ETH with `funds` each at the first close; later, any free USDT above 100 buys BTC again."""

    timeframe = "1h"
    funds = "5000"

    def on_start(self) -> None:
        self.started = False
        self.refused: list[str] = []
        self.subscribe_candles("BTC/USDT", self.timeframe, self.bar)

    def bar(self, candle: dict[str, Any]) -> None:
        if not self.started:
            self.started = True
            self.buy("BTC/USDT", funds=self.funds)
            self.buy("ETH/USDT", funds=self.funds)
        elif self.available("USDT") > Decimal(100):
            self.buy("BTC/USDT")

    def on_order(self, ticket: Any) -> None:
        if ticket.status == "rejected" and ticket.error:
            self.refused.append(ticket.error)


class BuyOnTrades(Strategy):
    """Buys BTC with `funds` at every `every`-th BTC trade it sees; keeps what was refused and what was bought."""

    funds = "10"
    every = 5

    def on_start(self) -> None:
        self.seen = 0
        self.refused: list[str] = []
        self.bought: list[str] = []
        self.subscribe_trades("BTC/USDT", self.trade)

    def trade(self, trade: dict[str, Any]) -> None:
        self.seen += 1
        if self.seen % self.every == 0:
            self.buy("BTC/USDT", funds=self.funds)

    def on_fill(self, fill: dict[str, Any]) -> None:
        if fill["side"] == "buy":
            self.bought.append(fill["size"])

    def on_order(self, ticket: Any) -> None:
        if ticket.status == "rejected" and ticket.error:
            self.refused.append(ticket.error)


class HoldBtc(Strategy):
    """Buys BTC with 4000 USDT at the first trade; afterwards free USDT above 1100 buys 500 more at each trade."""

    def on_start(self) -> None:
        self.bought = False
        self.refused: list[str] = []
        self.subscribe_trades("BTC/USDT", self.trade)

    def trade(self, trade: dict[str, Any]) -> None:
        if not self.bought:
            self.bought = True
            self.buy("BTC/USDT", funds="4000")
        elif self.available("USDT") > 1100:
            self.buy("BTC/USDT", funds="500")

    def on_order(self, ticket: Any) -> None:
        if ticket.status == "rejected" and ticket.error:
            self.refused.append(ticket.error)
