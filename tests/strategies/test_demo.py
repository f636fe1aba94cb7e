"""The seed's `DemoStrategy` (`demo`) in candle backtests: it logs, charts, buys a small share once on a cross, takes form input."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import numpy as np

from coinwire.engine.backtest import BacktestConfig, Series
from coinwire.engine.runs import run_backtest
from coinwire.strategies.demo import Demo
from coinwire.strategies.registry import builtin_strategies, load_strategy, seed_name

H = 3600
T0 = 1_700_000_000 // H * H


def series(closes: list[float]) -> Series:
    """Hourly BTC/USDT candles whose next open is the previous close."""
    c = np.array(closes, dtype=float)
    o = np.concatenate([[c[0]], c[:-1]])
    return Series("BTC/USDT", "1h", T0 + H * np.arange(len(c)), o, np.maximum(o, c), np.minimum(o, c), c, np.full(len(c), 1e9))


def run(cls: type[Demo], closes: list[float], **params: Any) -> tuple[Any, Any]:
    config = BacktestConfig(exchange="binance", balances={"USDT": "10000"}, fee="0.001")
    return run_backtest(cls, params, [series(closes)], config)


DIP_THEN_RISE = [100.0] * 5 + [90.0, 85.0, 95.0, 110.0, 120.0, 130.0, 125.0, 140.0]


def test_seed_names_resolve_to_the_builtins_in_one_place() -> None:
    assert load_strategy("DemoStrategy") is Demo is load_strategy("demo") is builtin_strategies()["demo"]
    assert load_strategy("HodlStrategy") is builtin_strategies()["hodl"]
    assert load_strategy("EfficientFrontier") is builtin_strategies()["efficient_frontier"]
    assert [seed_name(n) for n in ("hodl", "echo", "demo", "component_demo", "efficient_frontier", "ma_cross")] == [
        "HodlStrategy", "EchoStrategy", "DemoStrategy", "ComponentDemo", "EfficientFrontier", "ma_cross"]


def test_it_buys_a_small_share_once_when_the_close_crosses_above_its_average() -> None:
    outcome, rt = run(Demo, DIP_THEN_RISE)
    assert outcome.status == "finished", outcome.error
    trades = outcome.report["trades"]
    assert [t["side"] for t in trades] == ["buy"]  # once, though the close stays above afterwards
    # the first close above its 5-candle average (94) after the dip is 95 (the 8th candle); the buy fills at the next open
    assert trades[0]["time"] == T0 + 8 * H and Decimal(trades[0]["price"]) == Decimal("95")
    spent = Decimal(trades[0]["price"]) * Decimal(trades[0]["size"]) + Decimal(trades[0]["fee"])
    assert Decimal("99") < spent <= Decimal("100")  # 1 % of 10000, fee included
    assert {"price", "fills", "controls"} == set(rt.components)
    assert len(rt.components["price"].data) == len(DIP_THEN_RISE) and len(rt.components["fills"].data) == 1
    assert any("crossed above the average" in line[2] for line in rt.logs)
    # the hub: the call and the venue's answer to it, paired
    (call,) = [m for m in rt.hub if m.method == "venue.make_order"]
    answers = [m for m in rt.hub if m.reply_to == call.seq]
    assert len(answers) == 1 and answers[0].method == "venue.order" and answers[0].params["client_oid"] == call.params["client_oid"]


def test_a_flat_market_never_trades() -> None:
    outcome, rt = run(Demo, [100.0] * 20)
    assert outcome.status == "finished" and outcome.report["trades"] == []
    assert not [m for m in rt.hub if m.method == "venue.make_order"]


class Driven(Demo):
    """Demo with a test's form input delivered at given candles, through the run's own input path."""

    script: ClassVar[list[tuple[int, Any]]] = []

    def on_start(self) -> None:
        super().on_start()
        self.seen = 0
        self.subscribe_candles(self.symbol, self.timeframe, self._drive)

    def _drive(self, candle: dict[str, Any]) -> None:
        self.seen += 1
        for at, value in self.script:
            if at == self.seen:
                self._rt.deliver_input(self, "controls", value)


def test_form_input_buys_and_sells_shares_and_bad_input_is_logged() -> None:
    script = [(2, {"action": "buy", "fraction": 0.5}), (4, {"action": "sell", "fraction": 1}), (5, {"action": "hold"}),
              (6, {"action": "buy", "fraction": 7})]
    outcome, rt = run(type("Scripted", (Driven,), {"script": script}), [100.0] * 10)
    assert outcome.status == "finished", outcome.error
    trades = outcome.report["trades"]
    assert [(t["side"], t["time"]) for t in trades] == [("buy", T0 + 2 * H), ("sell", T0 + 4 * H)]
    assert Decimal(trades[0]["size"]) == Decimal(trades[1]["size"])  # sold everything it bought
    warnings = [line[2] for line in rt.logs if line[1] == "warning"]
    assert any("ignored input to controls" in w for w in warnings) and any("fraction must be in (0, 1]" in w for w in warnings)
    assert [m.params["value"] for m in rt.hub if m.method == "ui.input"] == [v for _, v in script]
