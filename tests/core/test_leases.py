"""Leases' pure decisions: acquire, renew, release, expiry and the fencing check; a property over interleavings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinwire.core.errors import InvalidInput
from coinwire.core.leases import Lease, acquire, expired, fence_holds, release, renew

TTL = 1_000


def test_first_acquire_grants_token_one() -> None:
    assert acquire(None, "gateway:binance", "a", 5, TTL) == Lease("gateway:binance", "a", 1, 5 + TTL)


def test_held_lease_refuses_another_until_it_expires() -> None:
    lease = Lease("g", "a", 3, 1_000)
    assert acquire(lease, "g", "b", 999, TTL) is None
    taken = acquire(lease, "g", "b", 1_000, TTL)
    assert taken == Lease("g", "b", 4, 2_000)
    assert expired(lease, 1_000) and not expired(lease, 999)


def test_holder_reacquiring_keeps_its_token_and_extends() -> None:
    lease = Lease("g", "a", 3, 1_000)
    assert acquire(lease, "g", "a", 500, TTL) == Lease("g", "a", 3, 1_500)
    assert acquire(lease, "g", "a", 1_000, TTL) == Lease("g", "a", 4, 2_000)  # expired: a new grant, a new token


def test_renew_needs_holder_token_and_time() -> None:
    lease = Lease("g", "a", 3, 1_000)
    assert renew(lease, "a", 3, 900, TTL) == Lease("g", "a", 3, 1_900)
    assert renew(lease, "a", 2, 900, TTL) is None
    assert renew(lease, "b", 3, 900, TTL) is None
    assert renew(lease, "a", 3, 1_000, TTL) is None  # too late: acquire again
    assert renew(None, "a", 3, 0, TTL) is None


def test_release_ends_now_and_next_holder_gets_next_token() -> None:
    lease = Lease("g", "a", 3, 1_000)
    assert release(lease, "b", 3, 10) is None
    ended = release(lease, "a", 3, 10)
    assert ended == Lease("g", "a", 3, 10)
    assert acquire(ended, "g", "b", 10, TTL) == Lease("g", "b", 4, 10 + TTL)


def test_fence_holds() -> None:
    lease = Lease("g", "a", 3, 1_000)
    assert fence_holds(lease, "a", 3, 999)
    assert not fence_holds(lease, "a", 3, 1_000)
    assert not fence_holds(lease, "a", 2, 10)
    assert not fence_holds(lease, "b", 3, 10)
    assert not fence_holds(None, "a", 3, 10)


@pytest.mark.parametrize(("name", "holder", "now", "ttl", "code"), [
    ("", "a", 0, 1, "invalid_lease_name"), ("g", "", 0, 1, "invalid_lease_holder"), ("x" * 201, "a", 0, 1, "invalid_lease_name"),
    ("g", "a", -1, 1, "invalid_lease_time"), ("g", "a", 0, 0, "invalid_lease_duration"),
])
def test_bad_input_has_a_code(name: str, holder: str, now: int, ttl: int, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        acquire(None, name, holder, now, ttl)
    assert caught.value.code == code


_STEP = st.tuples(st.integers(0, 3), st.sampled_from(["acquire", "renew", "release"]), st.integers(0, 2 * TTL),
                  st.integers(1, 2 * TTL))


@settings(max_examples=300, deadline=None)
@given(st.lists(_STEP, max_size=60))
def test_at_most_one_unexpired_holder_and_tokens_only_grow(steps: list[tuple[int, str, int, int]]) -> None:
    """Any interleaving of several holders: at every instant at most one believes it holds the lease unexpired."""
    record: Lease | None = None  # what the store keeps
    believed: dict[str, Lease] = {}  # each holder's last successful answer
    now = 0
    highest = 0
    owner_of_token: dict[int, str] = {}
    for who, action, advance, ttl in steps:
        now += advance
        holder = f"h{who}"
        if action == "acquire":
            result = acquire(record, "g", holder, now, ttl)
        else:
            mine = believed.get(holder)
            token = mine.token if mine is not None else 1
            result = (renew(record, holder, token, now, ttl) if action == "renew" else release(record, holder, token, now))
        if result is not None:
            assert result.token >= highest  # never down
            if record is None or result.holder != record.holder:
                assert result.token > highest  # a new holder: a new token
            assert owner_of_token.setdefault(result.token, result.holder) == result.holder  # never repeated across holders
            highest = result.token
            record = result
            believed[holder] = result
        live = [h for h, lease in believed.items() if not expired(lease, now)]
        assert len(live) <= 1, (now, believed)
        if live:
            assert record is not None and record.holder == live[0] and fence_holds(record, live[0], believed[live[0]].token, now)
