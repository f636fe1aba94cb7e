"""`ma_cross`: the seed's moving-average crossover on closed candles, long-only and all-in by default.

A golden cross (fast SMA closes above the slow one) buys with all available quote, sized at
the fill price with the fee included (`size = cash / (price * (1 + fee))`); a death cross
sells the whole position. Only a cross is a signal, and the last signal is remembered so the
same one is never sent twice. With `long_only = False` a death cross also opens... nothing:
coinwire trades spot, so shorting is refused rather than faked.

`stop_loss` and `take_profit` (percent of the entry's fill price, 0: none) protect each entry
with exits placed once it filled: `stop_loss=3` is a stop-market 3% below the fill,
`take_profit=6` a take-profit-market 6% above it (an OCO when both are given). A death cross
cancels what is left of them before it sells; a position they closed is not sold again.
"""

from __future__ import annotations

from decimal import Decimal

from coinwire.core.errors import InvalidInput
from coinwire.engine.strategy import OrderTicket, Strategy

__all__ = ["MaCross"]


class MaCross(Strategy):
    name = "ma_cross"
    symbol = "BTC/USDT"
    timeframe = "5m"
    fast = 50
    slow = 200
    long_only = True
    stop_loss = 0.0  # percent below the entry's fill price (0: no stop)
    take_profit = 0.0  # percent above it (0: no target)

    def on_start(self) -> None:
        if not 0 < self.fast < self.slow:
            raise InvalidInput("invalid_parameter", f"need 0 < fast < slow, got fast={self.fast} slow={self.slow}")
        if not self.long_only:
            raise InvalidInput("invalid_parameter", "spot markets cannot be shorted: ma_cross runs long-only")
        for name in ("stop_loss", "take_profit"):
            if not 0 <= getattr(self, name) < 100:
                raise InvalidInput("invalid_parameter", f"{name} is a percentage from 0 (none) to below 100, got {getattr(self, name)}")
        self.last_signal: str | None = None
        self.entry: OrderTicket | None = None
        # a paper or live run loads `slow` closed candles before its first event (their warm-up), so both are defined at once
        self.fast_sma = self.indicator("sma", self.symbol, self.timeframe, self.fast)
        self.slow_sma = self.indicator("sma", self.symbol, self.timeframe, self.slow)
        self.watch_cross(self.fast_sma, self.slow_sma, above=self.golden_cross, below=self.death_cross)

    def golden_cross(self) -> None:
        if self.last_signal != "buy":
            self.last_signal = "buy"
            self.entry = self.buy(self.symbol, stop_loss=_percent(self.stop_loss), take_profit=_percent(self.take_profit))

    def death_cross(self) -> None:
        if self.last_signal == "buy":  # long-only: nothing to sell before the first buy
            self.last_signal = "sell"
            exits = self.entry.exits if self.entry is not None else []
            for ticket in exits:
                if ticket.status in ("untriggered", "open"):
                    self.cancel(ticket)
            if not exits or self.position(self.symbol) > 0:  # an exit that fired has already closed the position
                self.sell(self.symbol)


def _percent(value: float) -> str | None:
    return f"{Decimal(repr(float(value)))}%" if value else None
