"""`demo` (the seed's `DemoStrategy`): a tour of the message hub: reacts to candles, logs, places one small order, shows components.

On every closed candle it logs the close against its moving average and adds the point to a
line chart; at the first candle whose close crosses above the average it buys `order_fraction`
of the available quote once (a small market order, so the hub records a call and the venue's
answer); every fill lands in a table. A `controls` form takes user input: `{"action": "buy"}`
or `{"action": "sell"}` with an optional `fraction` trades that share of the quote or of the
base at once; anything else is logged and ignored. The same code runs in backtest, paper and live.
"""

from __future__ import annotations

from collections import deque
from decimal import ROUND_DOWN, Decimal
from typing import Any

from coinwire.engine.strategy import Strategy

__all__ = ["Demo"]

_STEP = Decimal("0.00000001")


class Demo(Strategy):
    """Logs each candle against its moving average, buys a small share once the close crosses above it, takes form input."""

    name = "demo"
    symbol = "BTC/USDT"
    timeframe = "1h"
    window = 5  # candles in the moving average
    order_fraction = 0.01  # share of the available quote the one automatic buy spends

    def on_start(self) -> None:
        self.closes: deque[Decimal] = deque(maxlen=self.window)
        self.points: list[list[Any]] = []
        self.fills: list[list[Any]] = []
        self.ordered = False
        self.was_below = False
        self.component("price", {"type": "line_chart", "title": f"{self.symbol} close and {self.window}-candle average",
                                 "columns": ["time", "close", "average"]})
        self.component("fills", {"type": "table", "title": "Fills", "columns": ["time", "side", "price", "size"]}, [])
        self.component("controls", {
            "type": "form", "title": "Trade a share now",
            "fields": [{"name": "fraction", "type": "slider", "min": 0.01, "max": 1, "step": 0.01, "value": 0.05}],
            "actions": [{"name": "buy", "label": "Buy"}, {"name": "sell", "label": "Sell"}],
        })
        self.log(f"demo started on {self.symbol} {self.timeframe}, average over {self.window} candles")
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        close = Decimal(str(candle["close"]))
        self.closes.append(close)
        average = sum(self.closes, Decimal(0)) / len(self.closes)
        self.points.append([candle["time"], str(close), str(average.quantize(_STEP))])
        self.update_component("price", data=self.points[-500:])
        above = close > average
        self.log(f"candle {candle['time']} close {close} {'above' if above else 'at or below'} the average {average:.2f}", level="debug")
        if not above:
            self.was_below = True
        elif self.was_below and not self.ordered and len(self.closes) == self.window:
            self.ordered = True
            self.log(f"close {close} crossed above the average: buying {self.order_fraction:g} of the available quote")
            self._trade("buy", Decimal(str(self.order_fraction)))

    def on_input(self, component_id: str, value: Any) -> None:
        action = value.get("action") if isinstance(value, dict) else None
        if component_id != "controls" or action not in ("buy", "sell"):
            self.log(f"ignored input to {component_id}: {value!r}", level="warning")
            return
        try:
            fraction = Decimal(str(value.get("fraction", "0.05")))
        except ArithmeticError:
            fraction = Decimal(-1)
        if not Decimal(0) < fraction <= 1:
            self.log(f"fraction must be in (0, 1], got {value.get('fraction')!r}", level="warning")
            return
        self._trade(action, fraction)

    def on_fill(self, fill: dict[str, Any]) -> None:
        self.fills.append([fill["time"], fill["side"], fill["price"], fill["size"]])
        self.update_component("fills", data=self.fills)

    def _trade(self, side: str, fraction: Decimal) -> None:
        """Buy `fraction` of the available quote or sell `fraction` of the available base, if that is anything."""
        base, quote = self.symbol.split("/")
        amount = ((self.available(quote) if side == "buy" else self.available(base)) * fraction).quantize(_STEP, rounding=ROUND_DOWN)
        if amount <= 0:
            self.log(f"nothing to {side}: no available {quote if side == 'buy' else base}", level="warning")
        elif side == "buy":
            self.buy(self.symbol, funds=amount)
        elif fraction == 1:
            self.sell(self.symbol)  # all of it, to the instrument's last step
        else:
            self.sell(self.symbol, size=amount)
