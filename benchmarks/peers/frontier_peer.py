"""PyPortfolioOpt on an aligned close matrix: min-volatility, max-Sharpe and efficient_return weights as JSON.

Usage (in .venv-peers, built by `make peers`; coinwire never imports this):

    .venv-peers/bin/python benchmarks/peers/frontier_peer.py --prices PRICES.npy --frequency 8760
        [--risk-free 0.03] [--covariance sample|ledoit_wolf] [--targets TARGETS.npy] [--solver CLARABEL]

PRICES.npy holds closes (rows = time, columns = assets) already aligned by coinwire, so both
sides start from the same numbers. Returns are PyPortfolioOpt's `pct_change` simple returns,
expected returns `mean_historical_return(compounding=False)` (mean x frequency), covariance
`sample_cov` or `CovarianceShrinkage.ledoit_wolf()`: the definitions coinwire.core.frontier uses.
Prints `{version, min_volatility, max_sharpe, seconds_frontier, frontier}`; with --targets, one
`efficient_return` per target on a fresh EfficientFrontier (PyPortfolioOpt's way to draw a
frontier), timed as seconds_frontier. The solver is CLARABEL (interior point): cvxpy's default
for these problems, OSQP, stops at its iteration limit on the upper part of the 24-asset
frontier (`Solver status: user_limit`).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
import pypfopt
from pypfopt import EfficientFrontier, expected_returns, risk_models


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prices", required=True)
    parser.add_argument("--frequency", type=float, required=True)
    parser.add_argument("--risk-free", type=float, default=0.03)
    parser.add_argument("--covariance", default="sample")
    parser.add_argument("--targets")
    parser.add_argument("--solver", default="CLARABEL")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    prices = pd.DataFrame(np.load(args.prices))
    mu = expected_returns.mean_historical_return(prices, compounding=False, frequency=args.frequency)
    if args.covariance == "ledoit_wolf":
        cov = risk_models.CovarianceShrinkage(prices, frequency=args.frequency).ledoit_wolf()
    else:
        cov = risk_models.sample_cov(prices, frequency=args.frequency)
    out: dict[str, object] = {"version": pypfopt.__version__}
    ef = EfficientFrontier(mu, cov, solver=args.solver)
    out["min_volatility"] = list(ef.min_volatility().values())
    ef = EfficientFrontier(mu, cov, solver=args.solver)
    out["max_sharpe"] = list(ef.max_sharpe(risk_free_rate=args.risk_free).values())
    if args.targets:
        targets = np.load(args.targets)
        start = time.perf_counter()
        frontier = []
        for target in targets:
            ef = EfficientFrontier(mu, cov, solver=args.solver)
            frontier.append(list(ef.efficient_return(float(target)).values()))
        out["seconds_frontier"] = time.perf_counter() - start
        out["frontier"] = frontier
    print(json.dumps(out))


if __name__ == "__main__":
    main()
