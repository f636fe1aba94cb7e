"""Memory and restart bounded by what is open: a gateway's resident memory after 10,000 and 1,000,000 orders, and its restart.

Each phase runs in its own child process (so each resident-memory reading is that process's
alone), driving a Gateway in-process, not over HTTP: a SQLite store in a temporary directory
(committing on the event loop, `store_journal = false`), the in-process bus, the demo feed
ticking so market orders find a book. Orders go in concurrent batches of 64 (the group commit
shares their transactions): market orders that fill at once, buys and sells in turn, and every
50th a limit far from the market that rests until it is cancelled two batches later (about 60
resting at any time). Resident memory is VmRSS from /proc/self/status after a full collection.

Phases: `fill` places the orders, reads memory after 10,000 and after all, then SIGKILLs
itself (a crash: no final checkpoint, so the restart folds what the last checkpoint did not);
`restart` times `Store.start` + `Gateway.start` on that store (`restart_after_kill_s`, the
figure: target under 5 s at 1,000,000 orders), then until the exchange is ready, reads memory,
and closes cleanly; a second `restart` times a start after that clean close
(`restart_after_close_s`). The same phases run on the code before this work (`COINWIRE_BENCH_MEMORY_BASE`, default
0b96280, written out with `git archive`) at `BASE_ORDERS` when the checkout has it, to show the change side by side.

`python -m benchmarks.bench_memory [orders] [base_orders]` runs it alone (defaults 1,000,000 and 200,000).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ORDERS = 1_000_000
EARLY = 10_000
BASE_ORDERS = 200_000
BASE_REF = os.environ.get("COINWIRE_BENCH_MEMORY_BASE", "0b96280")  # the commit before the venue contract work
BATCH = 64
EXCHANGE = {"name": "demo", "feed": "demo", "tick_interval": 0.05, "seed": 7,
            "paper_funds": {"USDT": "1000000000000", "BTC": "1000000000"}}


def _venue(gateway: Any, name: str) -> Any:
    """The gateway's venue `name` (`gateway.exchanges` in the code before the venue contract)."""
    venues = getattr(gateway, "venues", None)
    return (venues if venues is not None else gateway.exchanges)[name]


def _field(view: Any, name: str) -> Any:
    """A field of an order view: a struct now, a dict in the code before the typed events."""
    return view[name] if isinstance(view, dict) else getattr(view, name)


def vm_rss_mb() -> float:
    """This process's resident memory (VmRSS) after a full collection, in MB."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _gateway(data_dir: str) -> tuple[Any, Any, Any, Any, asyncio.Task[None], float]:
    """Store, bus, gateway and feed on `data_dir`'s database; returns them and the seconds `Store.start` + `Gateway.start` took."""
    from coinwire.app import build_feed
    from coinwire.bus import bus_from_url
    from coinwire.config import load_settings
    from coinwire.services.gateway import Gateway
    from coinwire.store import Store

    settings = load_settings(env={}, overrides={"data_dir": data_dir, "store_journal": False, "exchanges": [EXCHANGE]})
    started = time.perf_counter()
    store = Store(settings.resolved_store_url)
    await store.start()
    # this file also drives the base commit's src (COINWIRE_BENCH_MEMORY_BASE), whose setting was `bus_namespace`
    namespace = settings.namespace if hasattr(settings, "namespace") else settings.bus_namespace
    bus = bus_from_url(settings.bus_url, namespace, settings.bus_max_log)
    await bus.start()
    gateway = Gateway(settings, store, bus)
    await gateway.start()
    start_s = time.perf_counter() - started
    feed = build_feed(settings.exchanges[0])
    gateway.snapshot_sources["demo"] = feed
    feeding = asyncio.create_task(feed.run(bus.publish))
    while _venue(gateway, "demo").status != "ready":
        await asyncio.sleep(0.02)
    return store, bus, gateway, feed, feeding, start_s


async def _close(store: Any, bus: Any, gateway: Any, feed: Any, feeding: asyncio.Task[None]) -> None:
    await feed.close()
    feeding.cancel()
    await asyncio.gather(feeding, return_exceptions=True)
    await gateway.close()
    await bus.close()
    await store.close()


