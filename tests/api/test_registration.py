"""Self-registration through a running server: off by default, opened by admins only, checked, signed in, limited, kept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import ServerProcess

REGISTER, STATUS, SETTINGS = "/api/v1/auth/register", "/api/v1/auth/registration", "/api/v1/admin/settings"
# display currencies besides USD without an FX source: a stablecoin pegged to each
PEGS = '[market_data]\npegs = { USDT = "USD", EURC = "EUR", GBPT = "GBP" }\n'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("server")), config=PEGS)
    proc.start()
    yield proc
    proc.stop()


def _error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def _sign_up(server: ServerProcess, username: str, time_zone: str = "UTC", currency: str = "USD", **extra: Any) -> httpx.Response:
    body = {"username": username, "password": f"{username}-password", "time_zone": time_zone, "currency": currency, **extra}
    return httpx.post(server.http + REGISTER, json=body, timeout=30)


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@contextmanager
def _open(server: ServerProcess, role: str = "viewer") -> Iterator[None]:
    """Self-registration open (as `role`) for the block, closed again after it (the module's server is shared)."""
    with server.client() as admin:
        r = admin.put(SETTINGS, json={"self_registration": True, "registration_role": role})
        assert r.status_code == 200, r.text
        try:
            yield
        finally:
            admin.put(SETTINGS, json={"self_registration": False, "registration_role": "viewer"}).raise_for_status()


@pytest.fixture(scope="module")
def others(server: ServerProcess) -> dict[str, dict[str, str]]:
    """A trader and a viewer made by admin: their Authorization headers."""
    with server.client() as admin:
        admin.post("/api/v1/users", json={"username": "vic", "password": "vic-password", "role": "viewer"}).raise_for_status()
    tokens = server.traders("tina") | {"vic": server.login("vic", "vic-password")["access_token"]}
    return {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}


def test_closed_by_default_and_only_admins_open_it(server: ServerProcess, others: dict[str, dict[str, str]]) -> None:
    assert httpx.get(server.http + STATUS).json() == {"open": False}
    assert _error(_sign_up(server, "early")) == (403, "registration_closed")
    for headers in others.values():  # a trader and a viewer can neither read nor change the setting
        assert _error(httpx.get(server.http + SETTINGS, headers=headers)) == (403, "forbidden")
        r = httpx.put(server.http + SETTINGS, headers=headers, json={"self_registration": True})
        assert _error(r) == (403, "forbidden")
    assert _error(httpx.put(server.http + SETTINGS, json={"self_registration": True})) == (401, "unauthenticated")
    assert httpx.get(server.http + STATUS).json() == {"open": False}  # none of that opened it

    with server.client() as admin:
        assert admin.get(SETTINGS).json() == {"self_registration": False, "registration_role": "viewer"}
        for body, code in [({"registration_role": "admin"}, "invalid_role"), ({"self_registration": "yes"}, "invalid_params"),
                           ({"self_registration": 1}, "invalid_params"), ({"open": True}, "invalid_params"),
                           ({"registration_role": "x" * 33}, "too_long")]:
            assert _error(admin.put(SETTINGS, json=body)) == (400, code), body
        r = admin.put(SETTINGS, json={"self_registration": True})
        assert r.status_code == 200 and r.json() == {"self_registration": True, "registration_role": "viewer"}
        status = httpx.get(server.http + STATUS).json()
        assert status == {"open": True, "currencies": ["EUR", "GBP", "USD"], "password_min_length": 8, "password_max_length": 256}
        r = admin.put(SETTINGS, json={"self_registration": False})
        assert r.json() == {"self_registration": False, "registration_role": "viewer"}
        assert httpx.get(server.http + STATUS).json() == {"open": False}
        rows = admin.get("/api/v1/audit", params={"action": "setting self_registration", "limit": 2}).json()
        assert [(a["username"], a["target"], a["outcome"]) for a in rows] == [("admin", "false", "changed"), ("admin", "true", "changed")]


def test_a_sign_up_is_signed_in_with_the_role_given_and_its_own_preferences(server: ServerProcess,
                                                                            others: dict[str, dict[str, str]]) -> None:
    with _open(server, "viewer"):
        r = _sign_up(server, "nina", "Europe/Paris", "EUR")
        assert r.status_code == 201, r.text
        nina = r.json()
        assert set(nina) == {"access_token", "refresh_token", "token_type", "expires_in"}
    with _open(server, "trader"):
        r = _sign_up(server, "otto", "Asia/Tokyo", "usd")
        assert r.status_code == 201, r.text
        otto = r.json()
    assert _error(_sign_up(server, "late")) == (403, "registration_closed")

    me = httpx.get(server.http + "/api/v1/me", headers=_bearer(nina)).json()
    assert (me["username"], me["role"], me["plan"]) == ("nina", "viewer", "free")
    assert httpx.get(server.http + "/api/v1/me", headers=_bearer(otto)).json()["role"] == "trader"
    for tokens, zone, currency in ((nina, "Europe/Paris", "EUR"), (otto, "Asia/Tokyo", "USD")):
        p = httpx.get(server.http + "/api/v1/me/preferences", headers=_bearer(tokens)).json()
        assert (p["time_zone"], p["currency"], p["crypto_decimals"]) == (zone, currency, 6)
    tina = httpx.get(server.http + "/api/v1/me/preferences", headers=others["tina"]).json()
    assert (tina["time_zone"], tina["currency"]) == ("UTC", "USD")  # the sign-ups' choices reach no one else

    # a viewer who signed up reads but cannot trade; the session is a real one (it refreshes)
    order = {"exchange": "demo", "pair": "BTC_USDT", "side": "buy", "type": "limit", "size": "0.001", "limit": "1"}
    assert _error(httpx.post(server.http + "/xwrap/v1/orders/new", headers=_bearer(nina), json=order)) == (403, "forbidden")
    assert httpx.get(server.http + "/xwrap/v1/wallets/sets", headers=_bearer(nina)).status_code == 200
    renewed = httpx.post(server.http + "/api/v1/auth/refresh", json={"refresh_token": nina["refresh_token"]})
    assert renewed.status_code == 200, renewed.text

    with server.client() as admin:
        users = {u["username"]: u for u in admin.get("/api/v1/users").json()}
        assert (users["nina"]["role"], users["otto"]["role"]) == ("viewer", "trader")
        assert "late" not in users
        rows = admin.get("/api/v1/audit", params={"action": "POST /api/v1/auth/register"}).json()
        made = [(a["username"], a["user_id"], a["outcome"]) for a in rows if a["outcome"] == "201"]
        assert made == [("otto", users["otto"]["id"], "201"), ("nina", users["nina"]["id"], "201")]
        assert "403" in {a["outcome"] for a in rows}  # the refused one, late, is recorded too


@pytest.mark.parametrize("body, expected", [
    ({"username": "Upper"}, (400, "invalid_username")),
    ({"username": "a"}, (400, "invalid_username")),
    ({"username": "ok-name", "password": "short"}, (400, "weak_password")),
    ({"username": "ok-name", "time_zone": "Mars/Olympus"}, (400, "invalid_time_zone")),
    ({"username": "ok-name", "time_zone": "../../etc/passwd"}, (400, "invalid_time_zone")),
    ({"username": "ok-name", "currency": "XYZ"}, (400, "unknown_currency")),
    ({"username": "ok-name", "role": "admin"}, (400, "invalid_params")),  # a sign-up never picks its own role
    ({"username": "ok-name", "plan": "pro"}, (400, "invalid_params")),
    ({"username": "ok-name", "currency": None}, (400, "invalid_params")),
    ({"username": "x" * 65}, (400, "too_long")),
    ({"username": "admin"}, (409, "user_exists")),
])
def test_bad_sign_ups_answer_stable_codes_and_make_nobody(server: ServerProcess, body: dict[str, Any],
                                                          expected: tuple[int, str]) -> None:
    full = {"password": "good-password", "time_zone": "UTC", "currency": "USD"} | body
    with server.client() as admin:
        before = admin.get("/api/v1/users").json()
        with _open(server):
            r = httpx.post(server.http + REGISTER, json=full, timeout=30)
        assert _error(r) == expected, r.text
        assert admin.get("/api/v1/users").json() == before


def test_the_admins_choice_outlives_a_restart_and_wins_over_the_configuration(tmp_path: Path, store_env: dict[str, str]) -> None:
    server = ServerProcess(tmp_path, env=store_env | {"COINWIRE_SELF_REGISTRATION": "true", "COINWIRE_REGISTRATION_ROLE": "trader"},
                           config=PEGS)
    server.start()
    try:
        assert httpx.get(server.http + STATUS).json()["open"] is True  # the configuration's default
        r = _sign_up(server, "pia")
        assert r.status_code == 201, r.text
        assert httpx.get(server.http + "/api/v1/me", headers=_bearer(r.json())).json()["role"] == "trader"
        with server.client() as admin:
            assert admin.put(SETTINGS, json={"self_registration": False}).status_code == 200
        server.stop()
        server.start()
        assert httpx.get(server.http + STATUS).json() == {"open": False}  # kept, and it wins over the environment
        assert _error(_sign_up(server, "quin")) == (403, "registration_closed")
        with server.client() as admin:
            assert admin.get(SETTINGS).json() == {"self_registration": False, "registration_role": "trader"}
            assert admin.put(SETTINGS, json={"self_registration": True, "registration_role": "viewer"}).status_code == 200
        server.stop()
        server.start()
        r = _sign_up(server, "quin", "America/New_York", "GBP")
        assert r.status_code == 201, r.text
        assert httpx.get(server.http + "/api/v1/me", headers=_bearer(r.json())).json()["role"] == "viewer"
        prefs = httpx.get(server.http + "/api/v1/me/preferences", headers=_bearer(r.json())).json()
        assert (prefs["time_zone"], prefs["currency"]) == ("America/New_York", "GBP")
    finally:
        server.stop()


def test_sign_ups_from_one_address_are_limited(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env={"COINWIRE_SELF_REGISTRATION": "true", "COINWIRE_REGISTER_PER_HOUR": "2"})
    server.start()
    try:
        assert _error(_sign_up(server, "ok-name", "Nowhere/Land")) == (400, "invalid_time_zone")  # a typo costs nothing
        assert _sign_up(server, "rex").status_code == 201
        assert _error(_sign_up(server, "rex")) == (409, "user_exists")  # probing a taken name counts
        r = _sign_up(server, "sam")
        assert _error(r) == (429, "registration_limited")
        assert 1700 <= int(r.headers["retry-after"]) <= 1800  # 2 an hour: the next in half an hour
        with server.client() as admin:
            assert "sam" not in {u["username"] for u in admin.get("/api/v1/users").json()}
            assert admin.post("/api/v1/users", json={"username": "sam", "password": "sam-password"}).status_code == 201
    finally:
        server.stop()
