"""The sign-in throttle's arithmetic on a test clock: doubling pauses per (name, address), a short ceiling per address."""

from __future__ import annotations

import pytest

from coinwire.auth.errors import RateLimited
from coinwire.auth.login_throttle import LoginThrottle, name_digest


def waits(throttle: LoginThrottle, name: str, address: str, now: float) -> float:
    """Seconds the throttle makes this sign-in wait (0: it may go)."""
    try:
        throttle.check(name, address, now)
    except RateLimited as exc:
        assert exc.code == "login_locked"
        return float(exc.retry_after)
    return 0.0


def test_one_names_failures_at_one_address_pause_it_doubling_up_to_the_cap() -> None:
    throttle, now = LoginThrottle(), 1000.0
    admin = name_digest("admin")
    for _ in range(5):
        assert waits(throttle, admin, "10.0.0.1", now) == 0
        throttle.failed(admin, "10.0.0.1", now)
    pauses = []
    for _ in range(15):
        pause = waits(throttle, admin, "10.0.0.1", now)
        pauses.append(pause)
        now += pause
        throttle.failed(admin, "10.0.0.1", now)
    assert pauses[:4] == [1, 2, 4, 8] and max(pauses) == 900
    assert waits(throttle, admin, "10.0.0.2", now) == 0  # another address guesses on its own count
    throttle.succeeded(admin, "10.0.0.1")
    assert waits(throttle, admin, "10.0.0.1", now) == 0


@pytest.mark.parametrize("sprayed", [9, 20, 21, 200])
def test_a_spray_of_other_names_never_holds_back_an_existing_users_try(sprayed: int) -> None:
    throttle, now = LoginThrottle(), 1000.0
    for i in range(sprayed):
        name = name_digest(f"ghost-{i}")
        assert throttle.check(name, "10.0.0.1", now) == (i >= 20)  # past the ceiling: a new name's one try, never a wait
        throttle.failed(name, "10.0.0.1", now)
        now += 0.01
    if sprayed > 20:  # a name that failed here already waits for the address, at most its short pause
        assert 0 < waits(throttle, name_digest("ghost-0"), "10.0.0.1", now) <= 5
    # the admin, who never failed from here, gets the try at once, however long the spray goes on
    assert throttle.check(name_digest("admin"), "10.0.0.1", now) == (sprayed >= 20)
    assert waits(throttle, name_digest("admin"), "10.0.0.2", now) == 0


def test_names_are_kept_as_digests_only() -> None:
    throttle = LoginThrottle()
    throttle.failed(name_digest("hunter2-typed-as-name"), "10.0.0.1", 0.0)
    assert "hunter2" not in repr(throttle._pairs) and len(name_digest("x" * 100_000)) == 32
