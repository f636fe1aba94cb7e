"""Seeded geometric random-walk candles on a decimal price grid, written as freqtrade JSON.

Every engine compared in benchmarks/backtest_sma.py and tests/engine/test_peer_equivalence.py
must see the same exact inputs, so prices are rounded to a decimal grid (2 decimals by default,
as Binance's BTC/USDT) before they are written: the JSON text `30012.35` parses to the same
double in every process. Each bar opens at the previous close (no gaps), high and low wrap
open and close, volume is positive. The same seed gives byte-identical files.

Run: `python -m benchmarks.random_walk PATH [--bars 100000] [--seed 7]`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

__all__ = ["random_walk", "write_freqtrade_json", "ensure_walk", "TEST_BARS", "BENCH_BARS", "SEED"]

TEST_BARS = 100_000
BENCH_BARS = 500_000
SEED = 7
START_MS = 1_609_459_200_000  # 2021-01-01 00:00 UTC
STEP_MS = 300_000  # 5-minute bars
START_PRICE = 30_000.0
SIGMA = 0.0015  # log-return standard deviation per bar (BTC/USDT 5m is about 0.1-0.3%)


def random_walk(
    bars: int,
    *,
    seed: int = SEED,
    start_price: float = START_PRICE,
    decimals: int = 2,
    sigma: float = SIGMA,
    start_ms: int = START_MS,
    step_ms: int = STEP_MS,
) -> np.ndarray:
    """Return a (bars, 6) float array of [open_time_ms, open, high, low, close, volume].

    Closes follow exp(cumulative Gaussian log returns) with zero drift in expectation and
    are rounded to `decimals`; open[i] = close[i-1] exactly. High and low move away from
    the body by a half-normal fraction of sigma and are rounded outwards, so the bar stays
    valid (low <= min(open, close) <= max(open, close) <= high) on the grid.
    """
    if bars < 1:
        raise ValueError(f"bars must be at least 1, got {bars}")
    rng = np.random.default_rng(seed)
    steps = rng.normal(-0.5 * sigma * sigma, sigma, bars)
    scale = 10.0**decimals
    close = np.round(start_price * np.exp(np.cumsum(steps)), decimals)
    open_ = np.empty(bars)
    open_[0] = round(start_price, decimals)
    open_[1:] = close[:-1]
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = np.ceil(top * (1.0 + np.abs(rng.normal(0.0, 0.5 * sigma, bars))) * scale) / scale
    low = np.floor(bottom * (1.0 - np.abs(rng.normal(0.0, 0.5 * sigma, bars))) * scale) / scale
    # ceil/floor of a product can land a hair inside the body through float rounding: clamp.
    high = np.round(np.maximum(high, top), decimals)
    low = np.round(np.minimum(low, bottom), decimals)
    volume = np.maximum(np.round(rng.lognormal(math.log(50.0), 0.8, bars), 6), 1e-6)
    times = start_ms + step_ms * np.arange(bars, dtype=np.int64)
    return np.column_stack([times.astype(np.float64), open_, high, low, close, volume])


def write_freqtrade_json(candles: np.ndarray, path: Path) -> None:
    """Write candles as freqtrade JSON (`[[ms, o, h, l, c, v], ...]`), timestamps as integers."""
    rows = candles.tolist()
    for row in rows:
        row[0] = int(row[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(rows, separators=(",", ":")))
    tmp.replace(path)


def ensure_walk(directory: Path, bars: int, seed: int = SEED) -> Path:
    """Return the path of the seeded walk under `directory`, writing it first if absent.

    The folder names the bar count and seed; the file keeps a freqtrade name
    (`BTC_USDT-5m.json`), so importers that infer symbol and timeframe from it accept it.
    """
    path = directory / f"walk-{bars}-seed{seed}" / "BTC_USDT-5m.json"
    if not path.exists():
        write_freqtrade_json(random_walk(bars, seed=seed), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--bars", type=int, default=TEST_BARS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    write_freqtrade_json(random_walk(args.bars, seed=args.seed), args.path)
    print(args.path)


if __name__ == "__main__":
    main()
