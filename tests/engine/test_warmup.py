"""Warm-up: paper runs load the history their indicators and windows need before their first event, and say from where."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coinwire.app import Platform
from coinwire.config import load_settings
from coinwire.core.errors import CoinwireError
from coinwire.engine.paper import PaperRuntime
from coinwire.engine.runs import RunStore
from coinwire.engine.warmup import explicit_bars, parse_policy, window
from coinwire.feeds.demo import DemoMarket
from coinwire.messages import Markets
from coinwire.services.paper_runs import PaperRuns
from coinwire.services.runs import StartRequest, _request
from coinwire.store.candles import CandleRow, write_candles
from coinwire.strategies.ma_cross import MaCross
from coinwire.strategies.trade_decider import TradeDecider

T0 = 1_796_000_400  # the run's start (unix s), a whole hour
NS = 1_000_000_000
FUNDS = {"demo": {"USDT": "10000", "BTC": "0.1"}}


def settings(tmp_path: Path) -> Any:
    exchange = {"name": "demo", "feed": "demo", "symbols": ["BTC/USDT", "ETH/USDT"], "paper_funds": {"USDT": "100000", "BTC": "2"}}
    return load_settings(env={}, overrides={"data_dir": str(tmp_path), "exchanges": [exchange]})


async def drive(platform: Platform, seconds: float, tick: float = 0.25) -> None:
    """The demo feed's own market, ticked on a test clock from T0 (what DemoFeed.run does on the wall clock)."""
    market = platform.feeds[0].market
    gateway = platform.gateway
    await gateway.apply_market(Markets("demo", market.instruments()))
    for inst in market.instruments():
        await gateway.apply_market(market.snapshot(inst.symbol, T0 * NS))
    for k in range(1, int(seconds / tick) + 1):
        for message in market.step(T0 * NS + int(k * tick * NS)):
            await gateway.apply_market(message)


async def paper_run(tmp_path: Path, cls: type, params: dict[str, Any], seconds: float, warmup: str = "best_effort",
                    sources: Any = None, prepare: Any = None) -> PaperRuntime:
    platform = Platform(settings(tmp_path))
    await platform.start(feeds=False)
    try:
        if prepare is not None:
            await prepare(platform)
        history = platform.warm_sources() if sources is None else sources
        run = PaperRuntime("pp-warm", platform.gateway, FUNDS, history=history, warmup=warmup, clock=lambda: T0 * NS)
        await run.open(cls, run_params(cls, params))
        await drive(platform, seconds)
        run.request_stop("test over")
        await run.run()
        return run
    finally:
        await platform.stop()


