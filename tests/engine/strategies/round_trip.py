"""A test strategy for live and paper runs: buy with some funds on the first trade, sell everything once filled."""

from __future__ import annotations

from typing import Any

from coinwire.engine.strategy import Strategy


class RoundTrip(Strategy):
    symbol = "BTC/USDT"
    funds = "1000"

    def on_start(self) -> None:
        self.stage = "waiting"
        self.subscribe_trades(self.symbol, self.first_trade)

    def first_trade(self, trade: Any) -> None:
        if self.stage == "waiting":
            self.stage = "buying"
            self.buy(self.symbol, funds=self.funds)

    def on_fill(self, fill: dict[str, Any]) -> None:
        if self.stage == "buying" and fill["side"] == "buy":
            self.stage = "selling"
            self.sell(self.symbol)
        elif fill["side"] == "sell":
            self.stage = "done"
