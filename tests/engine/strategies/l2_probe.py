"""A test strategy for recorded order books: crosses of trade-built candles, all-in buys by funds, sells of all, resting bids on a timer."""

from __future__ import annotations

from coinwire.engine.strategy import OrderTicket, Strategy


class L2Probe(Strategy):
    """Market buys by funds on a fast/slow cross, market sells of everything on the way back, a resting bid every 40 s."""
    symbol = "BTC/USDT"
    timeframe = "15s"
    fast = 3
    slow = 8
    funds = "2000"

    def on_start(self) -> None:
        fast = self.indicator("sma", self.symbol, self.timeframe, self.fast)
        slow = self.indicator("sma", self.symbol, self.timeframe, self.slow)
        self.watch_cross(fast, slow, above=self.up, below=self.down)
        self.every(40, self.rest_bid)
        self.resting: OrderTicket | None = None

    def up(self) -> None:
        self.buy(self.symbol, funds=self.funds)

    def down(self) -> None:
        if self.available("BTC") > 0:
            self.sell(self.symbol)

    def rest_bid(self) -> None:
        if self.resting is not None and self.resting.status == "open":
            self.cancel(self.resting)
        self.resting = self.buy(self.symbol, size="0.002", limit=round(self.price(self.symbol) - 1.0, 2))
