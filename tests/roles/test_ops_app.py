"""A process without the api role serves /healthz, /readyz and /metrics only; /metrics takes the scrape token when one is set."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from coinwire import metrics
from coinwire.api.ops_app import create_ops_app
from coinwire.app import create_app
from coinwire.bus.nats import NatsBus
from coinwire.config import load_settings
from tests.conftest import NATS_URL, REDIS_URL, postgres_database, require_service

TOKEN = "t" * 40


@asynccontextmanager
async def _nothing(app: FastAPI) -> AsyncIterator[None]:
    yield


async def test_the_probes_and_the_scrape_token() -> None:
    waits: dict[str, Any] = {"ready": True, "roles": {"marketdata": []}}

    async def readiness() -> dict[str, Any]:
        return dict(waits)

    metrics.set_process_roles(frozenset({"marketdata"}))
    app = create_ops_app(readiness, _nothing, {"COINWIRE_METRICS_TOKEN": TOKEN}, ["marketdata"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok", "roles": ["marketdata"]}
        assert (await http.get("/readyz")).status_code == 200
        waits["ready"] = False
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200 and 'coinwire_process_roles{role="marketdata"} 1.0' in scraped.text
        for path in ("/rpc", "/api/v1/me", "/docs", "/openapi.json"):
            assert (await http.get(path)).status_code == 404
    open_app = create_ops_app(readiness, _nothing, {}, ["marketdata"])  # no token set: open (bind it to a private address)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=open_app), base_url="http://ops") as http:
        assert (await http.get("/metrics")).status_code == 200


@pytest.fixture
def store_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.mark.services
async def test_a_gateway_process_without_the_api_role_serves_the_probes_only(store_url: str, tmp_path: Path) -> None:
    parts = urlsplit(NATS_URL)
    require_service("NATS", parts.hostname or "127.0.0.1", parts.port or 4222)
    namespace = f"t28roles{uuid.uuid4().hex[:12]}"
    settings = load_settings(env={"COINWIRE_DATA_DIR": str(tmp_path), "COINWIRE_STORE_URL": store_url, "COINWIRE_BUS_URL": NATS_URL,
                                  "COINWIRE_CACHE_URL": REDIS_URL, "COINWIRE_NAMESPACE": namespace, "COINWIRE_ROLES": "gateway"})
    app = create_app(settings, env={"COINWIRE_ADMIN_PASSWORD": "admin-test-password"})
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
                assert (await http.get("/healthz")).json() == {"status": "ok", "roles": ["gateway"]}
                ready = await http.get("/readyz")  # no marketdata process in this namespace: the gateway waits for one
                assert ready.status_code == 503 and [w["code"] for w in ready.json()["roles"]["gateway"]] == ["market_data_missing"]
                assert (await http.get("/xwrap/v1/exchanges")).status_code == 404
                assert 'coinwire_process_roles{role="gateway"} 1.0' in (await http.get("/metrics")).text
    finally:
        bus = NatsBus(NATS_URL, namespace)
        await bus.start()
        await bus.delete_stream()
        await bus.close()
