"""The HTTP server: JSON-RPC at /rpc, order events at /ws/orders, the xWrap REST routes, the web dashboard, OpenAPI, metrics, health.

It mounts routes on what it is given; it builds no service. The composition root (`coinwire.app.create_app`)
builds the platform, the access layer, the API and the run manager, and hands them here with its lifespan.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Receive, Scope, Send

from coinwire import __version__
from coinwire.api.access import Access
from coinwire.api.accounts_routes import add_accounts_routes
from coinwire.api.analysis_routes import add_analysis_routes
from coinwire.api.auth_routes import add_auth_routes
from coinwire.api.cryptick_routes import add_cryptick_routes
from coinwire.api.forwarding import Forwarder
from coinwire.api.frontier_routes import add_frontier_routes
from coinwire.api.guard import GuardMiddleware
from coinwire.api.import_routes import add_import_routes
from coinwire.api.market_routes import add_market_routes
from coinwire.api.methods import Api
from coinwire.api.notifications_routes import add_notification_routes
from coinwire.api.ohlcv_routes import add_ohlcv_routes
from coinwire.api.orders_ws import (
    ORDERS_WS_PATH,
    POSITIONS_WS_PATH,
    WALLET_SETS_WS_PATH,
    orders_ws_asgi,
    positions_ws_asgi,
    wallet_sets_ws_asgi,
)
from coinwire.api.outside_signal_routes import add_outside_signal_routes
from coinwire.api.portfolio_balance_routes import add_portfolio_balance_routes
from coinwire.api.portfolio_daily_routes import add_portfolio_daily_routes
from coinwire.api.portfolio_routes import add_portfolio_routes
from coinwire.api.position_routes import add_position_routes
from coinwire.api.prefs_routes import add_preferences_routes
from coinwire.api.rates_routes import add_rates_routes
from coinwire.api.rest import add_xwrap_routes, json_response
from coinwire.api.route_forwarding import GatewayRoutesForwarder
from coinwire.api.rpc import rpc_asgi
from coinwire.api.rulesets_routes import add_rulesets_routes
from coinwire.api.runs_routes import add_runs_routes
from coinwire.api.schedules_routes import add_schedules_routes
from coinwire.api.trades_routes import add_trades_routes
from coinwire.api.web_routes import add_web_routes
from coinwire.api.webhook_routes import add_webhook_routes
from coinwire.config import Settings
from coinwire.services.account_import import AccountImports
from coinwire.services.accounts import MembersRepository
from coinwire.services.external_accounts import ExternalAccounts
from coinwire.services.gateway import Gateway
from coinwire.services.market_data import MarketData
from coinwire.services.notifications.service import NotificationService
from coinwire.services.ohlcv import OhlcvQuery
from coinwire.services.outside_signals import OutsideSignals
from coinwire.services.portfolio_ohlcv import PortfolioOhlcv
from coinwire.services.public_trades import PublicTrades
from coinwire.services.rate_history import RateHistory
from coinwire.services.runs import RunManager
from coinwire.store import Store

__all__ = ["create_http_app", "CoinwireApp", "Served"]

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Served(Protocol):
    """The services the HTTP app serves from (`coinwire.app.Platform` is one), so that api never imports app."""

    settings: Settings
    store: Store
    gateway: Gateway
    market: MarketData
    ohlcv: OhlcvQuery
    portfolio_ohlcv: PortfolioOhlcv
    public_trades: PublicTrades
    rate_history: RateHistory
    notifications: NotificationService
    imports: AccountImports
    external: ExternalAccounts

    async def readiness(self) -> dict[str, Any]: ...

RPC_PATH = "/rpc"


class CoinwireApp(FastAPI):
    """FastAPI, except that `/rpc` and `/ws/orders` WebSocket connections go straight to `rpc_asgi` and `orders_ws_asgi`.

    Middleware and routing cost nothing much once per connection, but their wrappers sit
    on every message a connection sends; JSON-RPC connections carry thousands a second.
    """

    def __init__(self, api: Api, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state.api = api
        self._api = api

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
            if path == POSITIONS_WS_PATH:
                await positions_ws_asgi(scope, receive, send, self._api)
                return
            if path == WALLET_SETS_WS_PATH:
                await wallet_sets_ws_asgi(scope, receive, send, self._api)
                return
        await super().__call__(scope, receive, send)


def create_http_app(platform: Served, api: Api, access: Access, runs: RunManager, lifespan: Lifespan,
                    outside: OutsideSignals, *, forward: Forwarder | None = None, guarded: bool = True) -> FastAPI:
    """The FastAPI app over built services; `lifespan` starts and stops them (and the run manager) with the server.

    `forward`: an api replica's (a process apart from the gateway): the routes that need the gateway or the engine
    in memory (api.forwarding.GATEWAY_ROUTES) are sent to the gateway's process (api/route_forwarding.py).
    `guarded=False`: the gateway process's copy that runs those forwarded requests, whose replica's guard has
    already authenticated, limited, checked and audited them.
    """
    settings = platform.settings
    app = CoinwireApp(
        api,
        title="coinwire",
        version=__version__,
        description="Exchange gateway: paper exchanges on real order books, logical wallets, orders.",
        lifespan=lifespan,
    )

    if forward is not None:  # inside the guard (added before it): a caller is authenticated first
        app.add_middleware(GatewayRoutesForwarder, forwarder=forward)
    # every HTTP route passes the guard: rules table, authentication, rate limits, body size
    if guarded:
        app.add_middleware(GuardMiddleware, auth=access.service, limiter=access.limiter, limits=access.limits,
                           audit=access.audit, metrics_token=access.metrics_token)
    if guarded and access.cors_origins:  # outside the guard: preflights are answered before authentication
        app.add_middleware(CORSMiddleware, allow_origins=access.cors_origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    add_auth_routes(app, access.service, access.audit, platform.gateway.recent_logs, access.registration)
    add_preferences_routes(app, platform.store, platform.market)
    add_notification_routes(app, platform.notifications)
    add_xwrap_routes(app, api)
    add_accounts_routes(app, api, access.repo, MembersRepository(platform.store), platform.external)
    add_import_routes(app, api, platform.imports)
    add_webhook_routes(app, api, platform.external)
    add_cryptick_routes(app, add_runs_routes(app, runs, access.owners))  # the seed's strategy API over the same access
    add_outside_signal_routes(app, outside)
    add_schedules_routes(app, api)
    add_rulesets_routes(app, api)
    add_position_routes(app, api)
    add_frontier_routes(app, settings)
    add_ohlcv_routes(app, platform.ohlcv)
    add_portfolio_routes(app, api, platform.portfolio_ohlcv)
    add_portfolio_daily_routes(app, api)
    add_portfolio_balance_routes(app, api, platform.market)
    add_market_routes(app, platform.market)
    add_trades_routes(app, platform.public_trades)
    add_rates_routes(app, platform.rate_history)
    add_analysis_routes(app, api)
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
