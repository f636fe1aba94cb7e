"""`component_demo`: shows the UI component round trip: a chart and a form the user can post to.

It publishes a price line chart, a table of its fills and a form with a `fraction` slider and
a `buy` button; posting `{"action": "buy", "fraction": 0.25}` to the form buys that fraction
of the available quote at the next opportunity, and the chart and table update.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from coinwire.engine.strategy import Strategy

__all__ = ["ComponentDemo"]


class ComponentDemo(Strategy):
    name = "component_demo"
    symbol = "BTC/USDT"
    timeframe = "1h"

    def on_start(self) -> None:
        self.points: list[list[Any]] = []
        self.fills: list[list[Any]] = []
        self.component("price", {"type": "line_chart", "title": f"{self.symbol} close", "columns": ["time", "close"]})
        self.component("fills", {"type": "table", "title": "Fills", "columns": ["time", "side", "price", "size"]})
        self.component("order_form", {
            "type": "form", "title": "Buy a share of the available quote",
            "fields": [{"name": "fraction", "type": "slider", "min": 0.01, "max": 1, "step": 0.01, "value": 0.1}],
            "actions": [{"name": "buy", "label": "Buy", "confirm": True}],
        })
        self.subscribe_candles(self.symbol, self.timeframe, self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        self.points.append([candle["time"], candle["close"]])
        self.update_component("price", data=self.points[-500:])

    def on_input(self, component_id: str, value: Any) -> None:
        if component_id != "order_form" or not isinstance(value, dict) or value.get("action") != "buy":
            self.log(f"ignored input to {component_id}: {value!r}", level="warning")
            return
        fraction = Decimal(str(value.get("fraction", "0.1")))
        if not Decimal(0) < fraction <= 1:
            self.log(f"fraction must be in (0, 1], got {fraction}", level="warning")
            return
        quote = self.symbol.split("/")[1]
        funds = (self.available(quote) * fraction).quantize(Decimal("0.00000001"), rounding="ROUND_DOWN")
        if funds > 0:
            self.buy(self.symbol, funds=funds)

    def on_fill(self, fill: dict[str, Any]) -> None:
        self.fills.append([fill["time"], fill["side"], fill["price"], fill["size"]])
        self.update_component("fills", data=self.fills)
