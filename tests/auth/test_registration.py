"""Self-registration over a real store: closed unless opened, checked whole, one transaction, limited per address."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy.exc import CompileError

from coinwire.auth.errors import Forbidden, RateLimited
from coinwire.auth.preferences import PreferencesRepository, new_row
from coinwire.auth.ratelimit import MemoryBuckets
from coinwire.auth.registration import Registration
from coinwire.auth.repository import AuthRepository
from coinwire.auth.service import AuthService
from coinwire.auth.site_settings import RegistrationSettings, SiteSettings
from coinwire.auth.tokens import TokenSigner
from coinwire.core.errors import CoinwireError, Conflict
from coinwire.store import Store

CURRENCIES = {"USD", "EUR", "GBP"}


class Clock:
    """Seconds that move only when a test moves them (the rate limiter's clock)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _registration(store: Store, *, open_: bool = True, role: str = "viewer", per_hour: int = 10,
                  clock: Clock | None = None) -> Registration:
    auth = AuthService(AuthRepository(store), TokenSigner(secrets.token_bytes(32)))
    site = SiteSettings(store, RegistrationSettings(self_registration=open_, registration_role=role))
    return Registration(auth, site, MemoryBuckets(clock or Clock()), lambda: CURRENCIES, per_hour=per_hour)


async def test_closed_by_default_refuses_before_looking_at_the_request(store: Store) -> None:
    registration = _registration(store, open_=False)
    assert await registration.status() == {"open": False}
    with pytest.raises(Forbidden) as refused:
        await registration.register("ann", "x", "Nowhere", "XYZ", "10.0.0.1")  # closed, whatever else is wrong
    assert refused.value.code == "registration_closed"
    assert await AuthRepository(store).count_users() == 0


async def test_a_sign_up_makes_a_user_of_the_chosen_role_with_their_preferences_and_a_session(store: Store) -> None:
    registration = _registration(store, role="trader")
    status = await registration.status()
    assert status["open"] is True and status["currencies"] == ["EUR", "GBP", "USD"] and status["password_min_length"] == 8
    tokens, principal = await registration.register("ann", "ann-password", "Europe/Paris", "eur", "10.0.0.1", "browser")
    assert (principal.username, principal.role, principal.plan) == ("ann", "trader", "free")
    me = await registration.auth.authenticate(tokens["access_token"])
    assert me.user_id == principal.user_id and me.session_id == principal.session_id
    prefs = await PreferencesRepository(store).get(principal.user_id)
    assert prefs == {"time_zone": "Europe/Paris", "currency": "EUR", "crypto_decimals": 6, "stable_decimals": 2, "mask": False}
    sessions = await registration.auth.repo.user_sessions(principal.user_id)
    assert [s["client"] for s in sessions] == ["browser"]


@pytest.mark.parametrize("username, password, time_zone, currency, code", [
    ("A", "long-enough-1", "UTC", "USD", "invalid_username"),
    ("Ann", "long-enough-1", "UTC", "USD", "invalid_username"),  # the rules of admin-made users: lower case
    ("ann", "short", "UTC", "USD", "weak_password"),
    ("ann", "x" * 257, "UTC", "USD", "weak_password"),
    ("ann", "long-enough-1", "Mars/Olympus", "USD", "invalid_time_zone"),
    ("ann", "long-enough-1", "UTC", "XYZ", "unknown_currency"),
])
async def test_a_bad_sign_up_is_refused_with_its_code_and_writes_nothing(store: Store, username: str, password: str,
                                                                         time_zone: str, currency: str, code: str) -> None:
    clock = Clock()
    registration = _registration(store, per_hour=1, clock=clock)
    with pytest.raises(CoinwireError) as refused:
        await registration.register(username, password, time_zone, currency, "10.0.0.1")
    assert refused.value.code == code
    assert await AuthRepository(store).count_users() == 0
    # a refused request costs the address nothing: its one sign-up of the hour is still there
    await registration.register("ann", "long-enough-1", "UTC", "USD", "10.0.0.1")


async def test_a_taken_name_is_a_conflict(store: Store) -> None:
    registration = _registration(store)
    await registration.auth.create_user("admin", "admin-password", "admin", "pro")
    with pytest.raises(Conflict) as refused:
        await registration.register("admin", "some-password", "UTC", "USD", "10.0.0.1")
    assert refused.value.code == "user_exists"
    assert [u["username"] for u in await registration.auth.list_users()] == ["admin"]


async def test_the_user_and_their_preferences_are_one_transaction(store: Store) -> None:
    """A preferences row that cannot be written takes the user with it: never a user without the preferences they chose."""
    repo = AuthRepository(store)
    with pytest.raises(CompileError):  # the second insert fails, after the user's went through
        await repo.add_user("ann", "hash", "viewer", "free", 1, prefs=new_row({"time_zone": "UTC"}, 1) | {"no_such_column": 1})
    assert await repo.user_by_name("ann") is None
    user_id = await repo.add_user("ann", "hash", "viewer", "free", 1, prefs=new_row({"currency": "GBP"}, 1))
    assert (await PreferencesRepository(store).get(user_id))["currency"] == "GBP"


async def test_each_address_has_its_own_hourly_budget(store: Store) -> None:
    clock = Clock()
    registration = _registration(store, per_hour=2, clock=clock)
    await registration.register("ann", "ann-password", "UTC", "USD", "10.0.0.1")
    with pytest.raises(Conflict):  # probing a taken name counts too
        await registration.register("ann", "ann-password", "UTC", "USD", "10.0.0.1")
    with pytest.raises(RateLimited) as limited:
        await registration.register("bob", "bob-password", "UTC", "USD", "10.0.0.1")
    assert limited.value.code == "registration_limited" and 1790 <= limited.value.retry_after <= 1800  # one of 2 an hour
    await registration.register("bob", "bob-password", "UTC", "USD", "10.0.0.2")  # another address: its own
    clock.now += 1800
    await registration.register("cat", "cat-password", "UTC", "USD", "10.0.0.1")  # half an hour on: one more
    assert [u["username"] for u in await registration.auth.list_users()] == ["ann", "bob", "cat"]
