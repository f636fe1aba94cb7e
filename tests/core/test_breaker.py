"""The circuit breaker's state machine: thresholds, the half-open probe, stale outcomes, and its invariants under any sequence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.breaker import Breaker, BreakerState, DependencyUnavailable, Permit
from coinwire.core.errors import NotReady


def admitted(breaker: Breaker, now: float) -> Permit:
    permit = breaker.admit(now)
    assert permit is not None
    return permit


def test_opens_exactly_at_the_threshold_and_refuses_until_the_reset() -> None:
    breaker = Breaker(failures=3, reset_seconds=10.0)
    for i in range(2):
        breaker.failed(admitted(breaker, float(i)), float(i))
        assert breaker.state is BreakerState.CLOSED
    breaker.failed(admitted(breaker, 2.0), 2.0)
    assert breaker.state is BreakerState.OPEN and breaker.opens == 1
    assert breaker.admit(2.0) is None and breaker.admit(11.99) is None
    assert breaker.retry_after(7.0) == pytest.approx(5.0)
    assert breaker.state_at(11.99) is BreakerState.OPEN and breaker.state_at(12.0) is BreakerState.HALF_OPEN


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = Breaker(failures=2, reset_seconds=1.0)
    breaker.failed(admitted(breaker, 0), 0)
    breaker.succeeded(admitted(breaker, 0), 0)
    breaker.failed(admitted(breaker, 0), 0)
    assert breaker.state is BreakerState.CLOSED
    breaker.failed(admitted(breaker, 0), 0)
    assert breaker.state is BreakerState.OPEN


def test_half_open_lets_one_probe_through_whose_success_closes() -> None:
    breaker = Breaker(failures=1, reset_seconds=5.0)
    breaker.failed(admitted(breaker, 0), 0)
    probe = admitted(breaker, 5.0)
    assert probe.probe and breaker.state is BreakerState.HALF_OPEN
    assert breaker.admit(5.0) is None and breaker.admit(100.0) is None  # the probe is out: everyone else waits
    breaker.succeeded(probe, 6.0)
    assert breaker.state is BreakerState.CLOSED
    assert not admitted(breaker, 6.0).probe


def test_a_failed_probe_opens_again_for_a_whole_reset() -> None:
    breaker = Breaker(failures=1, reset_seconds=5.0)
    breaker.failed(admitted(breaker, 0), 0)
    breaker.failed(admitted(breaker, 7.0), 8.0)
    assert breaker.state is BreakerState.OPEN and breaker.opens == 2 and breaker.opened_at == 8.0
    assert breaker.admit(12.9) is None
    assert admitted(breaker, 13.0).probe


def test_an_abandoned_probe_frees_its_place() -> None:
    breaker = Breaker(failures=1, reset_seconds=1.0)
    breaker.failed(admitted(breaker, 0), 0)
    probe = admitted(breaker, 1.0)
    breaker.abandoned(probe)
    assert breaker.state is BreakerState.HALF_OPEN
    assert admitted(breaker, 1.0).probe


def test_outcomes_of_calls_admitted_before_an_open_or_close_change_nothing() -> None:
    breaker = Breaker(failures=2, reset_seconds=1.0)
    slow = [admitted(breaker, 0) for _ in range(3)]  # three calls in flight while closed
    breaker.failed(slow[0], 0)
    breaker.failed(slow[1], 0)
    assert breaker.state is BreakerState.OPEN
    breaker.succeeded(slow[2], 0.5)  # a late answer from before the opening does not close it
    assert breaker.state is BreakerState.OPEN
    probe = admitted(breaker, 1.0)
    breaker.succeeded(probe, 1.0)
    breaker.failed(slow[2], 1.0)  # nor does a late failure count in the new closed period
    assert breaker.consecutive == 0


def test_bad_thresholds_are_refused() -> None:
    for failures, reset in ((0, 1.0), (1, 0.0), (1, float("inf")), (1, float("nan"))):
        with pytest.raises(ValueError):
            Breaker(failures, reset)


def test_the_refusal_is_a_retryable_503_naming_the_dependency() -> None:
    error = DependencyUnavailable("smtp", 12.3)
    assert isinstance(error, NotReady) and error.http_status == 503
    assert error.code == "dependency_unavailable"
    assert error.to_dict()["dependency"] == "smtp" and error.to_dict()["retryable"] is True
    assert error.retry_after == pytest.approx(12.3)


# --- properties: any interleaving of admits and outcomes, with time moving forward -----------------------------
_OPS = st.lists(
    st.tuples(st.sampled_from(["admit", "succeed", "fail", "abandon"]), st.floats(0, 4), st.integers(0, 50)),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(failures=st.integers(1, 5), reset=st.floats(0.5, 5), ops=_OPS)
def test_invariants_under_any_sequence(failures: int, reset: float, ops: list[tuple[str, float, int]]) -> None:
    breaker = Breaker(failures, reset)
    now = 0.0
    out: list[Permit] = []  # admitted calls not yet ended
    streak = 0  # consecutive failures of current-generation calls while closed, as the model counts them
    for op, step, pick in ops:
        now += step
        if op == "admit":
            before = breaker.state
            permit = breaker.admit(now)
            if before is BreakerState.CLOSED:
                assert permit is not None and not permit.probe  # never refuses while closed
            if permit is not None:
                out.append(permit)
            else:
                assert breaker.state is not BreakerState.CLOSED
            probes = [p for p in out if p.probe and p.generation == breaker.generation]
            assert len(probes) <= 1  # never more than one probe in flight
            if breaker.state is BreakerState.HALF_OPEN:
                assert breaker.probing == (len(probes) == 1)
            continue
        if not out:
            continue
        permit = out.pop(pick % len(out))
        state, generation, opens = breaker.state, breaker.generation, breaker.opens
        current = permit.generation == generation
        if op == "succeed":
            breaker.succeeded(permit, now)
            if current and state is BreakerState.CLOSED:
                streak = 0
            if current and permit.probe:
                assert breaker.state is BreakerState.CLOSED
        elif op == "fail":
            breaker.failed(permit, now)
            if current and state is BreakerState.CLOSED:
                streak += 1
                # opens exactly at the threshold, not before
                assert (breaker.state is BreakerState.OPEN) == (streak >= failures)
                assert breaker.opens == opens + (streak >= failures)
            if current and permit.probe:
                assert breaker.state is BreakerState.OPEN and breaker.opened_at == now
        else:
            breaker.abandoned(permit)
            assert breaker.state is state  # an abandoned call changes no state
        if not current:
            assert (breaker.state, breaker.generation, breaker.opens) == (state, generation, opens)  # stale: no effect
        if breaker.generation != generation:
            streak = 0
        if breaker.state is BreakerState.OPEN and now - breaker.opened_at < reset:
            assert breaker.admit(now) is None  # refuses at once while open (a refusal changes nothing)
