"""On an empty PostgreSQL store, processes starting together make the first admin once (Store.exclusive, the start-up lock).

Each "process" is a Store of its own (its own engine and connections) on one fresh database, as
separate `coinwire serve` processes are; they migrate and bootstrap at the same moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sqlalchemy import func, select

from coinwire.auth.repository import AuthRepository
from coinwire.auth.service import AuthService
from coinwire.auth.tokens import TokenSigner
from coinwire.store import Store
from coinwire.store.tables import users
from tests.conftest import postgres_database

pytestmark = pytest.mark.services

STARTS = 4


@pytest.fixture
def url() -> Iterator[str]:
    """A fresh, empty database of its own (a sync fixture: it makes and drops the database on a loop of its own)."""
    with postgres_database() as made:
        yield made


async def test_processes_starting_together_on_an_empty_store_make_one_admin(url: str) -> None:
    stores = [Store(url) for _ in range(STARTS)]
    try:
        await asyncio.gather(*(s.start() for s in stores))  # the migrations' own lock: one migrates, the others find it done
        services = [AuthService(AuthRepository(s), TokenSigner(b"k" * 32)) for s in stores]
        answers = await asyncio.gather(*(svc.bootstrap(None) for svc in services))
        assert sum(a is not None for a in answers) == 1  # one start made the admin and printed its password
        async with stores[0].engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(users))).scalar_one() == 1
            assert (await conn.execute(select(users.c.username, users.c.role))).all() == [("admin", "admin")]
        assert await services[1].bootstrap(None) is None  # and a later start makes none
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_the_start_up_lock_admits_one_holder_at_a_time_across_engines(url: str) -> None:
    stores = [Store(url) for _ in range(3)]
    try:
        for s in stores:
            await s.start()
        spans: list[tuple[float, float]] = []

        async def hold(store: Store) -> None:
            async with store.exclusive():
                began = time.monotonic()
                await asyncio.sleep(0.15)
                spans.append((began, time.monotonic()))

        await asyncio.gather(*(hold(s) for s in stores))
        spans.sort()
        assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
        # released with its transaction even when the block raises: the next holder gets it at once
        with pytest.raises(RuntimeError):
            async with stores[0].exclusive():
                raise RuntimeError("boom")
        async with asyncio.timeout(2):
            async with stores[1].exclusive():
                pass
    finally:
        for s in stores:
            await s.close()


async def test_three_servers_starting_together_on_an_empty_store_make_one_admin(url: str, tmp_path: Any) -> None:
    """The whole start of `coinwire serve` (create_app's lifespan: migrations, gateway, access), three at once, separate engines."""
    from coinwire.app import create_app
    from coinwire.config import load_settings

    apps = [create_app(load_settings(env={"COINWIRE_DATA_DIR": str(tmp_path / str(n)), "COINWIRE_STORE_URL": url,
                                          "COINWIRE_PORTFOLIO_TRACKING": "false", "COINWIRE_RECORD_RATES": "false"}),
                       env={"COINWIRE_ADMIN_PASSWORD": "admin-test-password", "COINWIRE_JWT_SECRET": "s" * 40})
            for n in range(3)]
    async with AsyncExitStack() as stack:
        await asyncio.gather(*(stack.enter_async_context(app.router.lifespan_context(app)) for app in apps))
        probe = Store(url)
        await probe.start()
        try:
            async with probe.engine.connect() as conn:
                assert (await conn.execute(select(users.c.username, users.c.role))).all() == [("admin", "admin")]
        finally:
            await probe.close()
