"""The efficient_frontier strategy: a backtest over the 8 five-minute pairs trades an all-USDT wallet set into the
chosen frontier portfolio (fees paid, no slice above the depth limit); the same strategy picks and trades on the demo feed in paper mode."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coinwire.app import Platform
from coinwire.config import load_settings
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.paper import PaperRuntime
from coinwire.engine.runs import finish_backtest, prepare_any_backtest
from coinwire.history.formats import load_data_arg
from coinwire.strategies.efficient_frontier import EfficientFrontier
from coinwire.strategies.registry import load_strategy
from tests.conftest import shared_data

PAIRS = "BTC/USDT,ETH/USDT,ADA/USDT,DOT/USDT,LINK/USDT,LTC/USDT,SOL/USDT,XRP/USDT"
START, END = 1614556800, 1614988800  # 2021-03-01 .. 2021-03-06 UTC
TOLERANCE = 0.005
DEPTH_SHARE = 0.01
FEE = 0.001


def components(runtime: Any) -> dict[str, dict[str, Any]]:
    return {k: {"spec": c.spec, "data": c.data} for k, c in runtime.components.items()}


def test_backtest_reaches_the_min_variance_weights_with_fees_and_depth_limited_slices(tmp_path: Path) -> None:
    data = shared_data("binance-spot-5m")
    params = {"symbols": PAIRS, "target": "min_variance", "history_bars": 1000, "tolerance": TOLERANCE,
              "depth_share": DEPTH_SHARE, "cloud": 500}
    config = BacktestConfig(exchange="binance", balances={"USDT": "1000000"}, fee=str(FEE), start=START, end=END)
    prepared = prepare_any_backtest(load_strategy("efficient_frontier"), params, [str(data)], config, tmp_path)
    outcome = finish_backtest(prepared)
    assert outcome.status == "finished", outcome.error
    report = outcome.report
    assert report is not None
    parts = components(prepared.runtime)
    assert set(parts) == {"frontier", "cloud", "target", "path", "slices"}
    frontier = parts["frontier"]
    assets = frontier["spec"]["assets"]
    assert assets == PAIRS.split(",") and frontier["spec"]["curve_rows"] == 50 and len(parts["cloud"]["data"]) == 500
    assert len(frontier["data"]) == 50 + len(parts["path"]["data"])  # the curve, then the weight path
    assert len(frontier["spec"]["covariance"]) == 8 and len(frontier["spec"]["single_assets"]) == 8
    goal = np.array([parts["target"]["spec"]["weights"][a] for a in assets])
    mv = frontier["spec"]["min_variance"]["weights"]
    assert np.allclose(goal, [mv[a] for a in assets]) and (goal > 0.05).sum() >= 3  # a real mix
    assert parts["target"]["spec"]["status"] == "reached"

    # the path: from all quote to the target, the last row within the tolerance of every weight
    path = parts["path"]["data"]
    first, last = np.array(path[0][1:9]), np.array(path[-1][1:9])
    assert first.sum() == 0 and path[0][9] == 1.0
    assert np.abs(last - goal).max() <= TOLERANCE and path[-1][10] <= TOLERANCE
    assert len(path) > 10  # it took many steps: the depth limit sliced the orders

    # no slice above the depth limit, and the depth is the volume of the candle that closed at the step
    volumes = {c.symbol: dict(zip(c.time.tolist(), c.volume.tolist(), strict=True)) for c in load_data_arg(data)}
    slices = parts["slices"]["data"]
    assert len(slices) > 20
    for time, symbol, side, size, depth, limit in slices:
        assert side in ("buy", "sell") and size <= limit * (1 + 1e-12)
        assert math.isclose(limit, DEPTH_SHARE * depth) and depth == volumes[symbol][time - 300]
    # every fill is one slice's order (sizes rounded down to the grid), fees paid on each at the fee rate
    trades = report["trades"]
    by_step = {(s[0], s[1]): s[3] for s in slices}
    assert len(trades) == len(slices)
    fees = 0.0
    for t in trades:
        sliced = by_step[(t["time"], t["symbol"])]  # placed at a close, filled at the next open: the same instant
        assert float(t["size"]) <= sliced
        fee = float(t["fee"])
        assert math.isclose(fee, FEE * float(t["price"]) * float(t["size"]), rel_tol=1e-9)
        fees += fee
    assert math.isclose(report["fees"], fees, rel_tol=1e-9) and report["fees"] > 0


def test_a_bad_symbols_parameter_fails_the_run_with_a_code(tmp_path: Path) -> None:
    data = shared_data("binance-spot-5m")
    config = BacktestConfig(exchange="binance", balances={"USDT": "1000"}, start=START, end=START + 86_400)
    frontier = load_strategy("efficient_frontier")
    outcome = finish_backtest(prepare_any_backtest(frontier, {"symbols": "BTC/USDT"}, [str(data)], config, tmp_path))
    assert outcome.status == "failed" and "symbols must be two or more pairs of one quote" in (outcome.error or "")


async def wait_for(predicate: Any, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
async def test_paper_run_on_the_demo_feed_computes_picks_confirms_and_trades(tmp_path: Path) -> None:
    exchange = {"name": "demo", "feed": "demo", "tick_interval": 0.02, "paper_funds": {"USDT": "1000000"}}
    platform = Platform(load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [exchange]}))
    await platform.start(feeds=False)
    try:
        run = PaperRuntime("pp-frontier", platform.gateway, {"demo": {"USDT": "100000"}})
        params = {"symbols": "BTC/USDT,ETH/USDT,SOL/USDT", "timeframe": "1s", "history_bars": 8, "cloud": 200,
                  "points": 10, "depth_share": 0.2, "tolerance": 0.05}
        await run.open(EfficientFrontier, params)
        platform.start_feeds()
        await wait_for(lambda: "frontier" in run.components or run.done.is_set(), 60)
        assert run.failure is None and run.error is None
        strategy = run.strategy
        assert strategy is not None
        assert run.components["target"].spec["status"] == "choosing"
        run.deliver_input(strategy, "target", {"action": "pick", "target": "min_variance"})
        assert run.components["target"].spec["status"] == "confirming" and not run.open_orders()
        run.deliver_input(strategy, "target", {"action": "confirm"})
        await wait_for(lambda: len(run.components["path"].data) >= 4 or run.done.is_set(), 40)
        run.request_stop("test over")
        await run.run()
        assert run.failure is None and run.error is None
        orders = [o for o in await platform.gateway.recent_orders(include_open=True, limit=1000) if o.run_id == run.run_id]
        slices = run.components["slices"].data
        assert orders and len(orders) == len(slices)
        assert all(size <= limit * (1 + 1e-12) for _, _, _, size, _, limit in slices)
        path = run.components["path"].data
        assert path[0][-1] > path[-1][-1]  # the largest gap to the target shrinks
    finally:
        await platform.stop()
