"""Book replay throughput on the recorded Binance spot capture: apply-only and parse+apply.

(a) apply-only: every depth diff of both spot files is parsed first, then BookSync applies
    them to an L2Book; the figure is level updates per second (target >= 1,000,000/s).
(b) parse+apply: gzip lines -> messages -> BookSync, in lines/s and level updates/s.
(c) when sortedcontainers is importable, the same diffs applied to a naive SortedDict book
    behind the same BookSync, for a ratio.

Run: `python -m benchmarks.bench_book` (needs ../shared/data; prints a dict).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coinwire.core.book_sync import BookSync
from coinwire.history.binance_capture import BINANCE_BTCUSDT, iter_capture
from coinwire.messages import BookDelta, BookSnapshot

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("COINWIRE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "binance-spot-l2"
REPEATS = 5


def _best_of(repeats: int, run_once: Callable[[], float]) -> float:
    gc.collect()
    return min(run_once() for _ in range(repeats))


def _load_diffs(files: list[Path]) -> tuple[BookSnapshot, list[BookDelta]]:
    snapshot: BookSnapshot | None = None
    deltas: list[BookDelta] = []
    for _, message in iter_capture(files, BINANCE_BTCUSDT):
        if isinstance(message, BookSnapshot):
            snapshot = message
        elif isinstance(message, BookDelta):
            deltas.append(message)
    if snapshot is None:
        raise RuntimeError("the capture has no snapshot")
    return snapshot, [d for d in deltas if d.last_update_id > snapshot.last_update_id]


def _time_apply(snapshot: BookSnapshot, deltas: list[BookDelta], make_sync: Callable[[], BookSync]) -> float:
    sync = make_sync()
    sync.on_snapshot(snapshot)
    on_delta = sync.on_delta
    started = time.perf_counter()
    for delta in deltas:
        on_delta(delta)
    elapsed = time.perf_counter() - started
    if sync.gaps or sync.last_update_id != deltas[-1].last_update_id:
        raise RuntimeError("the benchmark replay lost sync")
    return elapsed


def _naive_factory() -> Callable[[], BookSync] | None:
    """BookSyncs over the textbook book, a SortedDict per side (None without sortedcontainers)."""
    try:
        from sortedcontainers import SortedDict
    except ImportError:
        return None

    def make() -> BookSync:
        bids: Any = SortedDict()
        asks: Any = SortedDict()

        def apply(bid_levels: list[tuple[int, int]], ask_levels: list[tuple[int, int]]) -> None:
            for levels, side in ((bid_levels, bids), (ask_levels, asks)):
                for price, size in levels:
                    if size:
                        side[price] = size
                    else:
                        side.pop(price, None)

        def load(bid_levels: list[tuple[int, int]], ask_levels: list[tuple[int, int]]) -> None:
            bids.clear()
            asks.clear()
            apply(bid_levels, ask_levels)

        return BookSync(apply_levels=apply, load_levels=load)

    return make


def run() -> dict[str, Any]:
    files = sorted(DATA.glob("*.gz"))
    if not files:
        return {"skipped": f"no capture files under {DATA}"}
    snapshot, deltas = _load_diffs(files)
    levels = sum(len(d.bids) + len(d.asks) for d in deltas)
    result: dict[str, Any] = {"diffs": len(deltas), "level_updates": levels}

    apply_s = _best_of(REPEATS, lambda: _time_apply(snapshot, deltas, BookSync))
    result["apply_level_updates_per_s"] = round(levels / apply_s)
    result["apply_target_met"] = levels / apply_s >= 1_000_000

    naive = _naive_factory()
    if naive is not None:
        naive_s = _best_of(REPEATS, lambda: _time_apply(snapshot, deltas, naive))
        result["naive_sorteddict_level_updates_per_s"] = round(levels / naive_s)
        result["speedup_vs_sorteddict"] = round(naive_s / apply_s, 2)

    def parse_and_apply() -> float:
        sync = BookSync()
        started = time.perf_counter()
        for _, message in iter_capture(files, BINANCE_BTCUSDT):
            if type(message) is BookDelta:
                sync.on_delta(message)
            elif type(message) is BookSnapshot:
                sync.on_snapshot(message)
        return time.perf_counter() - started

    lines = sum(1 for _ in iter_capture(files, BINANCE_BTCUSDT))
    total_s = _best_of(3, parse_and_apply)
    result["parse_apply_lines_per_s"] = round(lines / total_s)
    result["parse_apply_level_updates_per_s"] = round(levels / total_s)
    result["parse_apply_seconds"] = round(total_s, 3)
    return result


if __name__ == "__main__":
    print(run())
