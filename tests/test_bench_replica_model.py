"""The N-core model of benchmarks/bench_replica.py: a gateway shard is one core's worth, replicas add up."""

from __future__ import annotations

from benchmarks.bench_replica import cores_model


def test_one_shard_is_bound_by_its_own_core_and_the_best_split_by_the_slower_side() -> None:
    model = cores_model(replica_us=250.0, gateway_us=1000.0, cores=(2, 5, 10))
    assert [m["one_shard_orders_per_s"] for m in model.values()] == [1000.0, 1000.0, 1000.0]  # one loop: 1e6 / 1000 µs
    # 5 cores: 4 shards + 1 replica = min(4,000, 4,000); 10 cores: 8 shards + 2 replicas = min(8,000, 8,000)
    assert model["5_cores"]["best_split"] == {"shards": 4, "replicas": 1, "orders_per_s": 4000.0}
    assert model["10_cores"]["best_split"] == {"shards": 8, "replicas": 2, "orders_per_s": 8000.0}
    assert model["2_cores"]["best_split"] == {"shards": 1, "replicas": 1, "orders_per_s": 1000.0}


def test_replicas_bind_when_they_cost_more_than_the_gateway() -> None:
    model = cores_model(replica_us=2000.0, gateway_us=500.0, cores=(2, 3))
    assert model["2_cores"]["one_shard_orders_per_s"] == 500.0  # one replica: 1e6 / 2000 µs
    assert model["3_cores"]["one_shard_orders_per_s"] == 1000.0
    assert model["3_cores"]["best_split"] == {"shards": 1, "replicas": 2, "orders_per_s": 1000.0}
