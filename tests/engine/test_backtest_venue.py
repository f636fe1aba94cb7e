"""The candle backtest on the simulated venue: what one candle does to several resting orders, and a market order's book."""

from __future__ import annotations

from typing import Any

from coinwire.engine.backtest import BacktestRuntime
from coinwire.engine.strategy import OrderTicket, Strategy
from tests.engine.test_backtest import config, series


class TwoBids(Strategy):
    """Two resting bids at 97 and 95 placed on the first candle; one later candle reaches both."""

    def on_start(self) -> None:
        self.tickets: list[OrderTicket] = []
        self.subscribe_candles("BTC/USDT", "1h", self.candle)

    def candle(self, candle: dict[str, Any]) -> None:
        if not self.tickets:
            self.tickets = [self.buy("BTC/USDT", size="0.1", limit="97"), self.buy("BTC/USDT", size="0.2", limit="95")]


def test_a_candle_reaching_two_resting_orders_fills_and_reports_each_as_its_own() -> None:
    s = series([100, 100, 100, 99, 99], lows=[100, 100, 100, 94, 99])
    rt = BacktestRuntime("two", [s], config())
    strategy = rt.run(TwoBids, {})
    assert [t.status for t in strategy.tickets] == ["filled", "filled"]
    inst = rt.markets["BTC/USDT"].instrument
    assert sorted((f.client_oid, inst.price_str(f.price), inst.size_str(f.size)) for f in rt.fills) == sorted(
        [(strategy.tickets[0].client_oid, "97", "0.1"), (strategy.tickets[1].client_oid, "95", "0.2")])
    fills = [m.params for m in rt.hub if m.method == "venue.fill"]
    assert sorted((f["client_oid"], f["price"]) for f in fills) == sorted(
        [(strategy.tickets[0].client_oid, "97"), (strategy.tickets[1].client_oid, "95")])
    assert not rt.ledger.holds()
    rt.ledger.check()
