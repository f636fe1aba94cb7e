"""Prometheus metrics of the running platform: requests, orders, fills, book updates, loop lag."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "REQUEST_LATENCY", "ORDERS", "FILLS", "BOOK_UPDATES", "COMMIT_FAILURES", "LOOP_LAG", "REFDATA_FETCHES", "REFDATA_AGE",
    "labelled", "watch_loop_lag",
]

REQUEST_LATENCY = Histogram(
    "coinwire_request_seconds",
    "Latency of API requests by transport and method or route",
    ["transport", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
ORDERS = Counter("coinwire_orders_total", "Orders accepted by the gateway", ["exchange", "type"])
FILLS = Counter("coinwire_fills_total", "Fills of our orders", ["exchange"])
BOOK_UPDATES = Counter("coinwire_book_level_updates_total", "Order book level updates received", ["exchange"])
COMMIT_FAILURES = Counter("coinwire_commit_failures_total", "Store transactions that failed and forced a reload")
REFDATA_FETCHES = Counter(
    "coinwire_refdata_fetches_total",
    "Reference-data fetches by source and outcome (ok, source_unreachable, source_http_error, source_garbage)",
    ["source", "outcome"],
)
REFDATA_AGE = Gauge("coinwire_refdata_age_seconds", "Age of the reference data in use, by source (the last good value)", ["source"])
LOOP_LAG = Gauge("coinwire_event_loop_lag_seconds", "How late the event loop woke a 100 ms timer, last sample")


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


def labelled(metric: Counter | Histogram | Gauge, *values: str) -> Any:
    """`metric.labels(*values)`, bound once: `labels()` validates and locks on every call, which
    costs more than the increment itself on the order path. Callers pass bounded label values
    (exchange names, order types, method names), so the memo stays small."""
    key = (id(metric), values)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*values)
    return child


async def watch_loop_lag(interval: float = 0.1) -> None:
    """Sample event-loop lag forever: a busy loop wakes timers late, and that is what users feel."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        LOOP_LAG.set(max(0.0, time.perf_counter() - start - interval))
