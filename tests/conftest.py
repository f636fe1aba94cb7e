"""Shared test fixtures: where the recorded market data lives, and real-service requirements."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("COINWIRE_SHARED_DATA", ROOT.parent / "shared" / "data"))
REQUIRE_SERVICES = os.environ.get("COINWIRE_REQUIRE_SERVICES") == "1"

POSTGRES_URL = os.environ.get("COINWIRE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("COINWIRE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
NATS_URL = os.environ.get("COINWIRE_TEST_NATS_URL", "nats://127.0.0.1:4222")


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a reason when the data is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"recorded market data not found at {path} (../shared/data is absent)")
    return path


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a real service is down, or fail when COINWIRE_REQUIRE_SERVICES=1 (CI)."""
    if not _reachable(host, port):
        unavailable(f"{name} is not reachable at {host}:{port}")


def unavailable(message: str) -> None:
    """What the machine lacks for a test: skipped, or failed when COINWIRE_REQUIRE_SERVICES=1 (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}, and COINWIRE_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


async def _admin_sql(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a database of its own on the test PostgreSQL server, dropped afterwards (a server's store)."""
    from sqlalchemy.engine import make_url

    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"cw_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """The name of a schema of its own in the test PostgreSQL database, dropped with what it holds afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"cw_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        await _admin_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh, started store, once a SQLite file and once a throwaway PostgreSQL schema: the test runs on both
    (a module with a `store` fixture of its own uses that one; `indirect=True` picks one of the two)."""
    from coinwire.store import Store

    if request.param == "sqlite":
        async with Store(f"sqlite:///{tmp_path / 'store.db'}") as started:
            yield started
        return
    async with postgres_schema() as schema, Store(POSTGRES_URL, schema=schema) as started:
        yield started


@contextmanager
def nats_namespace() -> Iterator[str]:
    """A bus namespace of its own on the test NATS server (`COINWIRE_BUS_NAMESPACE`), its JetStream stream deleted afterwards."""
    from urllib.parse import urlsplit

    from coinwire.bus.nats import NatsBus

    url = urlsplit(NATS_URL)
    require_service("NATS", url.hostname or "127.0.0.1", url.port or 4222)
    namespace = f"t{uuid.uuid4().hex[:16]}"

    async def delete() -> None:
        bus = NatsBus(NATS_URL, namespace)
        await bus.start()
        try:
            await bus.delete_stream()
        finally:
            await bus.close()

    try:
        yield namespace
    finally:
        # on a thread of its own: this may end inside an async test, whose loop runs here
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, delete()).result()

