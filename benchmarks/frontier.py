"""Efficient frontier: coinwire's exact 100-point frontier for 24 assets beside PyPortfolioOpt, and a million random portfolios.

Both sides start from the same aligned closes of the 24 hourly Binance pairs (../shared/data,
or a seeded 24-asset walk when the data is absent) with the same definitions: simple returns,
mean x 8,760 and sample covariance x 8,760. coinwire computes the critical-line frontier and
the 100 portfolios at evenly spaced returns from the minimum-variance return to the maximum;
PyPortfolioOpt (in .venv-peers, a subprocess of the same run) solves `efficient_return` for
the same 100 targets, each on a fresh EfficientFrontier, and reports its own solve time.
Headline: `pypfopt_over_coinwire` (> 1: coinwire is faster), with the largest weight
difference between the two frontiers as the check that they computed the same thing.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from coinwire.core import frontier as fr

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "binance-spot-1h"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEER_SCRIPT = ROOT / "benchmarks" / "peers" / "frontier_peer.py"
POINTS = 100
CLOUD = 1_000_000


def hourly_closes() -> tuple[list[str], np.ndarray, str]:
    """The 24 hourly pairs aligned on shared times (or a seeded stand-in), and where they came from."""
    if DATA.is_dir():
        from coinwire.history.frontier_input import load_from_files

        candles = load_from_files([DATA], timeframe="1h")
        assets = [c.symbol for c in candles]
        _, prices = fr.align_closes(assets, [c.time for c in candles], [c.close for c in candles])
        return assets, prices, str(DATA)
    rng = np.random.default_rng(24)
    r = rng.normal(0, 0.01, (5000, 1)) * rng.uniform(0.3, 1.5, 24) + rng.normal(1e-4, 0.01, (5000, 24))
    return [f"A{i}/USDT" for i in range(24)], 100 * np.cumprod(1 + r, axis=0), "seeded walk (shared data absent)"


def pypfopt(prices: np.ndarray, frequency: float, risk_free: float = fr.DEFAULT_RISK_FREE,
            targets: np.ndarray | None = None, covariance: str = "sample", timeout: float = 900) -> dict[str, Any]:
    """PyPortfolioOpt's answer for these closes (benchmarks/peers/frontier_peer.py in .venv-peers)."""
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "prices.npy", prices)
        cmd = [str(PEERS_PYTHON), str(PEER_SCRIPT), "--prices", str(Path(tmp) / "prices.npy"), "--frequency",
               repr(frequency), "--risk-free", repr(risk_free), "--covariance", covariance]
        if targets is not None:
            np.save(Path(tmp) / "targets.npy", targets)
            cmd += ["--targets", str(Path(tmp) / "targets.npy")]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"PyPortfolioOpt failed: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result


def _best(repeats: int, fn: Any) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run() -> dict[str, Any]:
    assets, prices, source = hourly_closes()
    periods = fr.periods_per_year(3600)
    result: dict[str, Any] = {"assets": len(assets), "observations": len(prices) - 1, "points": POINTS, "data": source}

    def whole_frontier() -> list[fr.Portfolio]:
        est = fr.estimate(assets, prices, periods)
        frontier = fr.efficient_frontier(est)
        return frontier.points(POINTS) + [frontier.max_sharpe(), frontier.min_variance()]

    est = fr.estimate(assets, prices, periods)
    frontier = fr.efficient_frontier(est)
    result["turning_points"] = len(frontier.rets)
    seconds, points = _best(20, whole_frontier)
    solve_only, _ = _best(20, lambda: fr.efficient_frontier(est).points(POINTS))
    result["coinwire_frontier_ms"] = round(seconds * 1000, 2)  # estimates + frontier + 100 points + max-Sharpe + min-var
    result["coinwire_solve_ms"] = round(solve_only * 1000, 2)  # frontier + 100 points from the estimates
    cloud_s, cloud = _best(3, lambda: fr.random_portfolios(est, np.random.default_rng(1), CLOUD))
    result["random_1m_portfolios_s"] = round(cloud_s, 3)
    result["random_above_frontier"] = int(np.sum(cloud.vol < frontier.volatility_at(cloud.ret) - 1e-12))
    weights = np.array([p.weights for p in points[:POINTS]])
    targets = np.array([p.ret for p in points[:POINTS]])
    targets[-1] *= 1 - 1e-9  # PyPortfolioOpt refuses a target equal to the highest expected return
    if PEERS_PYTHON.exists():
        peer = pypfopt(prices, periods, targets=targets)
        result["pypfopt_version"] = peer["version"]
        result["pypfopt_frontier_s"] = round(peer["seconds_frontier"], 3)
        result["pypfopt_over_coinwire"] = round(peer["seconds_frontier"] / solve_only, 1)
        result["max_weight_diff_frontier"] = float(f"{np.abs(np.array(peer['frontier']) - weights).max():.2e}")
        result["max_weight_diff_max_sharpe"] = float(f"{np.abs(np.array(peer['max_sharpe']) - points[-2].weights).max():.2e}")
        result["max_weight_diff_min_variance"] = float(f"{np.abs(np.array(peer['min_volatility']) - points[-1].weights).max():.2e}")
    else:
        result["pypfopt_over_coinwire"] = None
        result["pypfopt_missing"] = f"{PEERS_PYTHON} not found: run `make peers`"
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
