"""The HTTP server: JSON-RPC at /rpc, the xWrap REST routes, OpenAPI, metrics and health checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from coinwire import __version__
from coinwire.api.rest import add_xwrap_routes, json_response
from coinwire.api.rpc import rpc_endpoint
from coinwire.app import Platform
from coinwire.config import Settings

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    platform = Platform(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await platform.start()
        try:
            yield
        finally:
            await platform.stop()

    app = FastAPI(
        title="coinwire",
        version=__version__,
        description="Exchange gateway: paper exchanges on real order books, logical wallets, orders.",
        lifespan=lifespan,
    )
    app.state.platform = platform

    @app.websocket("/rpc")
    async def rpc(websocket: WebSocket) -> None:
        await rpc_endpoint(websocket, platform.api)

    add_xwrap_routes(app, platform.api)

    @app.get("/", tags=["ops"])
    async def index() -> Response:
        """Where things are (the web dashboard arrives with its own issue)."""
        return json_response(
            {
                "name": "coinwire",
                "version": __version__,
                "rpc": "/rpc",
                "rest": "/uri_map",
                "openapi": "/openapi.json",
                "metrics": "/metrics",
                "health": ["/healthz", "/readyz"],
                "exchanges": {n: e.status for n, e in platform.gateway.exchanges.items()},
            }
        )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Response:
        """Liveness: the process answers."""
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> Response:
        """Readiness: store, bus and cache answer (exchange statuses are reported alongside)."""
        report = await platform.readiness()
        return json_response(report, 200 if report["ready"] else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
