"""The matching core and the SMA backtest, this checkout against an earlier commit, in paired rounds of one run.

Like benchmarks/bench_rpc_ab.py for make_order: this host's speed moves by ±40% within an
hour, so a change is read against the code before it only in rounds interleaved in one run.
Each side runs its own commit's benchmark code (`src` and `benchmarks` written out by `git
archive`), so a harness that changed with the code measures each side the way that side
expects: benchmarks/bench_matching.py (300,000 mixed events against a 100-level book, the
best of 3) and backtest_sma.py's `--coinwire-once` (the SMA 50/200 backtest on the seeded
500,000-bar walk, the first call in a fresh process, candles loaded). Pairs alternate which
side goes first (A B B A ...); each pair gives a ratio current/base of speed (events/s, and
1/seconds for the backtest); the median of the ratios is the figure and at least 0.90 is
within 10%. Both sides' modules are compiled before the first round (`compile_side`), as for
make_order: where PYTHONDONTWRITEBYTECODE is set, a freshly written-out base would otherwise
compile every module in every process while the checkout imports cached bytecode.

`COINWIRE_BENCH_BASE` names the base (default: bench_rpc_ab's). `python -m
benchmarks.bench_core_ab [pairs]` runs it alone.
"""

from __future__ import annotations

import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_rpc_ab import (
    BASE_ENV,
    DEFAULT_BASE,
    ROOT,
    SIDES,
    TOLERANCE,
    BaseUnavailable,
    _current_label,
    compile_side,
    materialise,
    pair_order,
)
from benchmarks.random_walk import BENCH_BARS, ensure_walk

PAIRS = 5  # ~10 s a matching round, ~2 s a backtest round: about 2 minutes in all
DATA_DIR = ROOT / "benchmarks" / ".data"


def _side_run(tree: Path, args: list[str]) -> str:
    """Run `python -m <args>` on one side's own `src` and `benchmarks`, in that side's folder."""
    env = {**os.environ, "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}", "PYTHONSAFEPATH": "1"}
    done = subprocess.run([sys.executable, "-m", *args], cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {tree}: {done.stderr[-2000:]}")
    return done.stdout


def matching_events_per_s(tree: Path) -> float:
    figures = ast.literal_eval(_side_run(tree, ["benchmarks.bench_matching"]).strip().splitlines()[-1])
    return float(figures["events_per_s"])


def sma_seconds(tree: Path, walk: Path) -> float:
    seconds, _ = json.loads(_side_run(tree, ["benchmarks.backtest_sma", "--coinwire-once", str(walk)]).strip().splitlines()[-1])
    return float(seconds)


def _ratios(rounds: list[dict[str, float]], higher_is_faster: bool) -> list[float]:
    return [r["current"] / r["base"] if higher_is_faster else r["base"] / r["current"] for r in rounds]


def _summary(name: str, rounds: list[dict[str, float]], unit: str, higher_is_faster: bool) -> dict[str, Any]:
    ratios = _ratios(rounds, higher_is_faster)
    ratio = statistics.median(ratios)
    out: dict[str, Any] = {f"{name}_{side}_{unit}": round(statistics.median(r[side] for r in rounds), 4) for side in SIDES}
    out[f"{name}_current_over_base_pct"] = round(ratio * 100, 1)
    out[f"{name}_paired_ratios"] = [round(x, 3) for x in ratios]
    out[f"{name}_within_10pct"] = ratio >= 1 - TOLERANCE
    return out


def run(pairs: int = PAIRS, base: str | None = None, root: Path = ROOT) -> dict[str, Any]:
    """`pairs` alternating pairs of each benchmark on both sides; skipped when the base cannot be written out."""
    ref = base or os.environ.get(BASE_ENV) or DEFAULT_BASE
    walk = ensure_walk(DATA_DIR, BENCH_BARS)
    with tempfile.TemporaryDirectory(prefix="coinwire-base-") as tmp:
        try:
            commit = materialise(root, ref, Path(tmp), folders=("src", "benchmarks"))
            current = _current_label(root)
        except BaseUnavailable as e:
            return {"base": ref, "skipped": f"base not available: {e}"}
        trees = {"base": Path(tmp), "current": root}
        for tree in trees.values():  # both sides import compiled modules (PYTHONDONTWRITEBYTECODE would leave one without)
            compile_side(tree / "src")
        started = time.perf_counter()
        matching: list[dict[str, float]] = []
        sma: list[dict[str, float]] = []
        for order in pair_order(pairs):
            matching.append({side: matching_events_per_s(trees[side]) for side in order})
            sma.append({side: sma_seconds(trees[side], walk) for side in order})
        result: dict[str, Any] = {"base": f"{ref} ({commit[:10]})", "current": current, "pairs": pairs,
                                  "order": "; ".join(",".join(p) for p in pair_order(pairs))}
        result.update(_summary("matching", matching, "events_per_s", higher_is_faster=True))
        result.update(_summary("sma_backtest", sma, "seconds", higher_is_faster=False))
        result["worst_current_over_base_pct"] = min(result["matching_current_over_base_pct"],
                                                    result["sma_backtest_current_over_base_pct"])
        result["rounds_s"] = round(time.perf_counter() - started, 1)
    return result


if __name__ == "__main__":
    print(run(pairs=int(sys.argv[1]) if sys.argv[1:] else PAIRS))
