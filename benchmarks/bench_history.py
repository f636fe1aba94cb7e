"""History and indicator throughput: store load/write of a million candles, file parsing, indicators.

(a) HistoryStore: write a 1,000,000-bar 1m series (validated, atomic), then load it: mapped
    only, and mapped plus every column read (the honest figure; the headline).
(b) Readers: freqtrade JSON (the recorded BTC/USDT 5m file, when ../shared/data is present)
    and a 200,000-line Binance kline CSV, in rows/s.
(c) Indicators on 500,000 closes: batch SMA(50)/SMA(200)/EMA(50)/RSI(14) in ms, and the
    streaming SMA in updates/s.

Run: `python -m benchmarks.bench_history` (prints a dict). Warm page cache throughout.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from coinwire.core.indicators import SMA, ema, rsi, sma
from coinwire.history.candles import Candles
from coinwire.history.formats import read_candles
from coinwire.history.store import HistoryStore

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("COINWIRE_SHARED_DATA", ROOT.parent / "shared" / "data"))
BARS = 1_000_000
T0 = 1_577_836_800  # 2020-01-01


def _best(repeats: int, fn: Callable[[], Any]) -> float:
    gc.collect()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def synthetic(bars: int, seed: int = 1) -> Candles:
    """A seeded geometric random walk of 1m bars (open = previous close)."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.001, bars)))
    open_ = np.r_[30_000.0, close[:-1]]
    wick = np.abs(rng.normal(0, 0.0005, bars)) * close
    high = np.maximum(open_, close) + wick
    low = np.minimum(open_, close) - wick
    return Candles("binance", "BTC/USDT", "1m", T0 + 60 * np.arange(bars), open_, high, low, close, rng.uniform(1, 10, bars))


def run() -> dict[str, Any]:
    result: dict[str, Any] = {"bars": BARS}
    candles = synthetic(BARS)
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(tmp)
        result["write_1m_bars_s"] = round(_best(3, lambda: store.write(candles, merge=False)), 3)
        result["merge_write_1m_bars_s"] = round(_best(3, lambda: store.write(candles.slice(T0 + 60 * 999_000, None))), 3)
        mapped = _best(5, lambda: store.load("binance", "BTC/USDT", "1m"))

        def load_and_read() -> float:
            loaded = store.load("binance", "BTC/USDT", "1m")
            return float(loaded.time.sum() + sum(getattr(loaded, c).sum() for c in ("open", "high", "low", "close", "volume")))

        full = _best(5, load_and_read)
        result["load_mapped_ms"] = round(mapped * 1000, 2)
        result["load_and_read_all_ms"] = round(full * 1000, 1)
        result["load_candles_per_s"] = round(BARS / full)
        result["file_mb"] = round(Path(store.path("binance", "BTC/USDT", "1m")).stat().st_size / 1e6, 1)

        csv = Path(tmp) / "BTCUSDT-1m-2020-01.csv"
        part = candles.slice(None, T0 + 60 * 200_000)
        lines = [
            f"{t * 1000},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.4f},{t * 1000 + 59_999},0,0,0,0,0"
            for t, o, h, lo, c, v in zip(
                part.time.tolist(), part.open.tolist(), part.high.tolist(), part.low.tolist(), part.close.tolist(), part.volume.tolist(),
                strict=True,
            )
        ]
        csv.write_text("\n".join(lines) + "\n")
        result["binance_csv_rows_per_s"] = round(len(part) / _best(3, lambda: read_candles(csv)))
    freqtrade = DATA / "binance-spot-5m" / "BTC_USDT-5m.json"
    if freqtrade.exists():
        rows = len(read_candles(freqtrade, exchange="binance"))
        result["freqtrade_json_rows_per_s"] = round(rows / _best(3, lambda: read_candles(freqtrade, exchange="binance")))

    close = np.ascontiguousarray(candles.close[:500_000])
    for name, fn in (
        ("sma50", lambda: sma(close, 50)),
        ("sma200", lambda: sma(close, 200)),
        ("ema50", lambda: ema(close, 50)),
        ("rsi14", lambda: rsi(close, 14)),
    ):
        result[f"batch_{name}_500k_ms"] = round(_best(3, fn) * 1000, 1)
    values = close.tolist()

    def stream() -> None:
        update = SMA(50).update
        for v in values:
            update(v)

    result["stream_sma_updates_per_s"] = round(len(values) / _best(3, stream))
    return result


if __name__ == "__main__":
    print(run())
