"""`ma_cross`: the seed's moving-average crossover on closed candles, long-only and all-in by default.

A golden cross (fast SMA closes above the slow one) buys with all available quote, sized at
the fill price with the fee included (`size = cash / (price * (1 + fee))`); a death cross
sells the whole position. Only a cross is a signal, and the last signal is remembered so the
same one is never sent twice. With `long_only = False` a death cross also opens... nothing:
coinwire trades spot, so shorting is refused rather than faked.
"""

from __future__ import annotations

from coinwire.core.errors import InvalidInput
from coinwire.engine.strategy import Strategy

__all__ = ["MaCross"]


class MaCross(Strategy):
    name = "ma_cross"
    symbol = "BTC/USDT"
    timeframe = "5m"
    fast = 50
    slow = 200
    long_only = True

    def on_start(self) -> None:
        if not 0 < self.fast < self.slow:
            raise InvalidInput("invalid_parameter", f"need 0 < fast < slow, got fast={self.fast} slow={self.slow}")
        if not self.long_only:
            raise InvalidInput("invalid_parameter", "spot markets cannot be shorted: ma_cross runs long-only")
        self.last_signal: str | None = None
        # a paper or live run loads `slow` closed candles before its first event (their warm-up), so both are defined at once
        self.fast_sma = self.indicator("sma", self.symbol, self.timeframe, self.fast)
        self.slow_sma = self.indicator("sma", self.symbol, self.timeframe, self.slow)
        self.watch_cross(self.fast_sma, self.slow_sma, above=self.golden_cross, below=self.death_cross)

    def golden_cross(self) -> None:
        if self.last_signal != "buy":
            self.last_signal = "buy"
            self.buy(self.symbol)

    def death_cross(self) -> None:
        if self.last_signal == "buy":  # long-only: nothing to sell before the first buy
            self.last_signal = "sell"
            self.sell(self.symbol)
