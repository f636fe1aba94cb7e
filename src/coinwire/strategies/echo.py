"""`echo`: logs every closed candle and every fill; a probe that shows what a strategy receives, in any mode."""

from __future__ import annotations

from typing import Any

from coinwire.engine.strategy import Strategy

__all__ = ["Echo"]


class Echo(Strategy):
    name = "echo"
    symbol = "BTC/USDT"
    timeframe = "1h"

    def on_start(self) -> None:
        self.log(f"echo started on {self.symbol} {self.timeframe}")
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        self.log(f"candle {candle['time']} close {candle['close']}", level="debug")

    def on_fill(self, fill: dict[str, Any]) -> None:
        self.log(f"fill {fill['side']} {fill['size']} at {fill['price']}")

    def on_input(self, component_id: str, value: Any) -> None:
        self.log(f"input to {component_id}: {value!r}")
