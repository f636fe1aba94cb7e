"""The password hasher's constant dummy hash stays in step with the hasher it stands in for."""

from __future__ import annotations

from coinwire.auth.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password


def test_the_dummy_hash_costs_what_a_real_one_does_and_matches_no_password() -> None:
    """An unknown user's login verifies against DUMMY_HASH: same algorithm and parameters as a stored hash."""
    assert not needs_rehash(DUMMY_HASH)  # argon2-cffi's current defaults, as hash_password uses
    assert DUMMY_HASH.rsplit("$", 2)[0] == hash_password("any-password").rsplit("$", 2)[0]
    assert verify_password(DUMMY_HASH, "coinwire-no-such-user") and not verify_password(DUMMY_HASH, "admin-test-password")
