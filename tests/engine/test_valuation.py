"""engine.valuation: every instant valued at once in integers equals the exact Decimal valuation, rounded half-even."""

from __future__ import annotations

import numpy as np
import pytest

from coinwire.core.portfolio import VALUE_DECIMALS, quantize_value
from coinwire.engine.backtest import BacktestConfig
from coinwire.engine.runs import run_backtest
from coinwire.engine.valuation import quantized_values_at, value_at
from coinwire.strategies.registry import load_strategy
from tests.engine.test_backtest import walk


@pytest.mark.parametrize("usdt", [
    "10000",
    "10000.000000005",  # an exact half unit before the first fill: half-even goes down
    "10000.000000015",  # and up
    "10000.000000005000000001",  # a hair above a half unit: a float cannot tell it from the tie
    "10000.000000004999999999",  # a hair below
    "300000000",  # too large for a float to place its half units: all valued in integers
])
def test_integer_values_equal_the_decimal_valuation_at_every_instant(usdt: str) -> None:
    s = walk(3_000, seed=11)
    config = BacktestConfig(exchange="binance", balances={"USDT": usdt}, fee="0.001")
    outcome, rt = run_backtest(load_strategy("ma_cross"), {"fast": "10", "slow": "40", "timeframe": "1h"}, [s], config)
    assert outcome.report is not None and len(rt.fills) > 20
    t = np.unique(np.r_[s.close_ns, [ts for ts, _ in rt.balance_points]])
    t = t[t >= rt.start_ns]
    got = quantized_values_at(rt, t, VALUE_DECIMALS)
    assert got is not None
    assert got.tolist() == [quantize_value(value_at(rt, ts)) for ts in t.tolist()]
