"""Alembic environment: runs coinwire's migrations on a given connection or on the configured URL.

coinwire itself passes an open connection (`config.attributes["connection"]`, see
coinwire.store.migrate). The `alembic` command line, run with src/coinwire/store/alembic.ini
and `-x url=...` (or COINWIRE_STORE_URL), opens its own async engine instead.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from coinwire.store.store import normalise_url
from coinwire.store.tables import metadata

config = context.config


def _configure_and_run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("COINWIRE_STORE_URL")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set COINWIRE_STORE_URL")
    return normalise_url(url)


async def _run_online() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_configure_and_run)
    finally:
        await engine.dispose()


def _main() -> None:
    if context.is_offline_mode():
        context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
    else:
        asyncio.run(_run_online())


_main()
