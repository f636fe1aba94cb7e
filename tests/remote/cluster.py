"""A small cluster of role processes for the replicas' tests: one gateway process and two api replicas on a fresh namespace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import NATS_URL, REDIS_URL, postgres_database, require_service
from tests.server import ServerProcess

__all__ = ["Replicas", "replicas_cluster", "shared_env", "ready", "forget_namespace", "WAIT_SECONDS"]

WAIT_SECONDS = 2.0  # the replicas' gateway_wait_seconds


class Replicas:
    def __init__(self, gateway: ServerProcess, a: ServerProcess, b: ServerProcess, wait_seconds: float) -> None:
        self.gateway, self.a, self.b, self.wait_seconds = gateway, a, b, wait_seconds


def ready(server: ServerProcess, timeout: float = 30.0) -> None:
    """Until /readyz answers 200 (a replica has no exchanges of its own to wait for)."""
    server.until_readyz(200, timeout)


async def forget_namespace(namespace: str) -> None:
    """Remove a test namespace's JetStream stream and Redis keys."""
    from coinwire.bus.nats import NatsBus
    from coinwire.cache.redis import RedisCache

    bus, cache = NatsBus(NATS_URL, namespace), RedisCache(REDIS_URL, namespace)
    await bus.start()
    try:
        await bus.delete_stream()
        await cache.clear()
    finally:
        await bus.close()
        await cache.close()


@contextmanager
def shared_env(wait_seconds: float = WAIT_SECONDS) -> Iterator[dict[str, str]]:
    """The environment of every process of one cluster: a fresh database, its own NATS and Redis namespace, one secret."""
    for url in (NATS_URL, REDIS_URL):
        parts = urlsplit(url)
        require_service(parts.scheme, parts.hostname or "127.0.0.1", parts.port or 0)
    namespace = f"t28rem{uuid.uuid4().hex[:12]}"
    with postgres_database() as store_url:
        yield {"COINWIRE_STORE_URL": store_url, "COINWIRE_BUS_URL": NATS_URL, "COINWIRE_CACHE_URL": REDIS_URL,
               "COINWIRE_NAMESPACE": namespace, "COINWIRE_JWT_SECRET": "replicas-test-signing-secret-" + namespace,
               "COINWIRE_MASTER_KEY": "cnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnI=",
               "COINWIRE_GATEWAY_WAIT_SECONDS": str(wait_seconds),
               "COINWIRE_SIGNAL_PROVIDERS": "tradingview"}  # outside signals' routes go through the replicas too
    asyncio.run(forget_namespace(namespace))


@contextmanager
def replicas_cluster(tmp_path: Path, wait_seconds: float = WAIT_SECONDS, gateway_roles: str = "gateway,marketdata"
                     ) -> Iterator[Replicas]:
    """A gateway process (`gateway_roles`) and two `--roles api` on a fresh database and NATS/Redis namespace; stopped after."""
    with shared_env(wait_seconds) as shared:
        gateway = ServerProcess(tmp_path / "gw", env={**shared, "COINWIRE_ROLES": gateway_roles})
        a = ServerProcess(tmp_path / "a", env={**shared, "COINWIRE_ROLES": "api"})
        b = ServerProcess(tmp_path / "b", env={**shared, "COINWIRE_ROLES": "api"})
        for server in (gateway, a, b):
            server.data_dir.mkdir()
        try:
            gateway.start(timeout=40)
            a.start(wait_ready=False)
            b.start(wait_ready=False)
            ready(a)
            ready(b)
            yield Replicas(gateway, a, b, wait_seconds)
        finally:
            for server in (a, b, gateway):
                server.stop()
