"""The efficient_frontier strategy's inputs: a clicked frontier point chosen at once, custom weights, pause and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.runs import finish_backtest, prepare_any_backtest
from coinwire.strategies.efficient_frontier import EfficientFrontier
from tests.conftest import shared_data

PAIRS = "BTC/USDT,ETH/USDT,SOL/USDT"
START = 1614556800  # 2021-03-01 UTC
PARAMS = {"symbols": PAIRS, "history_bars": 288, "cloud": 50, "points": 20, "tolerance": 0.01, "depth_share": 0.05}


class Driven(EfficientFrontier):
    """The strategy with a test's inputs delivered at given steps of its clock, as the dashboard would post them."""

    script: ClassVar[list[tuple[int, str, dict[str, Any]]]] = []  # (step number, component, value)

    def on_start(self) -> None:
        super().on_start()
        self.steps = 0
        self.subscribe_candles(self.assets[0], self.timeframe, self._drive)

    def _drive(self, candle: dict[str, Any]) -> None:
        self.steps += 1
        for at, component, value in self.script:
            if at == self.steps:
                self._rt.deliver_input(self, component, value)  # the run's own input path: recorded, then on_input


def finish(tmp_path: Path, script: list[tuple[int, str, dict[str, Any]]], days: float = 2) -> tuple[Any, Any]:
    strategy = type("Scripted", (Driven,), {"script": script})
    config = BacktestConfig(exchange="binance", balances={"USDT": "100000"}, fee="0.001", start=START, end=START + int(days * 86400))
    prepared = prepare_any_backtest(strategy, PARAMS, [str(shared_data("binance-spot-5m"))], config, tmp_path)
    outcome = finish_backtest(prepared)
    assert outcome.status == "finished", outcome.error
    return outcome, prepared.runtime


def logs(rt: Any) -> list[str]:
    return [message for _, _, message in rt.logs]


def test_a_clicked_point_is_chosen_at_once_and_the_weight_path_is_drawn_on_the_frontier(tmp_path: Path) -> None:
    outcome, rt = finish(tmp_path, [(300, "frontier", {"action": "choose", "point": 7})])
    frontier = rt.components["frontier"]
    n = frontier.spec["curve_rows"]
    curve, path = frontier.data[:n], frontier.data[n:]
    assert n == 20 and frontier.spec["columns"][-1] == "time"
    target = rt.components["target"].spec
    chosen = np.array([target["weights"][a] for a in PAIRS.split(",")])
    assert np.allclose(chosen, curve[7][3:6], atol=1e-12)  # the clicked row's weights
    assert target["status"] == "reached" and outcome.report["trades"]
    # the path: one point per trading step, at the weights the run held then, on the frontier's plane
    steps = rt.components["path"].data
    assert len(path) == len(steps) > 3
    mu = np.array([p["return"] for p in frontier.spec["single_assets"]])  # each asset alone: its expected return
    cov = np.array(frontier.spec["covariance"])
    for point, step in zip(path, steps, strict=True):
        held = np.array(step[1:4])
        assert point[-1] == step[0] and np.allclose(point[3:6], held)
        assert point[0] == pytest.approx(float(held @ mu)) and point[1] == pytest.approx(float(np.sqrt(held @ cov @ held)))
    assert path[0][0] == 0 and path[0][1] == 0  # all cash at the first step
    assert path[-1][1] == pytest.approx(curve[7][1], rel=0.05)  # ends next to the chosen point


def test_custom_weights_and_a_pause_that_holds_the_rebalancing_until_resumed(tmp_path: Path) -> None:
    weights = {"BTC/USDT": 0.5, "ETH/USDT": 0.3, "SOL/USDT": 0.2}
    script = [(290, "target", {"action": "pause"}),
              (300, "target", {"action": "pick", "weights": weights}),
              (301, "target", {"action": "confirm"}),
              (340, "target", {"action": "pause"}),  # already paused: refused, logged
              (350, "target", {"action": "resume"})]
    outcome, rt = finish(tmp_path, script)
    trades = outcome.report["trades"]
    step = 300  # five-minute steps from the start
    resumed = START + 350 * step
    assert trades and min(t["time"] for t in trades) >= resumed  # nothing traded while paused, though a target was set
    assert rt.components["path"].data[0][0] >= resumed
    target = rt.components["target"].spec
    assert target["paused"] is False and target["status"] == "reached"
    assert target["weights"] == weights
    assert [a["name"] for a in target["actions"]][-1] == "pause"
    text = logs(rt)
    assert "rebalancing paused: no order until it is resumed" in text and "rebalancing resumed" in text
    assert any("the rebalancing is already paused" in line for line in text)


@pytest.mark.parametrize("value", [{"action": "choose", "weights": {"BTC/USDT": "a lot"}},
                                   {"action": "choose", "weights": {"DOGE/USDT": 1.0}},
                                   {"action": "choose", "weights": {"BTC/USDT": 0.5}},  # sums to 0.5
                                   {"action": "choose", "point": 99}, {"action": "choose", "point": "x"},
                                   {"action": "resume"}, {"action": "jump"}])
def test_bad_input_is_logged_and_the_run_goes_on(tmp_path: Path, value: dict[str, Any]) -> None:
    outcome, rt = finish(tmp_path, [(300, "frontier", value)], days=1.2)
    assert rt.components["target"].spec["status"] == "choosing" and not outcome.report["trades"]
    assert any(level == "warning" for _, level, _ in rt.logs)
