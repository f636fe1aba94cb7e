"""SMA(50/200) crossover on 500,000 bars: coinwire vs backtesting.py, backtrader, vectorbt, nautilus_trader.

Issue 3's targets, measured in ONE run on the same seeded random walk (benchmarks/random_walk.py,
5-minute bars on a 0.01 grid, open == previous close):
- coinwire at least 10x faster than backtesting.py and within 5x of vectorbt's warm time;
- the whole `coinwire run ma_cross ... --json` process (start to exit) faster than a whole
  `python -c` vectorbt process doing the same (load the file, MAs, crosses, portfolio, print).

Every engine runs the same semantics as benchmarks/peers/reference.py (all-in long-only, 0.1%
fee, market orders at the next bar's open; nautilus_trader fills at the signal bar's close,
which on this walk is the same price), and each result is checked against the reference:
entries equal and final equity within 1e-6 relative (`*_equity_rel_diff`). Peers run in
.venv-peers (`make peers`) through benchmarks/peers/run_peer.py; their times are their own
compute from arrays already in memory (`seconds_compute`, the first call in a fresh process,
imports done), so file parsing is not counted for anyone but the whole-process figures.
coinwire's is the same first call, the median of three fresh processes. vectorbt's cold
time includes numba's JIT compile with an empty cache; its warm time is a second call in
the same process.

Run: `python -m benchmarks.backtest_sma` (prints a table; `run()` returns the figures for
benchmarks/run.py). Takes 3-4 minutes, most of it backtrader, vectorbt's JIT and nautilus_trader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.peers.reference import backtest, load_freqtrade_json
from benchmarks.random_walk import BENCH_BARS, ensure_walk

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "benchmarks" / ".data"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
RUN_PEER = ROOT / "benchmarks" / "peers" / "run_peer.py"
FAST, SLOW, FEE, CASH = 50, 200, 0.001, 10_000.0
PEER_FILLS = {"backtesting": "open", "backtrader": "open", "vectorbt": "open", "nautilus": "close"}
TIMEOUT_S = 1800
_NOT_BUILT = 3  # exit status of `--coinwire-once` when the engine cannot be imported

# A whole vectorbt process doing what `coinwire run ma_cross ... --json` does: read the
# candle file, SMAs, crosses, a portfolio filled at the next open, print one JSON line.
VECTORBT_PROCESS = """
import json, sys
import numpy as np, pandas as pd, vectorbt as vbt
rows = np.asarray(json.load(open(sys.argv[1])), dtype=float)
index = pd.to_datetime(rows[:, 0].astype('int64'), unit='ms')
close, open_ = pd.Series(rows[:, 4], index=index), pd.Series(rows[:, 1], index=index)
fast, slow = vbt.MA.run(close, 50), vbt.MA.run(close, 200)
entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, size=np.inf, fees=0.001, init_cash=10000.0, freq='5min')
print(json.dumps({'entries': int((pf.orders.values['side'] == 0).sum()), 'final_equity': float(pf.final_value())}))
"""


def coinwire_in_process(path: Path, fill: str = "open") -> tuple[float, dict[str, Any]] | None:
    """The engine in process: `coinwire.engine.runs.run_backtest`, the function `coinwire run` calls.

    Returns (seconds of the backtest itself, candles already loaded; its report), or None when
    the engine cannot be imported. The time includes building the report. The strategy's
    module is imported first, as every peer's is (their `seconds_import` is not counted):
    looking a built-in strategy up by name imports all of them, ~20 ms of module loading.
    """
    try:
        from coinwire.engine.backtest import BacktestConfig
        from coinwire.engine.runs import run_backtest
        from coinwire.history import load_data_arg
        from coinwire.strategies.registry import load_strategy
    except ImportError:
        return None
    load_strategy("ma_cross")
    candles = load_data_arg(path, exchange="binance")
    config = BacktestConfig(exchange="binance", balances={"USDT": str(int(CASH))}, fee=str(FEE), fill=fill)
    params = {"fast": FAST, "slow": SLOW}
    started = time.perf_counter()
    outcome, _ = run_backtest(load_strategy("ma_cross"), params, candles, config)
    seconds = time.perf_counter() - started
    return seconds, dict(outcome.report)


def coinwire_first_calls(path: Path, runs: int = 3) -> tuple[float, dict[str, Any]] | None:
    """The median of `runs` first calls of `coinwire_in_process`, each in a fresh process.

    Every peer is timed once, on its first call in a fresh process; coinwire is timed the
    same way, three times over, because its ~0.2 s is short enough for one busy moment of a
    shared machine to move the ratio by a tenth. Returns None when the engine is not built.
    """
    results = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-m", "benchmarks.backtest_sma", "--coinwire-once", str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
        if done.returncode == _NOT_BUILT:
            return None
        if done.returncode != 0:
            raise RuntimeError(f"coinwire backtest failed: {done.stderr[-2000:]}")
        seconds, report = json.loads(done.stdout)
        results.append((seconds, report))
    results.sort(key=lambda r: r[0])
    return results[len(results) // 2]


def coinwire_cli(path: Path, data_dir: Path, fill: str = "open") -> tuple[float, dict[str, Any]] | None:
    """Wall time of the whole `coinwire run ... --json` process and its report; None if not built."""
    script = Path(sys.executable).with_name("coinwire")
    if not script.exists():
        return None
    cmd = [str(script), "run", "ma_cross", "-m", "backtest", "--data", str(path), "--balance", "binance:USDT=10000",
           "--param", f"fast={FAST}", "--param", f"slow={SLOW}", "--fee", str(FEE), "--fill", fill, "--json"]
    env = {**os.environ, "COINWIRE_DATA_DIR": str(data_dir)}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return None
    return seconds, json.loads(done.stdout)


def run_peer(peer: str, path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [str(PEERS_PYTHON), str(RUN_PEER), peer, "--data", str(path), "--fast", str(FAST), "--slow", str(SLOW),
           "--fee", str(FEE), "--fill", PEER_FILLS[peer], "--cash", str(CASH), "--json"]
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{peer} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def whole_vectorbt_process(path: Path, numba_cache: Path) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache), "PYTHONWARNINGS": "ignore"}
    started = time.perf_counter()
    done = subprocess.run([str(PEERS_PYTHON), "-c", VECTORBT_PROCESS, str(path)], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"vectorbt process failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def run() -> dict[str, Any]:
    path = ensure_walk(DATA_DIR, BENCH_BARS)
    candles = load_freqtrade_json(path)
    ref = backtest(candles, fast=FAST, slow=SLOW, fee=FEE, fill="open", cash=CASH)
    ref_seconds = min(_timed(lambda: backtest(candles, fast=FAST, slow=SLOW, fee=FEE, fill="open", cash=CASH))
                      for _ in range(5))
    out: dict[str, Any] = {"bars": len(candles.close), "entries": ref["entries"], "final_equity": round(ref["final_equity"], 6),
                           "numpy_reference_s": ref_seconds}
    with tempfile.TemporaryDirectory() as tmp:
        cli = coinwire_cli(path, Path(tmp) / "cw")
        inproc = coinwire_first_calls(path)
        if cli is None and inproc is None:
            out["skipped"] = "coinwire engine not built"
        if cli is None:
            out["coinwire"] = "not built"
        else:
            out["coinwire_process_s"] = cli[0]
            out["coinwire_entries"] = cli[1]["entries"]
            out["coinwire_equity_rel_diff"] = _rel(float(cli[1]["final_equity"]), ref["final_equity"])
        if inproc is not None:
            out["coinwire_s"] = inproc[0]
            out["coinwire_in_process_entries"] = inproc[1]["entries"]
        if not PEERS_PYTHON.exists():
            out["peers"] = "not built: run `make peers`"
        else:
            for peer in PEER_FILLS:
                env = {"NUMBA_CACHE_DIR": str(Path(tmp) / "numba-cold")} if peer == "vectorbt" else None
                result = run_peer(peer, path, env)
                key = {"vectorbt": "vectorbt_warm"}.get(peer, peer)
                out[f"{key}_s"] = result["seconds_compute"]
                if peer == "vectorbt":
                    out["vectorbt_cold_s"] = result["seconds_compute_cold"]
                out[f"{peer}_entries"] = result["entries"]
                out[f"{peer}_equity_rel_diff"] = _rel(result["final_equity"], ref["final_equity"])
            cold, cold_result = whole_vectorbt_process(path, Path(tmp) / "numba-process")
            warm, _ = whole_vectorbt_process(path, Path(tmp) / "numba-process")  # its numba cache is now warm
            out["vectorbt_process_cold_cache_s"] = cold
            out["vectorbt_process_s"] = warm
            out["vectorbt_process_entries"] = cold_result["entries"]
    _ratios(out)
    return {k: round(v, 4) if isinstance(v, float) and not k.endswith("rel_diff") else v for k, v in out.items()}


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _ratios(out: dict[str, Any]) -> None:
    """Speed-ups against coinwire: its in-process time, or its whole process when that is all there is."""
    base = out.get("coinwire_s", out.get("coinwire_process_s"))
    if base is None:
        return
    for key in ("backtesting", "backtrader", "vectorbt_warm", "vectorbt_cold", "nautilus", "numpy_reference"):
        if f"{key}_s" in out:
            out[f"{key}_over_coinwire"] = out[f"{key}_s"] / base
    if "backtesting_s" in out:
        out["coinwire_speedup_vs_backtesting"] = out["backtesting_s"] / base
    if "vectorbt_warm_s" in out:
        out["coinwire_over_vectorbt_warm"] = base / out["vectorbt_warm_s"]  # target <= 5
    if "vectorbt_process_s" in out and "coinwire_process_s" in out:
        out["vectorbt_process_over_coinwire_process"] = out["vectorbt_process_s"] / out["coinwire_process_s"]  # > 1


ROWS = [  # (label, seconds key, entries key)
    ("coinwire (in process, median of 3 first calls)", "coinwire_s", "coinwire_in_process_entries"),
    ("coinwire run --json (whole process)", "coinwire_process_s", "coinwire_entries"),
    ("backtesting.py 0.6.6", "backtesting_s", "backtesting_entries"),
    ("backtrader 1.9.78.123", "backtrader_s", "backtrader_entries"),
    ("vectorbt 1.0.0 warm", "vectorbt_warm_s", "vectorbt_entries"),
    ("vectorbt 1.0.0 cold (JIT)", "vectorbt_cold_s", "vectorbt_entries"),
    ("vectorbt whole process (warm numba cache)", "vectorbt_process_s", "vectorbt_process_entries"),
    ("vectorbt whole process (empty numba cache)", "vectorbt_process_cold_cache_s", "vectorbt_process_entries"),
    ("nautilus_trader 1.221.0", "nautilus_s", "nautilus_entries"),
    ("NumPy reference", "numpy_reference_s", "entries"),
]


def table(out: dict[str, Any]) -> str:
    """The figures as a text table: seconds, ratio to coinwire, entries."""
    base = out.get("coinwire_s", out.get("coinwire_process_s"))
    lines = [f"SMA {FAST}/{SLOW} cross, {out['bars']:,} bars, reference entries {out['entries']}",
             f"{'engine':48} {'seconds':>9} {'x coinwire':>11} {'entries':>8}"]
    for label, key, entries in ROWS:
        if key not in out:
            lines.append(f"{label:48} {'not built' if key.startswith('coinwire') else 'n/a':>9}")
            continue
        ratio = f"{out[key] / base:.2f}" if base else "-"
        lines.append(f"{label:48} {out[key]:9.3f} {ratio:>11} {out.get(entries, '-'):>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--coinwire-once"]:  # one first call, for coinwire_first_calls
        once = coinwire_in_process(Path(sys.argv[2]))
        if once is None:
            sys.exit(_NOT_BUILT)
        print(json.dumps([once[0], {"entries": once[1]["entries"]}]))
        sys.exit(0)
    figures = run()
    print(table(figures))
    print(json.dumps(figures, indent=1))