async def fill(data_dir: str, total: int) -> dict[str, Any]:
    from coinwire.core.orders import OrderType, Side

    try:
        from coinwire.core.orders import OrderRequest  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # the code before the venue contract
        from coinwire.services.gateway import OrderRequest  # type: ignore[attr-defined,no-redef,unused-ignore]

    *_, gateway, _feed, _feeding, _ = await _gateway(data_dir)
    market = _venue(gateway, "demo").markets["BTC/USDT"]
    inst = market.instrument
    size = inst.parse_size("0.001", "size")
    result: dict[str, Any] = {"rss_start_mb": round(vm_rss_mb(), 1)}
    placed = refused = 0
    resting: list[list[int]] = []
    started = time.perf_counter()
    early_done = False
    while placed < total:
        bid = market.engine.book.best_bid() or 1
        requests = []
        for j in range(BATCH):
            n = placed + refused + j
            far = n % 50 == 0
            requests.append(OrderRequest(
                exchange="demo", instrument=inst, side=Side.BUY if far or n % 2 else Side.SELL,
                type=OrderType.LIMIT if far else OrderType.MARKET, size=size, limit=bid // 2 if far else 0, cancel_after=0,
                client_oid=f"o{n}", wallet_set_id=None, run_id=None, owner_id=None))
        answers = await asyncio.gather(*(gateway.make_order(r) for r in requests), return_exceptions=True)
        ok = [a for a in answers if not isinstance(a, BaseException)]
        placed += len(ok)
        refused += len(answers) - len(ok)
        resting.append([_field(a, "id") for a in ok if _field(a, "status") != "done"])
        if len(resting) > 2:
            await asyncio.gather(*(gateway.cancel_order(order_id=order_id, client_oid=None, exchange=None)
                                   for order_id in resting.pop(0)))
        if not early_done and placed >= EARLY:
            early_done = True
            result["rss_at_10k_mb"] = round(vm_rss_mb(), 1)
            result["orders_at_10k"] = placed
    elapsed = time.perf_counter() - started
    result.update(orders=placed, refused=refused, orders_per_s=round(placed / elapsed), rss_at_end_mb=round(vm_rss_mb(), 1),
                  in_memory_orders=len(gateway.orders))
    result["rss_ratio"] = round(result["rss_at_end_mb"] / result["rss_at_10k_mb"], 3)
    result["coinwire"] = sys.modules["coinwire"].__file__
    print(json.dumps(result), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # a crash: whatever the last checkpoint left is read by the next start
    return result  # pragma: no cover - killed above


async def restart(data_dir: str) -> dict[str, Any]:
    begun = time.perf_counter()
    store, bus, gateway, feed, feeding, start_s = await _gateway(data_dir)
    result = {"start_s": round(start_s, 2), "ready_s": round(time.perf_counter() - begun, 2),
              "rss_after_restart_mb": round(vm_rss_mb(), 1), "open_orders": len(gateway.orders)}
    await _close(store, bus, gateway, feed, feeding)
    print(json.dumps(result), flush=True)
    return result


def _child(src: Path, phase: str, data_dir: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "--child", phase, data_dir, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the {phase} phase gave no figures (exit {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _side(src: Path, total: int, work: Path) -> dict[str, Any]:
    data_dir = str(work)
    filled = _child(src, "fill", data_dir, str(total))
    if not filled["coinwire"].startswith(str(src)):
        raise RuntimeError(f"the child imported {filled['coinwire']}, not the tree under {src}")
    after_kill = _child(src, "restart", data_dir)
    after_close = _child(src, "restart", data_dir)
    return {**{k: v for k, v in filled.items() if k != "coinwire"}, "restart_after_kill_s": after_kill["start_s"],
            "ready_after_kill_s": after_kill["ready_s"], "rss_after_restart_mb": after_kill["rss_after_restart_mb"],
            "restart_after_close_s": after_close["start_s"]}


def _base_tree(into: Path) -> Path | None:
    """The base commit's `src`, written out with `git archive` (None outside a checkout that has it)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASE_REF, "src"], capture_output=True, timeout=120)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=120)
    return into / "src"


def run(total: int = ORDERS, base_total: int = BASE_ORDERS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cw-bench-memory-") as tmp:
        work = Path(tmp)
        (work / "current").mkdir()
        for key, value in _side(ROOT / "src", total, work / "current").items():
            out[key] = value
        out["within_1_5x"] = out["rss_ratio"] <= 1.5
        out["restart_under_5s"] = out["restart_after_kill_s"] < 5
        if base_total:
            (work / "base").mkdir()
            src = _base_tree(work / "base")
            if src is None:
                out["base_skipped"] = f"no {BASE_REF} in this checkout"
            else:
                (work / "base-data").mkdir()
                for key, value in _side(src, base_total, work / "base-data").items():
                    out[f"base_{key}"] = value
                out["base_ref"] = BASE_REF
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        phase, data_dir = sys.argv[2], sys.argv[3]
        if phase == "fill":
            asyncio.run(fill(data_dir, int(sys.argv[4])))
        else:
            asyncio.run(restart(data_dir))
        return
    total = int(sys.argv[1]) if len(sys.argv) > 1 else ORDERS
    base_total = int(sys.argv[2]) if len(sys.argv) > 2 else BASE_ORDERS
    print(json.dumps(run(total, base_total), indent=1))


if __name__ == "__main__":
    main()
