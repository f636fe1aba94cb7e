"""`rebalance`: hold fixed target weights of several markets, trading back to them every N bars or when a weight drifts.

An index portfolio in one strategy (OctoBot's index mode): `weights` names each market's share
of the run's equity (`"BTC/USDT=0.6,ETH/USDT=0.4"`; the rest, if they sum below 1, stays in the
quote), or, empty, an equal share of each of `symbols` (empty: every market the run has candles
for). At the first closed candle of the first market where every market has a price the strategy
buys the targets; after that it rebalances when due: every `every_bars` bars (0: never by count),
and whenever a market's weight is more than `drift` percentage points from its target (0: never
by drift).

A rebalance sells first, then buys. The sells (each market above its target, sized down to the
target and never beyond what is available) go out at once; the buys wait until every sell is
done, so they spend quote that is really there: each market below its target gets a market buy
with `funds` (quote, fee included) for its shortfall, all of them scaled down together when they
would need more than the available quote. A run therefore never asks for more than it holds.
Orders worth less than `min_notional` of the quote are skipped (a rebalance does not chase dust).

While a rebalance has orders in flight no new one starts. Buys refused because the run's entries
are paused (a rule set's `pause_entries` or `close_all`) are not retried until a later rebalance
is due, and a rebalance one of whose sells was cancelled before any fill (the strategy never
cancels its own: a rule set's `cancel_orders` or `close_all` did) buys nothing.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal
from typing import Any

from coinwire.core.errors import InvalidInput
from coinwire.engine.strategy import OrderTicket, Strategy

__all__ = ["Rebalance", "parse_weights"]

_ATTO = Decimal("1e-18")  # funds are whole ATTO of the quote
_LIVE = frozenset({"pending", "untriggered", "triggered", "open"})  # an order's states before it is done


def parse_weights(symbols: list[str], weights: str) -> dict[str, Decimal]:
    """Target weight per symbol: `weights` ("A/Q=0.5,B/Q=0.5"), or an equal share of `symbols` when it is empty.

    Why strings: a strategy's parameters are plain values a CLI can override (`-p weights=...`).
    The weights must be positive and sum to at most 1 (the rest stays in the quote).
    """
    if not weights.strip():
        if not symbols:
            raise InvalidInput("invalid_parameter", "rebalance needs symbols (or weights) to hold")
        share = Decimal(1) / len(symbols)
        return dict.fromkeys(symbols, share)
    out: dict[str, Decimal] = {}
    for part in weights.split(","):
        symbol, sep, value = part.strip().rpartition("=")
        try:
            weight = Decimal(value.strip())
        except ArithmeticError:
            weight = Decimal("NaN")
        if not sep or not symbol.strip() or "/" not in symbol or not weight.is_finite() or weight <= 0:
            raise InvalidInput("invalid_parameter",
                               f"weights look like 'BTC/USDT=0.6,ETH/USDT=0.4' (positive shares), got {part.strip()!r}")
        if symbol.strip() in out:
            raise InvalidInput("invalid_parameter", f"weights name {symbol.strip()} twice")
        out[symbol.strip()] = weight
    if sum(out.values()) > 1:
        raise InvalidInput("invalid_parameter", f"weights sum to {sum(out.values())}, more than 1")
    if symbols and set(symbols) != set(out):
        raise InvalidInput("invalid_parameter", "symbols and weights name different markets: give one of them, or the same markets")
    return out


class Rebalance(Strategy):
    name = "rebalance"
    symbols = ""  # comma-separated; empty: the markets of `weights`, else every market the run has candles for
    weights = ""  # "BTC/USDT=0.6,ETH/USDT=0.4"; empty: equal weights over `symbols`
    timeframe = "1h"  # the bars `every_bars` counts and the drift is checked at
    every_bars = 0  # rebalance every this many bars after the first; 0: not by count (`every` is the timer method)
    drift = 5.0  # percentage points a weight may stray from its target before a rebalance; 0: not by drift
    min_notional = 10.0  # orders worth less than this (in the quote) are skipped

    def on_start(self) -> None:
        listed = [s.strip() for s in self.symbols.split(",") if s.strip()]
        every_market = not listed and not self.weights.strip()
        if every_market:
            listed = self.markets
        self.targets = parse_weights(listed, self.weights)
        self.assets = list(self.targets)
        quotes = {s.split("/")[-1] for s in self.assets}
        if every_market and (len(quotes) != 1 or any(self.is_perpetual(s) for s in self.assets)):
            raise InvalidInput("invalid_parameter", f"this run has {len(self.assets)} markets, not all spot of one quote: "
                               "name the ones to hold with `symbols` or `weights`")
        if len(quotes) != 1 or any(self.is_perpetual(s) for s in self.assets):
            raise InvalidInput("invalid_parameter", f"rebalance holds spot markets of one quote currency, got {', '.join(self.assets)}")
        if self.every_bars < 0 or not math.isfinite(self.drift) or self.drift < 0 or self.min_notional < 0:
            raise InvalidInput("invalid_parameter", "every_bars, drift and min_notional must not be negative")
        self.quote = quotes.pop()
        self.bar = -1  # bars since the first rebalance (-1 before it)
        self.selling: list[OrderTicket] = []  # this rebalance's sells; the buys go out once all are done
        self.awaiting = False  # every sell is placed and the buys wait for them (set only once placing is over)
        self.buying: list[OrderTicket] = []
        self.rebalances: list[list[Any]] = []
        self.component("rebalances", {"type": "table", "title": "Rebalances",
                                      "columns": ["time", "reason", "largest drift (points)", "sells", "buys"]})
        self.subscribe_candles(self.assets[0], self.timeframe, self._bar)

    # --- when --------------------------------------------------------------------------------------
    def _bar(self, candle: dict[str, Any]) -> None:
        if self.bar >= 0:
            self.bar += 1
        if self.awaiting or any(t.status in _LIVE for t in self.buying):
            return  # the last rebalance is still trading
        try:
            prices, held, equity = self._valuation()
        except InvalidInput as exc:  # a paper run's market with no price yet: wait for it
            if exc.code != "no_price_yet":
                raise
            return
        if equity <= 0:
            return
        gap = max(abs(held[s] * prices[s] / equity - self.targets[s]) for s in self.assets) * 100
        if self.bar < 0:
            reason = "start"
            self.bar = 0
        elif self.every_bars and self.bar % self.every_bars == 0:
            reason = f"every {self.every_bars} bars"
        elif self.drift and gap > Decimal(repr(self.drift)):
            reason = f"drift above {self.drift} points"
        else:
            return
        self._sell(prices, held, equity)
        self.rebalances.append([self.time, reason, float(gap), len(self.selling), 0])
        self.awaiting = True
        self._after_sells()  # no sell, or all done already (refused at once): the buys now

    def _valuation(self) -> tuple[dict[str, Decimal], dict[str, Decimal], Decimal]:
        """Prices (last closes), holdings (base, holds included) and the equity of the targets' markets plus the quote."""
        prices = {s: Decimal(repr(self.price(s))) for s in self.assets}
        held = {s: self.balance(s.split("/")[0]) for s in self.assets}
        return prices, held, self.balance(self.quote) + sum(held[s] * prices[s] for s in self.assets)

    # --- how ---------------------------------------------------------------------------------------
    def _sell(self, prices: dict[str, Decimal], held: dict[str, Decimal], equity: Decimal) -> None:
        for s in self.assets:
            excess = held[s] * prices[s] - self.targets[s] * equity
            if excess < Decimal(repr(self.min_notional)) or excess <= 0:
                continue
            size = min(excess / prices[s], self.available(s.split("/")[0]))
            if size > 0:
                self.selling.append(self.sell(s, size=_float_down(size)))

    def _buy(self) -> None:
        """Market buys of every shortfall, with funds that fit the quote available now (fees are inside `funds`)."""
        prices, held, equity = self._valuation()
        wanted = {s: self.targets[s] * equity - held[s] * prices[s] for s in self.assets}
        wanted = {s: w for s, w in wanted.items() if w >= Decimal(repr(self.min_notional)) and w > 0}
        total = sum(wanted.values(), Decimal(0))
        cash = self.available(self.quote)
        scale = min(Decimal(1), cash / total) if total > 0 else Decimal(0)
        self.buying = []
        for s, w in wanted.items():
            funds = (w * scale).quantize(_ATTO, rounding=ROUND_DOWN)
            if funds > 0 and funds >= Decimal(repr(self.min_notional)):
                self.buying.append(self.buy(s, funds=funds))
        if self.rebalances:
            self.rebalances[-1][4] = len(self.buying)
            self.update_component("rebalances", data=self.rebalances)
        if self.buying:
            self.log(f"rebalance: {len(self.buying)} buys with {sum(wanted.values()) * scale:.2f} {self.quote}")

    def _after_sells(self) -> None:
        """The buys, once every sell of this rebalance is done; none when a sell was cancelled before any fill.

        Only after all the sells are placed (`awaiting`): a sell refused while the others are
        being placed reaches `on_order` at once, and must not start the buys early.
        """
        if not self.awaiting or any(t.status in _LIVE for t in self.selling):
            return
        self.awaiting = False
        sells, self.selling = self.selling, []
        if any(t.status == "cancelled" and not t.filled for t in sells):  # not by us: a rule's cancel_orders or close_all
            self.log("a rebalance's sell was cancelled before it filled: no buys until the next rebalance", level="warning")
            return
        self._buy()

    def on_order(self, order: OrderTicket) -> None:
        if order in self.selling:
            self._after_sells()
        elif order.side == "buy" and order.status == "rejected" and "entries_paused" in (order.error or ""):
            self.log(f"buy of {order.symbol} refused: this run's entries are paused", level="warning")


def _float_down(value: Decimal) -> float:
    """`value` as a float no larger than it: the engine rounds a float size down to the market's step, never up."""
    f = float(value)
    while Decimal(repr(f)) > value:
        f = math.nextafter(f, 0.0)
    return f
