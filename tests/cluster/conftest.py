"""Fixtures of the private-cluster tests: one PostgreSQL template data directory per session, a `Cluster` closed afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import pg_template, tools_missing
from tests.conftest import unavailable


@pytest.fixture(scope="session")
def pg_data_template() -> Iterator[Path]:
    """An initdb'd data directory made once per session (each cluster copies it)."""
    missing = tools_missing()
    if missing:
        unavailable(f"a private cluster needs PostgreSQL, NATS and Redis binaries: {missing}")
    data = pg_template()
    yield data
    shutil.rmtree(data.parent, ignore_errors=True)
