"""A strategy file tests/services/test_scheduler_runs.py starts by path: slow enough to be running when a schedule fires."""

from __future__ import annotations

import time
from typing import Any

from coinwire.engine.strategy import Strategy


class Steps(Strategy):
    """Sleeps on every hourly candle; logs each scheduled step it is given."""

    symbol = "BTC/USDT"
    timeframe = "1h"
    delay = 0.02

    def on_start(self) -> None:
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        time.sleep(self.delay)

    def on_step(self, name: str) -> None:
        self.log(f"scheduled step {name}")
