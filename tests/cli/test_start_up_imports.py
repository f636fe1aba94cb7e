"""What a fresh process loads: the `coinwire` command, the server and the journal's helper skip the libraries they do not use.

Every command, server start and helper (re)start pays for what it imports; these were a second or more each.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("ccxt", "sqlalchemy", "sqlalchemy.ext.asyncio", "alembic", "argon2", "redis")


def loaded_after(statement: str) -> set[str]:
    """The HEAVY modules a new interpreter holds after `statement`."""
    probe = f"import json, sys\n{statement}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("statement", "not_loaded"),
    [
        # the command: the views of a server need httpx, not the store, CCXT or the password hasher
        ("import coinwire.cli", {"ccxt", "sqlalchemy", "argon2", "redis"}),
        # the server on its embedded defaults: no CCXT without a CCXT feed, no redis-py without a Redis cache
        ("import coinwire.cli, coinwire.app", {"ccxt", "redis"}),
        # the journal's helper (started at a lower priority): SQLAlchemy's core, not its asyncio engine or the migrations
        ("import coinwire.store.journal_helper", {"ccxt", "sqlalchemy.ext.asyncio", "alembic", "argon2", "redis"}),
    ],
    ids=["command", "server", "journal-helper"],
)
def test_a_process_loads_no_library_its_start_does_not_use(statement: str, not_loaded: set[str]) -> None:
    """Each library still loads where it is used: tests/venues/test_errors.py (CCXT), tests/auth/test_ratelimit.py (redis-py)."""
    assert loaded_after(statement) & not_loaded == set()

