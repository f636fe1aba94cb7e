"""make_order's server CPU per order with the portfolio tracker on and off, in paired rounds of one run.

The same load as benchmarks/bench_rpc.py (8 WebSocket clients, the committed answer awaited
before the next order) against fresh servers of this checkout's `src`, one with
`COINWIRE_PORTFOLIO_TRACKING=true` (the default) and one with `false`, in pairs whose order
alternates (on, off; off, on; ...), so a host that slows down through the run favours neither.
Each pair gives the ratio of the server's CPU per order (from /proc) on/off; the median of the
ratios is the figure, the target being under 1.10 (tracking adds less than 10%, issue 26). Both
servers are checked to import this checkout's `coinwire` (bench_rpc_ab.check_own_tree).
`python -m benchmarks.bench_portfolio_ab [pairs] [seconds]` runs it alone.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.bench_rpc import serve_and_measure
from benchmarks.bench_rpc_ab import check_own_tree, side_env

ROOT = Path(__file__).resolve().parent.parent
PAIRS = 4
SECONDS = 4.0
TARGET = 1.10  # on/off server CPU per order: tracking adds less than 10%


def run(pairs: int = PAIRS, seconds: float = SECONDS) -> dict[str, Any]:
    src = ROOT / "src"
    envs = {side: {**side_env(src), "COINWIRE_PORTFOLIO_TRACKING": flag} for side, flag in (("on", "true"), ("off", "false"))}
    ratios: list[float] = []
    rounds: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for i in range(pairs):
        order = ("on", "off") if i % 2 == 0 else ("off", "on")
        pair = {side: serve_and_measure(seconds, env=envs[side], check=check_own_tree(src)) for side in order}
        for side in order:
            rounds[side].append(pair[side])
        ratios.append(pair["on"]["server_cpu_us_per_order"] / pair["off"]["server_cpu_us_per_order"])
    median = statistics.median(ratios)
    return {
        "tracking_over_off_cpu": round(median, 3),
        "target": TARGET,
        "within_10pct": median < TARGET,
        "paired_ratios": [round(r, 3) for r in ratios],
        "on_server_cpu_us_per_order": [round(r["server_cpu_us_per_order"], 1) for r in rounds["on"]],
        "off_server_cpu_us_per_order": [round(r["server_cpu_us_per_order"], 1) for r in rounds["off"]],
        "on_orders_per_s": [round(r["orders_per_s"]) for r in rounds["on"]],
        "off_orders_per_s": [round(r["orders_per_s"]) for r in rounds["off"]],
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(run(int(args[0]) if args else PAIRS, float(args[1]) if len(args) > 1 else SECONDS))
