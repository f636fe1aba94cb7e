"""The HTTP server: JSON-RPC at /rpc, order events at /ws/orders, the xWrap REST routes, the web dashboard, OpenAPI, metrics, health.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Receive, Scope, Send

from coinwire import __version__
from coinwire.api.accounts_routes import add_accounts_routes
from coinwire.api.auth_routes import add_auth_routes
from coinwire.api.frontier_routes import add_frontier_routes
from coinwire.api.guard import GuardMiddleware
from coinwire.api.market_routes import add_market_routes
from coinwire.api.ohlcv_routes import add_ohlcv_routes
from coinwire.api.orders_ws import ORDERS_WS_PATH, orders_ws_asgi
from coinwire.api.prefs_routes import add_preferences_routes
from coinwire.api.rest import add_xwrap_routes, json_response
from coinwire.api.rpc import rpc_asgi
from coinwire.api.runs_routes import add_runs_routes
from coinwire.api.trades_routes import add_trades_routes
from coinwire.api.web_routes import add_web_routes
from coinwire.app import Platform
from coinwire.auth.access import Access
from coinwire.config import Settings
from coinwire.services.accounts import MembersRepository

__all__ = ["create_app", "CoinwireApp"]

RPC_PATH = "/rpc"


class CoinwireApp(FastAPI):
    """FastAPI, except that `/rpc` and `/ws/orders` WebSocket connections go straight to `rpc_asgi` and `orders_ws_asgi`.

    Middleware and routing cost nothing much once per connection, but their wrappers sit
    on every message a connection sends; JSON-RPC connections carry thousands a second.
    """

    def __init__(self, platform: Platform, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state.platform = platform
        self._api = platform.api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path, root = scope["path"], scope.get("root_path", "")
            path = path[len(root):] if root and path.startswith(root) else path
            if path == RPC_PATH:
                await rpc_asgi(scope, receive, send, self._api)
                return
            if path == ORDERS_WS_PATH:
                await orders_ws_asgi(scope, receive, send, self._api)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    platform = Platform(settings)
    access = Access(settings, platform.store, os.environ, platform.market.display_currencies)
    platform.api.auth, platform.api.owners, platform.api.audit = access.service, access.owners, access.audit
    platform.api.connections = access.connections
    platform.api.rpc_limit = access.rpc_limit

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await platform.start()
        await access.start()
        # What start-up built (modules, tables, settings) lives as long as the process: take it
        # out of the collector's generations, so full collections walk only what serving made.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await access.close()
            await platform.stop()

    app = CoinwireApp(
        platform,
        title="coinwire",
        version=__version__,
        description="Exchange gateway: paper exchanges on real order books, logical wallets, orders.",
        lifespan=lifespan,
    )

    # every HTTP route passes the guard: rules table, authentication, rate limits, body size
    app.add_middleware(GuardMiddleware, auth=access.service, limiter=access.limiter, limits=access.limits, audit=access.audit,
                       metrics_token=access.metrics_token)
    if access.cors_origins:  # outside the guard: preflights are answered before authentication
        app.add_middleware(CORSMiddleware, allow_origins=access.cors_origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    add_auth_routes(app, access.service, access.audit, platform.gateway.recent_logs, access.registration)
    add_preferences_routes(app, platform.store, platform.market)
    add_xwrap_routes(app, platform.api)
    add_accounts_routes(app, platform.api, access.repo, MembersRepository(platform.store))
    add_runs_routes(app, settings, platform.gateway, access.owners)
    add_frontier_routes(app, settings)
    add_ohlcv_routes(app, platform.ohlcv)
    add_market_routes(app, platform.market)
    add_trades_routes(app, platform.public_trades)
    add_web_routes(app)  # the dashboard at / and /app/...

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Response:
        """Liveness: the process answers."""
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> Response:
        """Readiness: 200 when the store, bus and cache answer, 503 otherwise; `status` and `reasons` as get_status has them."""
        report = await platform.readiness()
        return json_response(report, 200 if report["ready"] else 503)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
