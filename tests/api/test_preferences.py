"""A user's display preferences live on the server: each user's own, checked whole, kept across a restart (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.server import ServerProcess

_PATH = "/api/v1/me/preferences"
_DEFAULTS = {"time_zone": "UTC", "currency": "USD", "crypto_decimals": 6, "stable_decimals": 2, "mask": False}


def _sign_in(server: ServerProcess, users: dict[str, str]) -> dict[str, dict[str, str]]:
    """Create the users (name -> role), sign each in: name -> Authorization header."""
    with server.client() as admin:
        for name, role in users.items():
            admin.post("/api/v1/users", json={"username": name, "password": f"{name}-password", "role": role}).raise_for_status()
    out = {}
    for name in users:
        pair = httpx.post(server.http + "/api/v1/auth/login", json={"username": name, "password": f"{name}-password"}).json()
        out[name] = {"Authorization": f"Bearer {pair['access_token']}"}
    return out


def _prefs(server: ServerProcess, headers: dict[str, str]) -> dict[str, Any]:
    r = httpx.get(server.http + _PATH, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "USD" in body.pop("currencies")
    return body


def test_each_users_preferences_are_their_own_checked_and_kept_across_a_restart(tmp_path: Path, store_env: dict[str, str]) -> None:
    server = ServerProcess(tmp_path, env=store_env)
    server.start()
    try:
        users = _sign_in(server, {"tom": "trader", "tess": "trader", "vic": "viewer"})
        assert httpx.get(server.http + _PATH).status_code == 401  # signed out: no one's preferences
        for name in users:
            assert _prefs(server, users[name]) == _DEFAULTS  # never set: the defaults

        r = httpx.put(server.http + _PATH, headers=users["tom"],
                      json={"time_zone": "Europe/Paris", "crypto_decimals": 4, "stable_decimals": 3, "mask": True})
        assert r.status_code == 200, r.text
        toms = {"time_zone": "Europe/Paris", "currency": "USD", "crypto_decimals": 4, "stable_decimals": 3, "mask": True}
        assert {k: v for k, v in r.json().items() if k != "currencies"} == toms
        r = httpx.put(server.http + _PATH, headers=users["vic"], json={"time_zone": "Asia/Tokyo"})  # viewers too
        assert r.status_code == 200, r.text
        assert _prefs(server, users["tess"]) == _DEFAULTS  # tom's and vic's never reach tess

        refused = [
            ({"time_zone": "Mars/Olympus"}, "invalid_time_zone"),
            ({"time_zone": "../../etc/passwd"}, "invalid_time_zone"),
            ({"currency": "XYZ"}, "unknown_currency"),
            ({"crypto_decimals": 13}, "invalid_decimals"),
            ({"stable_decimals": -1}, "invalid_decimals"),
            ({"mask": "yes"}, "invalid_params"),
            ({"crypto_decimals": 2, "user_id": 2}, "invalid_params"),  # unknown fields: never someone else's row
            ({"time_zone": "x" * 65}, "too_long"),
            # a valid field with an invalid one: nothing is written (the decimals stay 4)
            ({"crypto_decimals": 1, "time_zone": "Nowhere/Land"}, "invalid_time_zone"),
        ]
        for body, code in refused:
            r = httpx.put(server.http + _PATH, headers=users["tom"], json=body)
            assert r.status_code == 400 and r.json()["error"]["code"] == code, (body, r.status_code, r.text)
        assert _prefs(server, users["tom"]) == toms

        _two_changes_at_once_both_land(server, users["vic"])

        server.stop()
        server.start()
        assert _prefs(server, users["tom"]) == toms  # sessions and preferences survive
        assert _prefs(server, users["vic"]) == _DEFAULTS | {"time_zone": "Asia/Tokyo"}
        assert _prefs(server, users["tess"]) == _DEFAULTS
    finally:
        server.stop()


def _two_changes_at_once_both_land(server: ServerProcess, headers: dict[str, str]) -> None:
    """Two PUTs of different fields at the same moment (the dashboard's decimals, then its masking): neither undoes the other."""
    async def rounds() -> None:
        async with httpx.AsyncClient(base_url=server.http, headers=headers) as client:
            for n in range(12):
                answers = await asyncio.gather(client.put(_PATH, json={"crypto_decimals": n}),
                                               client.put(_PATH, json={"stable_decimals": n}),
                                               client.put(_PATH, json={"mask": n % 2 == 1}))
                assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
                now = (await client.get(_PATH)).json()
                assert (now["crypto_decimals"], now["stable_decimals"], now["mask"]) == (n, n, n % 2 == 1), (n, now)
            await client.put(_PATH, json={"crypto_decimals": 6, "stable_decimals": 2, "mask": False})
    asyncio.run(rounds())
