"""`ma_cross`: the seed's moving-average crossover on closed candles, long-only and all-in by default.

A golden cross (fast SMA closes above the slow one) buys with all available quote, sized at
the fill price with the fee included (`size = cash / (price * (1 + fee))`); a death cross
sells the whole position; each cross also emits the named signal `ma_cross` ("above" / "below").
Only a cross is a signal, and the last signal is remembered so the
same one is never sent twice. Spot markets cannot be shorted: `long_only = False` is refused there
rather than faked.

On a perpetual (`BTC/USDT:USDT`) with `long_only = False` it is always in the market after the
first cross: long on a golden cross, short on a death cross, closing the opposite position
first (a reduce-only order, then the new one). `leverage` (1 by default) is set on the symbol at
the start, and each new position's notional is the leverage times the available margin balance
at the fill price, fee included (`notional = leverage * available / (1 + leverage * fee)`),
rounded down to the step. With `long_only` left true on a perpetual it goes long and flat.

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
    leverage = 1  # perpetuals: the symbol's leverage (sizes every new position)

    def on_start(self) -> None:
        if not 0 < self.fast < self.slow:
            raise InvalidInput("invalid_parameter", f"need 0 < fast < slow, got fast={self.fast} slow={self.slow}")
        self.perpetual = self.is_perpetual(self.symbol)
        if not self.long_only and not self.perpetual:
            raise InvalidInput("invalid_parameter", "spot markets cannot be shorted: ma_cross runs long-only (or trade a perpetual, "
                               "e.g. BTC/USDT:USDT)")
        for name in ("stop_loss", "take_profit"):
            if not 0 <= getattr(self, name) < 100:
                raise InvalidInput("invalid_parameter", f"{name} is a percentage from 0 (none) to below 100, got {getattr(self, name)}")
        if self.perpetual:
            if self.stop_loss or self.take_profit:
                raise InvalidInput("invalid_parameter", "stop_loss and take_profit protect spot entries; on a perpetual ma_cross "
                                   "trades without them")
            self.set_leverage(self.symbol, self.leverage)
        elif self.leverage != 1:
            raise InvalidInput("invalid_parameter", f"leverage applies to perpetuals; {self.symbol} is a spot market")
        self.last_signal: str | None = None
        self.entry: OrderTicket | None = None
        # a paper or live run loads `slow` closed candles before its first event (their warm-up), so both are defined at once
        self.fast_sma = self.indicator("sma", self.symbol, self.timeframe, self.fast)
        self.slow_sma = self.indicator("sma", self.symbol, self.timeframe, self.slow)
        self.watch_cross(self.fast_sma, self.slow_sma, above=self.golden_cross, below=self.death_cross)

    def golden_cross(self) -> None:
        self.signal("ma_cross", "above")  # the seed's MA cross signal (sent once per change of side)
        if self.last_signal == "buy":
            return
        self.last_signal = "buy"
        if self.perpetual:
            self.close(self.symbol)  # a short first (nothing when flat); the long below is sized once it has filled
            self.entry = self.buy(self.symbol)
            return
        self.entry = self.buy(self.symbol, stop_loss=_percent(self.stop_loss), take_profit=_percent(self.take_profit))

    def death_cross(self) -> None:
        self.signal("ma_cross", "below")
        if self.perpetual and not self.long_only:
            if self.last_signal != "sell":
                self.last_signal = "sell"
                self.close(self.symbol)
                self.entry = self.short(self.symbol)
            return
        if self.last_signal == "buy":  # long-only: nothing to sell before the first buy
            self.last_signal = "sell"
            if self.perpetual:
                self.close(self.symbol)
                return
            exits = self.entry.exits if self.entry is not None else []
            for ticket in exits:
                if ticket.status in ("untriggered", "open"):
                    self.cancel(ticket)
            if not exits or self.position(self.symbol) > 0:  # an exit that fired has already closed the position
                self.sell(self.symbol)


def _percent(value: float) -> str | None:
    return f"{Decimal(repr(float(value)))}%" if value else None
