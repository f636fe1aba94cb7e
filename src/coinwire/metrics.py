"""Prometheus metrics of the running platform: requests, orders, fills, book updates, loop lag.

The four metrics every order or book update moves (request latency, orders, fills, book
level updates) are `LoopCounter` and `LoopHistogram`: plain numbers updated on the event
loop's thread and turned into Prometheus samples only when /metrics is scraped. A
prometheus_client Counter takes a lock and checks its state on every increment, and on
the order path that was ~4% of the server's instructions (callgrind, per order). The
rest are prometheus_client's own, and everything goes out through its default registry.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = [
    "REQUEST_LATENCY", "ORDERS", "FILLS", "BOOK_UPDATES", "COMMIT_FAILURES", "LOOP_LAG", "JOURNAL_BEHIND", "JOURNAL_RESTARTS",
    "JOURNAL_REFUSED", "JournalStats", "watch_journal", "REFDATA_FETCHES", "REFDATA_AGE",
    "watch_loop_lag", "LoopCounter", "LoopHistogram", "BREAKER_OPENS", "BreakerStates", "watch_breakers",
    "PROCESS_ROLES", "set_process_roles", "FORWARDED", "FORWARD_RETRIES", "NOTIFICATIONS_WAITING",
]


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class _Observations:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)  # per bucket, not cumulative; the last bound is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class _LoopMetric(Collector):
    """Children by label values, created on first use and kept (callers pass bounded label
    values: exchange names, order types, method names); exported by `collect()` at scrape time.

    Updated only from the event loop's thread (an increment is not atomic across threads).
    """

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry | None = REGISTRY
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        if registry is not None:
            registry.register(self)

    def _new_child(self) -> Any:
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            child = self._children[values] = self._new_child()
        return child

    def describe(self) -> Iterator[Metric]:
        return iter(())  # samples exist only once labelled; the registry needs no names up front


class LoopCounter(_LoopMetric):
    def _new_child(self) -> _Count:
        return _Count()

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        yield family


class LoopHistogram(_LoopMetric):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.bounds = tuple(sorted(buckets)) + (math.inf,)
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> _Observations:
        return _Observations(self.bounds)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(self.bounds, child.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), cumulative))
            family.add_metric(list(values), buckets, child.sum)
        yield family


REQUEST_LATENCY = LoopHistogram(
    "coinwire_request_seconds",
    "Latency of API requests by transport and method or route",
    ["transport", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
ORDERS = LoopCounter("coinwire_orders_total", "Orders accepted by the gateway", ["exchange", "type"])
FILLS = LoopCounter("coinwire_fills_total", "Fills of our orders", ["exchange"])
BOOK_UPDATES = LoopCounter("coinwire_book_level_updates_total", "Order book level updates received", ["exchange"])
COMMIT_FAILURES = Counter(
    "coinwire_commit_failures_total", "Change sets the store refused or failed to commit (each taken back alone, or followed by a reload)"
)
REFDATA_FETCHES = Counter(
    "coinwire_refdata_fetches_total",
    "Reference-data fetches by source and outcome (ok, source_unreachable, source_http_error, source_garbage)",
    ["source", "outcome"],
)
REFDATA_AGE = Gauge("coinwire_refdata_age_seconds", "Age of the reference data in use, by source (the last good value)", ["source"])
LOOP_LAG = Gauge("coinwire_event_loop_lag_seconds", "How late the event loop woke a 100 ms timer, last sample")
JOURNAL_BEHIND = Gauge("coinwire_store_journal_behind_bytes", "Store journal bytes acknowledged but not yet applied to the database")
JOURNAL_RESTARTS = Gauge("coinwire_store_journal_helper_restarts", "Store journal helpers started again after being killed")
# one sample per role the process runs (value 1): `coinwire_process_roles{role="gateway"}`; join on `instance` to label the rest
PROCESS_ROLES = Gauge("coinwire_process_roles", "The roles this process runs (docs/SCALING.md), one sample each, value 1", ["role"])
JOURNAL_REFUSED = Gauge("coinwire_store_journal_refused_records", "Acknowledged store journal records the database refused, set aside")
# an api replica's calls run in the gateway's process (api/forwarding.py): their round trips by outcome (ok, error,
# gateway_unavailable), and the tries that found no gateway serving (each one a pause of 0.1 s, or an answer not come)
FORWARDED = LoopHistogram(
    "coinwire_forwarded_call_seconds",
    "Round trips of Api calls an api replica forwarded to the gateway's process, by outcome",
    ["outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
FORWARD_RETRIES = LoopCounter("coinwire_forwarded_call_retries_total", "Tries of forwarded calls that no gateway answered", [])


# notification batches a gateway committed while the bus was away, kept in order until it takes them (services/notify_queue.py)
NOTIFICATIONS_WAITING = Gauge("coinwire_notifications_waiting", "Committed notification batches kept until the bus takes them")
BREAKER_OPENS = LoopCounter("coinwire_breaker_opens_total", "Times a dependency's circuit breaker opened", ["dependency"])


class BreakerStates(Protocol):
    """What the breakers' registry (services/breakers.py) shows to a scrape: dependency -> 0 closed, 1 half-open, 2 open."""

    def states(self) -> dict[str, int]: ...


class _BreakerGauge(Collector):
    """`coinwire_breaker_state{dependency}`, read from the process's breakers at scrape time."""

    def __init__(self) -> None:
        self.source: BreakerStates | None = None
        REGISTRY.register(self)

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("coinwire_breaker_state", "Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open",
                                   labels=["dependency"])
        for name, state in sorted((self.source.states() if self.source is not None else {}).items()):
            family.add_metric([name], state)
        yield family


_BREAKER_GAUGE = _BreakerGauge()


def watch_breakers(source: BreakerStates) -> None:
    """Show these breakers on /metrics (the process's one registry; a later call replaces an earlier one)."""
    _BREAKER_GAUGE.source = source


class JournalStats(Protocol):
    """What the store's journal (store/journal.py) shows to a scrape; metrics sit below the store and never import it."""

    @property
    def behind_bytes(self) -> int: ...

    @property
    def restarts(self) -> int: ...

    @property
    def refused(self) -> int: ...


def watch_journal(journal: JournalStats) -> None:
    """Read the store journal's lag and helper restarts at scrape time (SQLite with its journal only)."""
    JOURNAL_BEHIND.set_function(lambda: journal.behind_bytes)
    JOURNAL_RESTARTS.set_function(lambda: journal.restarts)
    JOURNAL_REFUSED.set_function(lambda: journal.refused)


async def watch_loop_lag(interval: float = 0.1) -> None:
    """Sample event-loop lag forever: a busy loop wakes timers late, and that is what users feel."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        LOOP_LAG.set(max(0.0, time.perf_counter() - start - interval))


def set_process_roles(roles: frozenset[str] | set[str]) -> None:
    """Name the process's roles in `coinwire_process_roles` (a gauge of 1 per role; roles it no longer runs removed)."""
    PROCESS_ROLES.clear()
    for role in sorted(roles):
        PROCESS_ROLES.labels(role).set(1)
