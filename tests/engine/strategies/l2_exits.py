"""A test strategy for recorded order books with stops and targets: entries on crosses of trade-built candles, each with exits.

Buys by funds on a fast/slow cross, every other time with a stop-loss and a take-profit as
prices a few ticks from the market (a bracket: an OCO once the entry filled); on the way back
it puts a trailing stop or, every other time, a stop on the best bid (`bid_ask`) under what
the exits do not hold. It exercises the L2 triggers: recorded trades (last price) and the touch.
"""

from __future__ import annotations

from coinwire.engine.strategy import OrderTicket, Strategy


class L2Exits(Strategy):
    symbol = "BTC/USDT"
    timeframe = "15s"
    fast = 3
    slow = 8
    funds = "2000"
    below = 0.0002  # the stop-loss, this fraction under the price
    above = 0.0003  # the take-profit, this fraction over it

    def on_start(self) -> None:
        fast = self.indicator("sma", self.symbol, self.timeframe, self.fast)
        slow = self.indicator("sma", self.symbol, self.timeframe, self.slow)
        self.watch_cross(fast, slow, above=self.up, below=self.down)
        self.ups = self.downs = 0
        self.states: list[tuple[str, str, str | None]] = []  # (client_oid, status, trigger_state) as on_order saw them
        self.guard: OrderTicket | None = None

    def up(self) -> None:
        self.ups += 1
        if self.ups % 2 == 0:
            self.buy(self.symbol, funds=self.funds)
            return
        price = self.price(self.symbol)
        self.buy(self.symbol, funds=self.funds, stop_loss=round(price * (1 - self.below), 2),
                 take_profit=round(price * (1 + self.above), 2))

    def down(self) -> None:
        free = self.available("BTC")
        if free <= 0 or (self.guard is not None and self.guard.status in ("untriggered", "open")):
            return
        self.downs += 1
        if self.downs % 2:
            self.guard = self.sell(self.symbol, size=free, trailing_delta="0.01%")
        else:
            self.guard = self.sell(self.symbol, size=free, stop_price=round(self.price(self.symbol) * 0.9999, 2), trigger="bid_ask")

    def on_order(self, order: OrderTicket) -> None:
        self.states.append((order.client_oid, order.status, order.trigger_state))


class L2PercentExits(L2Exits):
    """The same entries with exits in percent of each entry's fill: both (an OCO), or every other time a lone stop-loss."""

    def up(self) -> None:
        self.ups += 1
        if self.ups % 2 == 0:
            self.buy(self.symbol, funds=self.funds)
        elif self.ups % 4 == 1:
            self.buy(self.symbol, funds=self.funds, stop_loss="0.02%", take_profit="0.03%")
        else:
            self.buy(self.symbol, funds=self.funds, stop_loss="0.02%")


class L2TrailingExits(L2Exits):
    """The same entries with a trailing exit from each entry's fill: with a take-profit (an OCO), or every other time alone."""

    def up(self) -> None:
        self.ups += 1
        if self.ups % 2 == 0:
            self.buy(self.symbol, funds=self.funds)
        elif self.ups % 4 == 1:
            self.buy(self.symbol, funds=self.funds, trailing="0.02%", take_profit="0.03%")
        else:
            self.buy(self.symbol, funds=self.funds, trailing="0.02%")
