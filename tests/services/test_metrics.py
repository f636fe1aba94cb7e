"""The loop-thread metrics export the samples prometheus_client's own Counter and Histogram would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from coinwire.metrics import LoopCounter, LoopHistogram


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_same_samples_as_prometheus_client() -> None:
    bounds = (0.001, 0.01, 0.1)
    ours_c = LoopCounter("t_ours_total", "doc", ["exchange", "type"], registry=CollectorRegistry())
    ours_h = LoopHistogram("t_ours_seconds", "doc", ["method"], buckets=bounds, registry=CollectorRegistry())
    theirs = CollectorRegistry()
    their_c = Counter("t_ours_total", "doc", ["exchange", "type"], registry=theirs)
    their_h = Histogram("t_ours_seconds", "doc", ["method"], buckets=bounds, registry=theirs)
    for counter in (ours_c, their_c):
        counter.labels("demo", "market").inc()
        counter.labels("demo", "market").inc(2.5)
        counter.labels("demo", "limit").inc()
    for histogram in (ours_h, their_h):
        for amount in (0.0005, 0.001, 0.002, 0.1, 7.0):  # on a bound counts in that bucket
            histogram.labels("make_order").observe(amount)
    ours = CollectorRegistry()
    ours.register(ours_c)
    ours.register(ours_h)
    assert _samples(generate_latest(ours).decode()) == _samples(generate_latest(theirs).decode())


def test_refuses_what_prometheus_client_refuses() -> None:
    counter = LoopCounter("t_refuse_total", "doc", ["exchange"], registry=CollectorRegistry())
    with pytest.raises(ValueError):
        counter.labels("demo").inc(-1)
    with pytest.raises(ValueError):
        counter.labels("demo", "extra")
