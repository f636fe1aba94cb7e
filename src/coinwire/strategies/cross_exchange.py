"""`cross_exchange`: spread capture between two exchanges: buy where the market is cheaper, sell where it is dearer.

The run's wallet set holds funds on two exchanges (start it with balances on both, e.g.
`demo:USDT=5000`, `demo:BTC=0.1`, `demo2:USDT=5000`, `demo2:BTC=0.1`). On every change of
either exchange's best bid or ask it compares one exchange's ask with the other's bid: when
selling on the dear one at its bid and buying on the cheap one at its ask still earns more
than `min_edge` after both legs' taker fees, it sends both legs at once, each a
limit-fill-kill order at the quoted price (it fills whole at that price or not at all, so a
leg never pays more than the edge was computed on).

This is inventory arbitrage: no funds move between the exchanges, so each capture turns
quote into base on the cheap exchange and base into quote on the dear one, and the run stops
finding trades when the cheap side runs out of quote or the dear side out of base. Each
capture is at most `size` of the base, at most what both quoted levels show, and needs a
notional of at least `min_notional` in the quote. After one, the strategy waits for a fresh
quote from both exchanges: the levels it just took from are not there any more. A leg that
is killed all the same (the book moved between the quote and the order, which a live venue
allows, or another order took the level first) leaves that side unhedged: it is logged and
counted in `unhedged`, and the next capture works with the funds as they are.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from coinwire.core.errors import InvalidInput
from coinwire.engine.strategy import OrderTicket, Strategy

__all__ = ["CrossExchange"]

_HEADROOM = 0.999  # of the available quote a buy may hold: its hold rounds up a little


class CrossExchange(Strategy):
    name = "cross_exchange"
    symbol = "BTC/USDT"
    size = 0.01  # base per capture, at most
    min_edge = 0.0005  # relative gain left after both legs' fees (0.0005 = 5 basis points)
    min_notional = 10.0  # quote a capture must be worth, at least (exchanges refuse tiny orders)

    def on_start(self) -> None:
        if len(self.exchanges) < 2:
            raise InvalidInput("needs_two_exchanges", "cross_exchange trades one market on two exchanges: give the run balances on "
                               f"two (e.g. demo:USDT=5000 and demo2:BTC=0.1); it has {', '.join(self.exchanges)}")
        if not self.size > 0 or not self.min_edge >= 0 or not self.min_notional >= 0:
            raise InvalidInput("invalid_parameter", "size must be positive, min_edge and min_notional not negative")
        self.pair = tuple(self.exchanges[:2])
        self.base, self.quote = self.symbol.split("/")
        self.fees = {ex: float(self.fee(self.symbol, exchange=ex)) for ex in self.pair}
        self.quotes: dict[str, dict[str, Any]] = {}  # exchange -> its latest ticker
        self.legs: dict[str, tuple[int, str]] = {}  # client_oid -> (capture number, leg)
        self.captures = 0
        self.unhedged = 0  # legs that did not fill
        for exchange in self.pair:
            self.subscribe_ticker(self.symbol, self.quoted, exchange=exchange)

    def quoted(self, ticker: dict[str, Any]) -> None:
        self.quotes[ticker["exchange"]] = ticker
        if len(self.quotes) < 2 or self.open_orders:
            return
        first, second = self.pair
        for cheap, dear in ((first, second), (second, first)):
            ask, bid = self.quotes[cheap]["ask"], self.quotes[dear]["bid"]
            edge = bid * (1 - self.fees[dear]) / (ask * (1 + self.fees[cheap])) - 1
            if edge > self.min_edge:
                self.capture(cheap, dear, edge)
                return

    def capture(self, cheap: str, dear: str, edge: float) -> None:
        """Buy on `cheap` at its ask and sell on `dear` at its bid, the same size, if the funds and the quoted levels allow."""
        buy_at, sell_at = self.quotes[cheap], self.quotes[dear]
        ask, bid = buy_at["ask"], sell_at["bid"]
        affordable = float(self.available(self.quote, exchange=cheap)) * _HEADROOM / (ask * (1 + self.fees[cheap]))
        size = min(self.size, buy_at["ask_size"], sell_at["bid_size"], float(self.available(self.base, exchange=dear)), affordable)
        if size * ask < self.min_notional:
            return
        self.captures += 1
        buy = self.buy(self.symbol, size=size, limit=Decimal(repr(ask)), type="limit-fill-kill", exchange=cheap)
        sell = self.sell(self.symbol, size=size, limit=Decimal(repr(bid)), type="limit-fill-kill", exchange=dear)
        self.legs[buy.client_oid] = (self.captures, "buy")
        self.legs[sell.client_oid] = (self.captures, "sell")
        self.quotes.clear()  # the next capture waits for both exchanges' books after this one
        self.log(f"capture {self.captures}: buy {size:.8g} {self.base} on {cheap} at {ask}, sell on {dear} at {bid} "
                 f"({edge * 1e4:.1f} bp after fees)")

    def on_order(self, order: OrderTicket) -> None:
        leg = self.legs.get(order.client_oid)
        if leg is None or order.status in ("pending", "open"):
            return
        del self.legs[order.client_oid]
        if order.status != "filled":
            self.unhedged += 1
            self.log(f"capture {leg[0]}: the {leg[1]} leg on {order.exchange} ended {order.status} "
                     f"({order.error or 'killed at its price'}): that side is unhedged", "warning")
