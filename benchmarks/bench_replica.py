"""make_order round trips through an api replica and the gateway's process, against one process, on PostgreSQL + NATS + Redis.

Both sides share the same engines: one all-in-one server (`--roles all`) on a fresh PostgreSQL
database, NATS namespace and Redis namespace; then a gateway process (`--roles gateway,marketdata`)
and an api replica (`--roles api`) on another fresh set, the clients connected to the replica,
which forwards each call over NATS request-reply (docs/SCALING.md "Commands across processes").
The same load as benchmarks/bench_rpc.py (`CLIENTS` clients over /rpc, half market orders, half
resting limits), `SECONDS` each after a warm-up, alternating sides for `ROUNDS` rounds; the median
round of each. `*_cpu_us_per_order` per process from /proc: what each role costs an order, the
figure that says how many cores N replicas and gateways would need (`cores_model`: what 2-16
cores would give, one gateway shard or the best split into shards and replicas, modelled from
those figures).

    python -m benchmarks.bench_replica [rounds] [seconds]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_rpc import _measure, _run_loop, process_cpu
from tests.remote.cluster import ready, shared_env
from tests.server import ServerProcess

SECONDS = 8.0
ROUNDS = 2


def _one_process(root: Path, seconds: float) -> dict[str, Any]:
    with shared_env() as env:
        server = ServerProcess(root / "one", env={**env, "COINWIRE_ROLES": "all"})
        server.data_dir.mkdir(parents=True)
        try:
            server.start(timeout=60)
            assert server.proc is not None
            result = _run_loop(_measure(server.ws, seconds, server.proc.pid))
        finally:
            server.stop()
    return result


def _through_replica(root: Path, seconds: float) -> dict[str, Any]:
    with shared_env() as env:
        gateway = ServerProcess(root / "gw", env={**env, "COINWIRE_ROLES": "gateway,marketdata"})
        replica = ServerProcess(root / "api", env={**env, "COINWIRE_ROLES": "api"})
        for server in (gateway, replica):
            server.data_dir.mkdir(parents=True)
        try:
            gateway.start(timeout=60)
            replica.start(wait_ready=False)
            ready(replica)
            assert gateway.proc is not None and replica.proc is not None
            gateway_cpu0 = process_cpu(gateway.proc.pid)
            started = time.perf_counter()
            result = _run_loop(_measure(replica.ws, seconds, replica.proc.pid))
            elapsed = time.perf_counter() - started
            gateway_cpu = process_cpu(gateway.proc.pid) - gateway_cpu0
        finally:
            replica.stop()
            gateway.stop()
    # the gateway's CPU over the whole load (warm-up too), per order counted at the replica: an upper bound
    result["gateway_cpu_us_per_order"] = gateway_cpu / result["orders"] * 1e6 * seconds / elapsed
    result["replica_cpu_us_per_order"] = result.pop("server_cpu_us_per_order")
    return result


def cores_model(replica_us: float, gateway_us: float, cores: tuple[int, ...] = (2, 4, 8, 16)) -> dict[str, dict[str, Any]]:
    """What N cores would give, modelled from the measured CPU per order of each role (not measured on N cores).

    A gateway shard is one event loop, one core at most: its ceiling is 1e6 / its µs per order.
    Each api replica is one event loop too, and replicas add up. `one_shard`: today's deployment,
    one gateway and N - 1 replicas. `best_split`: shards and replicas sharing N cores at the best
    split, what sharding would give if shards scaled linearly (two shards at once on one store are
    not safe yet, docs/SCALING.md). PostgreSQL, NATS, Redis and marketdata are not counted: in a
    deployment they run on cores of their own.
    """
    shard, replica = 1e6 / gateway_us, 1e6 / replica_us
    model: dict[str, dict[str, Any]] = {}
    for n in cores:
        splits = [(min(s * shard, (n - s) * replica), s) for s in range(1, n)]
        best, shards = max(splits)
        model[f"{n}_cores"] = {"one_shard_orders_per_s": round(min(shard, (n - 1) * replica), 1),
                               "best_split": {"shards": shards, "replicas": n - shards, "orders_per_s": round(best, 1)}}
    return model


def run(rounds: int = ROUNDS, seconds: float = SECONDS) -> dict[str, Any]:
    one: list[dict[str, Any]] = []
    split: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="coinwire-bench-replica-") as tmp:
        for n in range(rounds):
            one.append(_one_process(Path(tmp) / f"r{n}", seconds))
            split.append(_through_replica(Path(tmp) / f"r{n}", seconds))

    def median_round(results: list[dict[str, Any]]) -> dict[str, Any]:
        return sorted(results, key=lambda r: r["orders_per_s"])[len(results) // 2]

    a, b = median_round(one), median_round(split)
    keys = ("orders_per_s", "p50_ms", "p99_ms")
    return {
        "one_process": {k: round(a[k], 2) for k in (*keys, "server_cpu_us_per_order")},
        "through_replica": {k: round(b[k], 2) for k in (*keys, "replica_cpu_us_per_order", "gateway_cpu_us_per_order")},
        "replica_over_one_pct": round(100 * b["orders_per_s"] / a["orders_per_s"], 1),
        # modelled, not measured (`cores_model`)
        "n_cores_model": cores_model(b["replica_cpu_us_per_order"], b["gateway_cpu_us_per_order"]),
        "rounds": {"one_process": [round(r["orders_per_s"], 1) for r in one],
                   "through_replica": [round(r["orders_per_s"], 1) for r in split]},
        "p50_ms_rounds": {"one_process": [round(r["p50_ms"], 2) for r in one],
                          "through_replica": [round(r["p50_ms"], 2) for r in split]},
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(run(int(args[0]) if args else ROUNDS, float(args[1]) if len(args) > 1 else SECONDS), indent=2))
