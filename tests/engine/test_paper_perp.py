"""A perpetual strategy in a paper run through the gateway: the same calls as in the L2 backtest, the same fills."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from coinwire.app import Platform
from coinwire.config import load_settings
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.paper import PaperRuntime
from coinwire.engine.runs import finish_backtest, prepare_any_backtest
from tests.conftest import shared_data
from tests.engine.test_perp_backtest import L2Perp

FUNDS = {"USDT": "1000"}


def perp_replay_settings(tmp_path: Path, paths: list[Path]) -> Any:
    exchange = {"name": "binanceusdm", "feed": "replay", "replay_paths": [str(p) for p in paths], "replay_speed": None,
                "replay_loop": False, "replay_market": "binanceusdm", "paper_funds": FUNDS}
    return load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [exchange]})


async def test_a_perpetual_strategy_trades_the_same_in_paper_as_in_the_l2_backtest(tmp_path: Path) -> None:
    paths = sorted(shared_data("binance-usdm-l2").glob("*.gz"))
    platform = Platform(perp_replay_settings(tmp_path / "paper", paths))
    await platform.start(feeds=False)
    try:
        run = PaperRuntime("pp-perp", platform.gateway, {"binanceusdm": FUNDS})
        await run.open(L2Perp, {})
        (feed,) = platform.start_feeds()
        await feed
        await platform.gateway.caught_up(give_up=run.done)
        run.request_stop("the recording ended")
        await run.run()
        strategy = run.strategy
        assert strategy is not None and run.failure is None, run.failure
        views = strategy.views  # type: ignore[attr-defined]
        paper_fills = [(f.side.value, f.price, f.size) for f in run.fills]
        account = run.account_of("binanceusdm")
        settings = platform.gateway.ledger.positions.settings(account, "binanceusdm", "BTC/USDT:USDT")
        assert settings.leverage == 10  # set through the gateway, before the order it sized
        assert run.position("BTC/USDT:USDT", None).side == "flat"
    finally:
        await platform.stop()
    assert [side for side, _, _ in paper_fills][:1] == ["buy"] and paper_fills[-1][0] == "sell"
    assert views and all(v.side == "long" and v.leverage == 10 for v in views)
    assert len({v.upnl for v in views}) > 1
    cfg = BacktestConfig(exchange="binanceusdm", balances=FUNDS, fee="0.0005")
    prepared = prepare_any_backtest(L2Perp, {}, [str(p) for p in paths], cfg, tmp_path / "bt")
    outcome = finish_backtest(prepared)
    assert outcome.status == "finished", outcome.error
    backtest_fills = [(f.side.value, f.price, f.size) for f in prepared.runtime.fills]
    bought = sum(Decimal(s) for side, _, s in paper_fills if side == "buy")
    assert bought > 0
    assert paper_fills == backtest_fills
