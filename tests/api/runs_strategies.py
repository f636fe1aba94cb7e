"""Strategy files the Runs API tests start by path: slow, waiting for input, crashing the interpreter."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from coinwire.engine.strategy import Strategy


class Slow(Strategy):
    """Sleeps `delay` seconds on every hourly candle: a run that lasts long enough to be stopped."""

    symbol = "BTC/USDT"
    timeframe = "1h"
    delay = 0.05

    def on_start(self) -> None:
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        time.sleep(self.delay)


class WaitsForInput(Slow):
    """Like component_demo: a form the user posts to; every value is echoed into the `echo` table and the log."""

    def on_start(self) -> None:
        self.received: list[list[Any]] = []
        self.component("form", {"type": "form", "title": "Say something", "fields": [{"name": "text", "type": "text"}]})
        self.component("echo", {"type": "table", "title": "Received", "columns": ["value"]}, [])
        super().on_start()

    def on_input(self, component_id: str, value: Any) -> None:
        self.received.append([value])
        self.update_component("echo", data=self.received)
        self.log(f"received {value!r} on {component_id}")


class Crashes(Slow):
    """Takes its whole process down (as a segfault in a C extension would), after a word on stderr."""

    def on_start(self) -> None:
        sys.stderr.write("about to take the interpreter down\n")
        sys.stderr.flush()
        os._exit(3)


class Signaller(Strategy):
    """Signals `side` on every candle, the same value twice in a row each time (a run's signals are its changes)."""

    symbol = "BTC/USDT"
    timeframe = "1s"

    def on_start(self) -> None:
        self.count = 0
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        self.count += 1
        self.signal("side", "up" if self.count // 2 % 2 else "down")
