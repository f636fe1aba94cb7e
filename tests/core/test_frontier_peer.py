"""The frontier against PyPortfolioOpt on the 24 hourly Binance pairs: the same weights to 1e-4, no random portfolio above it.

PyPortfolioOpt runs in .venv-peers (`make peers`) as a subprocess, on the closes coinwire
aligned, with the same definitions: simple returns, mean x 8,760, sample (or Ledoit-Wolf)
covariance x 8,760, risk-free rate 0.03.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks.frontier import PEERS_PYTHON, pypfopt
from coinwire.core import frontier as fr
from coinwire.history.frontier_input import load_from_files
from tests.conftest import shared_data

pytestmark = pytest.mark.timeout(600)
TOL = 1e-4


@pytest.fixture(scope="module")
def hourly() -> tuple[list[str], np.ndarray]:
    candles = load_from_files([shared_data("binance-spot-1h")], timeframe="1h")
    assert len(candles) == 24
    assets = [c.symbol for c in candles]
    _, prices = fr.align_closes(assets, [c.time for c in candles], [c.close for c in candles])
    return assets, prices


def peer_available() -> None:
    if not PEERS_PYTHON.exists():
        reason = f"the peers venv is not built ({PEERS_PYTHON} missing): run `make peers`"
        if os.environ.get("COINWIRE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; COINWIRE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(reason)


@pytest.mark.parametrize("covariance", ["sample", "ledoit_wolf"])
def test_max_sharpe_and_min_variance_match_pypfopt(hourly: tuple[list[str], np.ndarray], covariance: str) -> None:
    peer_available()
    assets, prices = hourly
    periods = fr.periods_per_year(3600)
    assert periods == 8760
    frontier = fr.efficient_frontier(fr.estimate(assets, prices, periods, covariance=covariance))
    ms, mv = frontier.max_sharpe(0.03), frontier.min_variance()
    peer = pypfopt(prices, periods, 0.03, covariance=covariance)
    assert np.abs(np.array(peer["max_sharpe"]) - ms.weights).max() < TOL
    assert np.abs(np.array(peer["min_volatility"]) - mv.weights).max() < TOL
    assert (ms.weights > 0.01).sum() >= 2 and (mv.weights > 0.01).sum() >= 2  # not a trivial corner


def test_no_portfolio_of_a_100k_random_cloud_lies_above_the_frontier(hourly: tuple[list[str], np.ndarray]) -> None:
    assets, prices = hourly
    est = fr.estimate(assets, prices, fr.periods_per_year(3600))
    frontier = fr.efficient_frontier(est)
    cloud = fr.random_portfolios(est, np.random.default_rng(2024), 100_000)
    assert cloud.ret.max() <= frontier.max_return + 1e-12
    assert cloud.vol.min() >= frontier.min_variance().vol
    assert (cloud.vol >= frontier.volatility_at(cloud.ret) - 1e-12).all()
    assert cloud.sharpe.max() <= frontier.max_sharpe(0.03).sharpe
