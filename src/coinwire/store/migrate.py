"""Alembic migrations applied programmatically from inside the package (no alembic.ini needed).

The script location is this package's `migrations` directory, so an installed coinwire
migrates its database on start exactly like a checkout does. Functions here take a
synchronous SQLAlchemy Connection (use `AsyncConnection.run_sync`), run in the caller's
transaction, and leave committing to the caller.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

__all__ = ["HEAD", "SCRIPT_LOCATION", "alembic_config", "upgrade", "downgrade", "current_revision"]

HEAD = "0027_fill_seqs"
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """A Config pointing at the packaged scripts; `connection` is handed to env.py."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Apply migrations up to `revision`; a database already there is left untouched."""
    command.upgrade(alembic_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in `alembic_version`, or None for an empty database."""
    return MigrationContext.configure(connection).get_current_revision()
