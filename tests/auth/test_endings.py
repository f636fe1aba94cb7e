"""Which callers a credential ending reaches: one session, one key, a user's sessions, or all of a disabled user's."""

from __future__ import annotations

from coinwire.auth.abilities import Principal
from coinwire.auth.endings import CredentialsEnded

TOM_A = Principal(2, "tom", "trader", "free", session_id="a" * 32, expires_at=100)
TOM_B = Principal(2, "tom", "trader", "free", session_id="b" * 32, expires_at=100)
TOM_KEY = Principal(2, "tom", "trader", "free", scopes=("trade",), key_id="k" * 16)
TESS = Principal(3, "tess", "trader", "free", session_id="c" * 32, expires_at=100)
TESS_KEY = Principal(3, "tess", "trader", "free", scopes=("read",), key_id="t" * 16)
EVERYONE = [TOM_A, TOM_B, TOM_KEY, TESS, TESS_KEY]


def reached(ending: CredentialsEnded) -> list[Principal]:
    return [p for p in EVERYONE if ending.ends(p)]


def test_a_logout_ends_its_session_only() -> None:
    assert reached(CredentialsEnded(reason="session_revoked", session_id="a" * 32)) == [TOM_A]


def test_a_revoked_key_ends_that_key_only() -> None:
    assert reached(CredentialsEnded(reason="key_revoked", key_id="k" * 16)) == [TOM_KEY]


def test_logout_all_ends_the_users_sessions_not_their_keys_nor_anyone_elses() -> None:
    assert reached(CredentialsEnded(reason="session_revoked", user_id=2)) == [TOM_A, TOM_B]


def test_a_disabled_user_loses_sessions_and_keys() -> None:
    assert reached(CredentialsEnded(reason="user_disabled", user_id=3, keys_too=True)) == [TESS, TESS_KEY]
