"""Shared fixtures of the auth tests: a fresh, started store on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coinwire.store import Store
from tests.conftest import POSTGRES_URL, postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh store: a SQLite file, or a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        async with Store(f"sqlite:///{tmp_path / 'store.db'}") as started:
            yield started
        return
    async with postgres_schema() as schema, Store(POSTGRES_URL, schema=schema) as started:
        yield started
