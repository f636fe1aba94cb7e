"""Failed sign-ins on a running server: one user's guesses are throttled, other names' failures never lock a user out,
and what a failed sign-in typed never reaches the log.

Every request here comes from one address (127.0.0.1), as everyone behind one proxy would.
The tests run in this order: the address's failures add up across them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import ADMIN_PASSWORD, ServerProcess

ADDRESS_PAUSE = 5.0  # the longest an address's failures with other names hold back a right password (docs/SECURITY.md)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("signin")))
    proc.start()
    yield proc
    proc.stop()


def sign_in(server: ServerProcess, username: str, password: str) -> httpx.Response:
    return httpx.post(server.http + "/api/v1/auth/login", json={"username": username, "password": password}, timeout=30)


def test_a_password_typed_as_the_user_name_never_reaches_the_log(server: ServerProcess) -> None:
    typed = f"Tr0ub4dor-{uuid.uuid4().hex}"  # a password typed into the user-name field
    other = f"correct-horse-{uuid.uuid4().hex}"
    assert sign_in(server, typed, other).status_code == 401
    assert sign_in(server, "admin", typed).status_code == 401  # and as a wrong password of an existing user
    time.sleep(0.5)
    log = server.log_path.read_text(errors="replace")
    assert log.count("sign-in refused") >= 2  # the failures were logged
    assert typed not in log and other not in log and typed[:20] not in log


def test_repeated_wrong_passwords_for_one_user_are_still_throttled(server: ServerProcess) -> None:
    password = f"carl-{uuid.uuid4().hex[:12]}"
    with server.client() as admin:
        assert admin.post("/api/v1/users", json={"username": "carl", "password": password}).status_code == 201
    assert [sign_in(server, "carl", f"guess-{i}").status_code for i in range(5)] == [401] * 5
    locked = sign_in(server, "carl", password)  # even the right one waits: the pause must not tell right from wrong
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "login_locked"
    time.sleep(int(locked.headers["Retry-After"]) + 0.1)
    assert sign_in(server, "carl", password).status_code == 200


def test_made_up_names_from_one_address_never_lock_out_an_existing_users_right_password(server: ServerProcess) -> None:
    for i in range(9):  # the finding: nine made-up names used to lock the admin out of this address
        assert sign_in(server, f"ghost-{i}-{uuid.uuid4().hex[:6]}", "whatever-password").status_code in (401, 429)
    assert sign_in(server, "admin", ADMIN_PASSWORD).status_code == 200
    # keep spraying until the address reaches its ceiling: spraying is stopped...
    answers = [sign_in(server, f"spray-{i}-{uuid.uuid4().hex[:6]}", "Summer2026!") for i in range(40)]
    refused = [r for r in answers if r.status_code == 429]
    assert refused and refused[-1].json()["error"]["code"] == "login_locked"
    assert all(r.status_code in (401, 429) for r in answers)
    # ...but the admin's right password waits at most the address's short pause, never the doubling ones
    start = time.monotonic()
    r = sign_in(server, "admin", ADMIN_PASSWORD)
    if r.status_code == 429:
        assert r.json()["error"]["code"] == "login_locked" and int(r.headers["Retry-After"]) <= ADDRESS_PAUSE, r.headers
        time.sleep(int(r.headers["Retry-After"]) + 0.1)
        r = sign_in(server, "admin", ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    assert time.monotonic() - start <= ADDRESS_PAUSE + 2


def test_a_spray_that_never_stops_never_locks_out_an_existing_users_right_password(server: ServerProcess) -> None:
    """The address stays past its ceiling (made-up names every try), and the admin still signs in at the first try."""
    for round_ in range(3):
        answers = [sign_in(server, f"endless-{round_}-{i}-{uuid.uuid4().hex[:6]}", "Winter2026!") for i in range(25)]
        assert all(r.status_code in (401, 429) for r in answers)
        assert answers[-1].status_code == 429  # the spray itself is refused past the ceiling
        assert sign_in(server, "admin", ADMIN_PASSWORD).status_code == 200, round_
    wrong = sign_in(server, "admin", "not-the-admin-password")  # a wrong password past the ceiling: refused, counted
    assert wrong.status_code == 429 and wrong.json()["error"]["code"] == "login_locked"
