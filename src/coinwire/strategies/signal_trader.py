"""`signal_trader`: trades on outside signals, buying or selling the alert's market as TradingView's strategy alert says.

The strategy that makes `POST /api/v1/signals/{provider}` usable without writing one (docs/SIGNALS.md):
a TradingView strategy alert carrying `"action": "{{strategy.order.action}}"` and
`"contracts": "{{strategy.order.contracts}}"` becomes a market order here, in backtest (replaying
`signals.jsonl`), paper and live alike. A generic signal trades when its method is `buy` or `sell`
(or its params say `action`), on `params.symbol`.

Sizing: `size` (base units) when set; else the alert's `contracts`; else a buy spends all the
available quote and a sell sells the whole position. A sell never sells more than the run holds.
An alert for a market the run does not trade, or an order the venue refuses, is logged and
skipped: one bad alert must not end the run.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from coinwire.core.errors import CoinwireError
from coinwire.engine.strategy import Strategy

__all__ = ["SignalTrader"]


class SignalTrader(Strategy):
    name = "signal_trader"
    provider = "tradingview"  # whose signals to trade on
    symbol = ""  # trade this market whatever the alert names (blank: the alert's own symbol)
    size = ""  # base units per order (blank: the alert's contracts, else everything)

    def on_start(self) -> None:
        self.on_signal(self.provider, self.received)

    def received(self, signal: dict[str, Any]) -> None:
        params = signal["params"]
        action = params.get("action") or (signal["method"] if signal["method"] in ("buy", "sell") else None)
        if action not in ("buy", "sell"):
            return  # an alert that is not an order (a plain price alert): recorded in the hub, nothing to trade
        symbol = self.symbol or params.get("symbol")
        if not symbol or symbol not in self.markets:
            self.log(f"signal {signal['method']} for {symbol or params.get('ticker')!r}: not a market of this run "
                     f"({', '.join(self.markets)}); skipped", "warning")
            return
        size = _amount(self.size) or _amount(params.get("contracts")) or _amount(params.get("size"))
        try:
            if action == "buy":
                self.buy(symbol, size=size)
                return
            held = self.position(symbol)
            if held <= 0:
                return
            self.sell(symbol, size=min(size, held) if size is not None else None)
        except CoinwireError as exc:
            self.log(f"signal {action} {symbol} not traded: {exc.message}", "warning")


def _amount(value: Any) -> Decimal | None:
    """A positive amount, or None (blank, zero or not a number: the next source of the size is tried)."""
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None
