"""The data directory and the files that hold secrets are created readable by their owner only (0700 / 0600).

The data directory holds the store (password hashes, sessions, the credential vault), the
token signing secret and the master keys. Modes are given when a file or directory is
created, never widened later; a database file that an earlier version left readable by
others is narrowed to 0600 when the store opens it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import structlog

__all__ = ["private_dir", "private_file", "narrow", "PRIVATE_DIR", "PRIVATE_FILE"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

log = structlog.get_logger("coinwire")


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) with mode 0700 for the directory itself; an existing one is left as it is."""
    if not path.is_dir():
        try:
            path.mkdir(mode=PRIVATE_DIR, parents=True)
        except FileExistsError:  # another process of the same data directory made it first
            pass
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if it does not exist; narrow it to 0600 if others may read it."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        return path
    except FileExistsError:
        narrow(path)
    return path


def narrow(path: Path) -> None:
    """Take group and other permissions off an existing file (a no-op when it is private already or absent)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            path.chmod(mode & ~0o077)
        except PermissionError:  # not ours to change: say so, and go on
            log.warning("a file with secrets is readable by others and cannot be narrowed", path=str(path), mode=oct(mode))
