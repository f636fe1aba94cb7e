"""`coinwire user ...` and `coinwire keys ...` as subprocesses on a data directory (no server)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import coinwire


def test_users_from_the_command_line(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    made = coinwire(*data, "user", "add", "alice", "--role", "viewer", "--password-stdin", input="alice-password\n")
    assert made.returncode == 0, made.stderr
    assert "created user alice" in made.stdout and "alice-password" not in made.stdout
    users = json.loads(coinwire(*data, "user", "list", "--json").stdout)
    assert [(u["username"], u["role"], u["plan"], u["disabled"]) for u in users] == [("alice", "viewer", "free", False)]
    again = coinwire(*data, "user", "add", "alice", "--password-stdin", input="another-password\n")
    assert again.returncode == 2 and "user_exists" in again.stderr
    weak = coinwire(*data, "user", "add", "bob", "--password-stdin", input="short\n")
    assert weak.returncode == 2 and "weak_password" in weak.stderr
    assert coinwire(*data, "user", "passwd", "alice", "--password-stdin", input="new-password-1\n").returncode == 0
    assert coinwire(*data, "user", "disable", "alice").returncode == 0
    assert json.loads(coinwire(*data, "user", "list", "--json").stdout)[0]["disabled"] is True
    unknown = coinwire(*data, "user", "disable", "nobody")
    assert unknown.returncode == 2 and "unknown_user" in unknown.stderr


def test_keys_set_list_rotate(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert coinwire(*data, "user", "add", "alice", "--password-stdin", input="alice-password\n").returncode == 0
    stored = coinwire(*data, "keys", "set", "binance", "--user", "alice", input="the-api-key\nthe-secret\n")
    assert stored.returncode == 0, stored.stderr
    listed = coinwire(*data, "keys", "list").stdout
    assert "binance" in listed and "the-secret" not in listed
    rotated = coinwire(*data, "keys", "rotate")
    assert rotated.returncode == 0 and "1 credentials re-encrypted" in rotated.stdout
    assert b"the-secret" not in (tmp_path / "coinwire.db").read_bytes()


def test_keys_set_refuses_an_empty_or_blank_key_or_secret(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert coinwire(*data, "user", "add", "alice", "--password-stdin", input="alice-password\n").returncode == 0
    for given in (" \nthe-secret\n", "the-api-key\n\t \n", "\r\nthe-secret\r\n", "\nthe-secret\n", "the-api-key\n\n"):
        refused = coinwire(*data, "keys", "set", "binance", "--user", "alice", input=given)
        assert refused.returncode != 0, given
        assert "empty_credentials" in refused.stderr and "must not be empty" in refused.stderr, refused.stderr
    assert "binance" not in coinwire(*data, "keys", "list").stdout  # nothing was stored
