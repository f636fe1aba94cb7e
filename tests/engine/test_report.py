"""The report's chart series: a bounded equity curve that keeps every drawdown honest, exact values, rolled-up prices."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.report import MAX_EQUITY_POINTS, MAX_PRICE_BARS, _cagr, build_report, keep_extremes
from coinwire.engine.runs import run_backtest
from coinwire.strategies.registry import load_strategy
from tests.engine.test_backtest import walk


def max_drawdown(values: np.ndarray) -> float:
    return float(np.max(1.0 - values / np.maximum.accumulate(values)))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), limit=st.integers(6, 400), seed=st.integers(0, 2**32 - 1))
def test_kept_points_are_bounded_and_keep_extremes_and_the_deepest_drawdown(n: int, limit: int, seed: int) -> None:
    values = 1000 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))
    keep = keep_extremes(values, limit)
    assert len(keep) <= limit and keep[0] == 0 and keep[-1] == n - 1
    assert np.all(np.diff(keep) > 0)  # in time order, no repeats
    kept = values[keep]
    assert kept.min() == values.min() and kept.max() == values.max()
    assert max_drawdown(kept) == max_drawdown(values)  # derived from the kept points alone


def test_short_curves_are_kept_whole() -> None:
    assert keep_extremes(np.array([3.0, 1.0, 2.0]), 2000).tolist() == [0, 1, 2]


def test_a_long_backtest_reports_a_bounded_exact_equity_curve_and_price_bars() -> None:
    s = walk(20_000, seed=5)  # 1h candles: 833 days
    config = BacktestConfig(exchange="binance", balances={"USDT": "10000"}, fee="0.001")
    outcome, rt = run_backtest(load_strategy("ma_cross"), {"fast": "10", "slow": "40", "timeframe": "1h"}, [s], config)
    rep = outcome.report
    assert rep is not None
    equity = rep["equity"]
    assert rep["equity_sampled_from"] == 20_001 and 100 < len(equity) <= MAX_EQUITY_POINTS
    assert equity[0] == [rep["start"], "10000"]
    assert all("e" not in v.lower() and Decimal(v) > 0 for _, v in equity)  # plain decimal strings
    assert Decimal(equity[-1][1]) == Decimal(rep["final_equity_exact"])
    times = [t for t, _ in equity]
    assert times == sorted(set(times)) and times[-1] == rep["end"]
    values = np.array([float(v) for _, v in equity])
    assert max_drawdown(values) == pytest.approx(rep["max_drawdown"], rel=1e-12)
    # a kept point is the exact valuation then: the quote plus the base at that candle's close
    for t, v in equity[1::50]:
        i = int(np.searchsorted(s.close_ns, t * 10**9))
        held = [totals for ts, totals in rt.balance_points if ts <= t * 10**9][-1]
        usdt, btc = (Decimal(held.get(c, 0)).scaleb(-18) for c in ("USDT", "BTC"))
        assert s.close_ns[i] == t * 10**9 and Decimal(v) == usdt + btc * Decimal(repr(float(s.close[i])))

    bars = rep["prices"]["BTC/USDT"]
    assert bars["timeframe"] == "1d" and len(bars["candles"]) <= MAX_PRICE_BARS
    first = bars["candles"][0]
    day = s.time_ns < (first[0] + 86400) * 10**9
    assert first[1] == s.open[0] and first[2] == s.high[day].max() and first[3] == s.low[day].min() and first[4] == s.close[day][-1]
    assert bars["candles"][0][0] <= rep["trades"][0]["time"] and rep["trades"][-1]["time"] < bars["candles"][-1][0] + 86400
    assert build_report(rt, {})["equity"] == equity  # pure


def test_a_run_funded_with_the_base_counts_its_round_trips_from_that_holding() -> None:
    """ma_cross sells the 0.1 BTC it was given with its first exit, then trades in and out: every exit closes a trip."""
    s = walk(5_000, seed=5)
    config = BacktestConfig(exchange="binance", balances={"USDT": "10000", "BTC": "0.1"}, fee="0.001")
    unfunded, _ = run_backtest(load_strategy("ma_cross"), {"fast": "10", "slow": "40", "timeframe": "1h"}, [s],
                               BacktestConfig(exchange="binance", balances={"USDT": "10000"}, fee="0.001"))
    outcome, rt = run_backtest(load_strategy("ma_cross"), {"fast": "10", "slow": "40", "timeframe": "1h"}, [s], config)
    rep, base = outcome.report, unfunded.report
    assert rep is not None and base is not None
    sells = sum(1 for f in rt.fills if f.side.value == "sell")
    assert base["round_trips"] > 0 and rep["round_trips"] >= sells - 1 > 0  # without the seed: 0 (never flat by fills alone)
    assert rep["win_rate"] is not None


def test_a_yearly_rate_that_no_float_holds_is_left_out() -> None:
    """Half a percent over a second compounds past any float: the report says nothing rather than failing."""
    assert _cagr(1000.0, 1005.0, 1 / (365.25 * 86400)) is None
    assert _cagr(1000.0, 1100.0, 1.0) == pytest.approx(0.1)
    assert _cagr(1000.0, 0.0, 1.0) is None and _cagr(0.0, 5.0, 1.0) is None and _cagr(1000.0, 1005.0, 0.0) is None
