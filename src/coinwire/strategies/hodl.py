"""`hodl`: buy once with everything at the first candle, hold to the end (the benchmark every strategy must beat)."""

from __future__ import annotations

from typing import Any

from coinwire.engine.strategy import Strategy

__all__ = ["Hodl"]


class Hodl(Strategy):
    name = "hodl"
    symbol = "BTC/USDT"
    timeframe = "5m"

    def on_start(self) -> None:
        self.bought = False
        self.subscribe_candles(self.symbol, self.timeframe, self.first_candle)

    def first_candle(self, candle: dict[str, Any]) -> None:
        if not self.bought:
            self.bought = True
            self.buy(self.symbol)
