"""The data directory is created 0700 and the files holding secrets 0600: the store (and its WAL, shared memory and
journal), the signing secret and the master keys; by the command line and by a running server alike."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import ServerProcess
from tests.test_cli import coinwire


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems start processes with: files 0644 and directories 0755 unless the code says otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secrets_of(data: Path) -> list[Path]:
    """Every file under the data directory that may hold a secret (all but logs)."""
    return [p for p in data.rglob("*") if p.is_file() and p.name != "server.log"]


def test_the_command_line_creates_a_private_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "coinwire"
    assert coinwire("--data-dir", str(data), "user", "add", "alice", "--password-stdin", input="alice-password\n").returncode == 0
    assert coinwire("--data-dir", str(data), "keys", "set", "binance", "--user", "alice", input="the-key\nthe-secret\n").returncode == 0
    assert mode(data) == 0o700
    files = {p.name: mode(p) for p in secrets_of(data)}
    assert {"coinwire.db", "jwt_secret", "master_keys.json"} <= set(files)
    assert {name: m for name, m in files.items() if m != 0o600} == {}


def test_a_server_creates_a_private_data_directory_and_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(tmp_path, env={"COINWIRE_DATA_DIR": str(data)})
    server.start()
    try:
        server.login()  # writes a session: the store's journal and database have been written
        assert mode(data) == 0o700
        journal = data / "coinwire.db.journal"
        assert journal.is_dir() and mode(journal) == 0o700
        files = {str(p.relative_to(data)): mode(p) for p in secrets_of(data)}
        assert {"coinwire.db", "coinwire.db-wal", "coinwire.db-shm", "jwt_secret"} <= set(files)
        assert any(name.endswith(".cwj") for name in files)
        assert {name: m for name, m in files.items() if m != 0o600} == {}
    finally:
        server.stop()


def test_a_database_left_readable_by_an_earlier_version_is_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "old"
    assert coinwire("--data-dir", str(data), "user", "add", "alice", "--password-stdin", input="alice-password\n").returncode == 0
    (data / "coinwire.db").chmod(0o644)
    assert coinwire("--data-dir", str(data), "user", "list").returncode == 0
    assert mode(data / "coinwire.db") == 0o600