def run_params(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    from coinwire.engine.strategy import parse_params

    return parse_params(cls, raw)


def warm_lines(run: PaperRuntime) -> list[str]:
    return [message for _, _, message in run.logs if message.startswith("warm-up:")]


class FirstCandle(MaCross):
    """ma_cross itself, plus a note of both averages at its first event (the first closed candle)."""

    def on_start(self) -> None:
        super().on_start()
        self.seen: list[tuple[int, float, float]] = []
        self.subscribe_candles(self.symbol, self.timeframe, self.note)

    def note(self, candle: dict[str, Any]) -> None:
        self.seen.append((candle["time"], self.fast_sma.value, self.slow_sma.value))


# --- paper runs on the demo feed -----------------------------------------------------------------------
async def test_trade_decider_trades_in_its_first_minute_on_the_demo_feeds_warm_week(tmp_path: Path) -> None:
    run = await paper_run(tmp_path, TradeDecider, {"threshold": 0.001}, seconds=75)
    assert run.failure is None and run.error is None
    (line,) = warm_lines(run)
    assert line.startswith("warm-up: BTC/USDT 1h 168 candles from the demo feed's past ")
    week = run.candles("BTC/USDT", "1h", None)
    assert len(week["close"]) >= 168 and int(week["time"][167]) == T0 - 3600  # the week closes where the run starts
    # the decision it took at its first minute is the one the week calls for, and it traded on it
    closes = week["close"][:168]
    assert abs(closes[-1] / closes.mean() - 1) > 0.001
    assert run.fills, "no trade in the first minute"
    assert run.fills[0].ts <= run.start_ns + 61 * NS
    side = run.fills[0].side._value_
    assert side == ("buy" if closes[-1] < closes.mean() else "sell")


async def test_ma_cross_50_200_has_both_averages_at_its_first_event(tmp_path: Path) -> None:
    run = await paper_run(tmp_path, FirstCandle, {"timeframe": "1m"}, seconds=130)
    assert run.failure is None and run.error is None
    (line,) = warm_lines(run)
    assert "BTC/USDT 1m 200 candles from the demo feed's past" in line
    strategy = run.strategy
    assert isinstance(strategy, FirstCandle) and strategy.seen
    first_time, fast, slow = strategy.seen[0]
    assert first_time == T0 and math.isfinite(fast) and math.isfinite(slow)
    closes = run.candles("BTC/USDT", "1m", None)["close"]  # 200 of history, then the run's own
    assert slow == pytest.approx(float(np.mean(closes[1:201])), rel=1e-9)
    assert fast == pytest.approx(float(np.mean(closes[151:201])), rel=1e-9)


async def test_stored_candles_are_preferred_over_the_demo_past_when_they_cover_the_window(tmp_path: Path) -> None:
    async def store_candles(platform: Platform) -> None:
        rows = [CandleRow(exchange="demo", symbol="BTC/USDT", interval_s=60, open_time=T0 - 60 * k, close_time=T0 - 60 * (k - 1),
                          price_decimals=2, size_decimals=5, open=1_234_500, high=1_234_600, low=1_234_400, close=1_234_567,
                          volume=100_000, trades=3, updated_at=(T0 - 60 * (k - 1)) * NS) for k in range(1, 251)]
        await write_candles(platform.store, rows)

    run = await paper_run(tmp_path, MaCross, {"timeframe": "1m"}, seconds=5, prepare=store_candles)
    (line,) = warm_lines(run)
    assert line.startswith("warm-up: BTC/USDT 1m 200 candles from stored candles ")
    history = run.candles("BTC/USDT", "1m", None)
    assert len(history["close"]) == 200 and set(history["close"].tolist()) == {12345.67}
    assert int(history["time"][0]) == T0 - 200 * 60 and int(history["time"][-1]) == T0 - 60


async def test_a_short_store_falls_through_to_the_next_source(tmp_path: Path) -> None:
    async def store_few(platform: Platform) -> None:
        rows = [CandleRow(exchange="demo", symbol="BTC/USDT", interval_s=60, open_time=T0 - 60 * k, close_time=T0 - 60 * (k - 1),
                          price_decimals=2, size_decimals=5, open=1_234_500, high=1_234_600, low=1_234_400, close=1_234_567,
                          volume=100_000, trades=3, updated_at=0) for k in range(1, 11)]
        await write_candles(platform.store, rows)

    run = await paper_run(tmp_path, MaCross, {"timeframe": "1m"}, seconds=5, prepare=store_few)
    (line,) = warm_lines(run)
    assert "200 candles from the demo feed's past" in line


async def test_required_warmup_with_no_source_refuses_and_starts_nothing(tmp_path: Path) -> None:
    platform = Platform(settings(tmp_path))
    await platform.start(feeds=False)
    try:
        await drive(platform, 1)  # the exchange knows its markets
        store = RunStore(tmp_path / "runs")
        runs = PaperRuns(platform.gateway, store, history=())
        listening = list(platform.gateway.listeners)  # the platform's own (the portfolio tracker)
        request = _request({"mode": "paper", "balances": ["demo:USDT=1000"], "params": {"timeframe": "1m"}, "warmup": "required"})
        with pytest.raises(CoinwireError) as refused:
            await runs.start("ma_cross", request)
        assert refused.value.code == "warmup_unavailable"
        assert "BTC/USDT 1m: 200 of 200 candles missing" in refused.value.message
        assert store.list() == [] and not runs.running and platform.gateway.listeners == listening
    finally:
        await platform.stop()


async def test_best_effort_with_no_source_starts_and_logs_the_shortfall(tmp_path: Path) -> None:
    run = await paper_run(tmp_path, MaCross, {"timeframe": "1m"}, seconds=5, sources=())
    assert run.started and run.failure is None
    (line,) = warm_lines(run)
    assert line == "warm-up: BTC/USDT 1m: no candles loaded, 200 of 200 candles missing (no source serves this market)"
    assert any(level == "warning" for _, level, message in run.logs if message == line)


class Short(MaCross):
    """ma_cross with an explicit warm-up: it replaces the 200 its slow average would ask for."""

    warmup = 30


async def test_an_explicit_warmup_replaces_the_derived_one_and_is_a_parameter(tmp_path: Path) -> None:
    run = await paper_run(tmp_path, Short, {"timeframe": "1m"}, seconds=2)
    assert warm_lines(run)[0].startswith("warm-up: BTC/USDT 1m 30 candles from the demo feed's past ")
    again = await paper_run(tmp_path / "again", Short, {"timeframe": "1m", "warmup": 45}, seconds=2)
    assert warm_lines(again)[0].startswith("warm-up: BTC/USDT 1m 45 candles from ")


async def test_efficient_frontier_computes_and_trades_in_its_first_minute(tmp_path: Path) -> None:
    from coinwire.strategies.efficient_frontier import EfficientFrontier

    run = await paper_run(tmp_path, EfficientFrontier, {"target": "min_variance"}, seconds=70)
    assert run.failure is None and run.error is None
    lines = warm_lines(run)
    assert len(lines) == 2 and all(" 5m 2016 candles from the demo feed's past " in line for line in lines)
    assert "frontier" in run.components and run.components["frontier"].spec["observations"] == 2015
    sent = [m for m in run.hub.messages if m.method == "venue.make_order"]
    assert sent and all(m.ts <= run.start_ns + 61 * NS for m in sent[:1])


# --- declarations and policy ----------------------------------------------------------------------------------
def test_explicit_warmup_and_windows_are_read_as_candles() -> None:
    assert explicit_bars(None, "1h") is None and explicit_bars("", "1h") is None
    assert explicit_bars(500, "5m") == 500 and explicit_bars("7d", "1h") == 168 and explicit_bars("90m", "1h") == 2
    assert window("1h", None, 7 * 86400) == 168 and window("5m", 200, None) == 200
    for bad in ("week", True, -1, "7x"):
        with pytest.raises(CoinwireError) as refused:
            explicit_bars(bad, "1h")
        assert refused.value.code == "invalid_warmup"
    with pytest.raises(CoinwireError):
        window("1h", 1, 1)


def test_warmup_policy_is_checked_on_the_run_request() -> None:
    assert parse_policy("required") == "required" and StartRequest().warmup == "best_effort"
    with pytest.raises(CoinwireError) as refused:
        _request({"mode": "paper", "warmup": "sometimes"})
    assert refused.value.code == "invalid_warmup" and "best_effort" in refused.value.message


def test_the_demo_past_is_deterministic_and_ends_at_the_start_price() -> None:
    one, two = DemoMarket(symbols=["BTC/USDT"]), DemoMarket(symbols=["BTC/USDT"])
    one.step(T0 * NS)
    two.step(T0 * NS)
    week = one.candles("BTC/USDT", T0 - 7 * 86400, T0)
    hour = two.candles("BTC/USDT", T0 - 3600, T0)
    assert len(week.time) == 7 * 1440 and np.array_equal(week.close[-60:], hour.close)
    assert week.close[-1] == 60_000.0  # the minute before the first tick closes at the start price
    assert bool((week.low <= np.minimum(week.open, week.close)).all() and (week.high >= np.maximum(week.open, week.close)).all())
    other = DemoMarket(symbols=["BTC/USDT"], seed=8)
    other.step(T0 * NS)
    assert not np.array_equal(other.candles("BTC/USDT", T0 - 3600, T0).close, hour.close)


# --- the CLI ------------------------------------------------------------------------------------------------
def test_cli_paper_session_warms_up_and_refuses_a_bad_policy(tmp_path: Path) -> None:
    import json
    import time

    from tests.engine.test_cli_run import coinwire

    bad = coinwire(tmp_path, "run", "ma_cross", "-m", "paper", "--balance", "demo:USDT=100", "--warmup", "sometimes")
    assert bad.returncode == 2 and "invalid_warmup" in bad.stderr
    end = str(int(time.time()) + 4)
    done = coinwire(tmp_path, "run", "ma_cross", "-m", "paper", "--balance", "demo:USDT=100", "--param", "timeframe=1m",
                    "--warmup", "required", "--end", end, "--json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    log = [json.loads(line)["message"] for line in (tmp_path / "runs" / run_id / "log.jsonl").read_text().splitlines()]
    assert any(line.startswith("warm-up: BTC/USDT 1m 200 candles from the demo feed's past ") for line in log), log
