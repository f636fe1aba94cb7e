"""A real coinwire server shared by the API tests of a module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from coinwire.api.client import RpcClient
from tests.conftest import NATS_URL, nats_namespace, postgres_database
from tests.server import ServerProcess, free_port

# the shared server's SMTP relay: a login whose password the secret-grep tests look for, at a port where nothing
# listens (a send is refused at once, and must say so without the password)
SMTP_PASSWORD = "smtp-relay-password-never-shown-31337"
SMTP_ENV = {"COINWIRE_NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "COINWIRE_NOTIFICATIONS_SMTP_PORT": str(free_port()),
            "COINWIRE_NOTIFICATIONS_SMTP_SECURITY": "none", "COINWIRE_NOTIFICATIONS_SMTP_USERNAME": "coinwire",
            "COINWIRE_NOTIFICATIONS_SMTP_PASSWORD": SMTP_PASSWORD}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("server")), env=SMTP_ENV)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def rpc(server: ServerProcess) -> AsyncIterator[RpcClient]:
    async with RpcClient(server.ws) as client:
        yield client


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A test server's store: its default SQLite file, or a throwaway database on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield {}
        return
    with postgres_database() as url:
        yield {"COINWIRE_STORE_URL": url}


@pytest.fixture(scope="module", params=["memory", pytest.param("nats", marks=pytest.mark.services)])
def bus_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server on the in-process bus, then one on NATS JetStream under a namespace of its own."""
    if request.param == "memory":
        proc = ServerProcess(Path(tmp_path_factory.mktemp("memory-bus")))
        proc.start()
        yield proc
        proc.stop()
        return
    with nats_namespace() as namespace:
        proc = ServerProcess(Path(tmp_path_factory.mktemp("nats-bus")), env={"COINWIRE_BUS_URL": NATS_URL,
                                                                               "COINWIRE_BUS_NAMESPACE": namespace})
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()

