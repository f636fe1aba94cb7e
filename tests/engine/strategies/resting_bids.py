"""A test strategy for recordings of the demo feed: one resting bid at a time, a tick under the last trade, between two times."""

from __future__ import annotations

from typing import Any

from coinwire.engine.strategy import OrderTicket, Strategy


class RestingBids(Strategy):
    """From `begin` (unix s) on, a trade with no bid open places a bid a tick under its price (`most` in all); a bid
    still open `refresh` seconds later is cancelled, so the next trade places a new one."""
    symbol = "BTC/USDT"
    begin = 0
    most = 60
    refresh = 5
    size = "0.001"

    def on_start(self) -> None:
        self.placed = 0
        self.bid: OrderTicket | None = None
        self.since = 0.0
        self.subscribe_trades(self.symbol, self.trade)

    def trade(self, trade: dict[str, Any]) -> None:
        if trade["time"] < self.begin:
            return
        if self.bid is not None and self.bid.status == "open":
            if trade["time"] >= self.since + self.refresh:
                self.cancel(self.bid)
            return
        if self.open_orders or self.placed >= self.most:
            return
        self.placed += 1
        self.since = trade["time"]
        self.bid = self.buy(self.symbol, size=self.size, limit=round(trade["price"] - 0.01, 2))
