"""The HTTP app of a process without the api role: /healthz, /readyz and /metrics only (docs/SCALING.md).

Every role process answers its probes and its scrape on its own `--port`, so an orchestrator
can check a marketdata or gateway process as it checks an api one. /metrics takes the scrape
token (`COINWIRE_METRICS_TOKEN`, as a bearer token) when one is set; without one it answers
anyone who reaches the port (there is no user here to be an admin: bind it to a private address).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from coinwire import __version__
from coinwire.api.app import Lifespan
from coinwire.api.rest import json_response

__all__ = ["create_ops_app"]


def create_ops_app(readiness: Callable[[], Awaitable[dict[str, Any]]], lifespan: Lifespan, env: Mapping[str, str],
                   roles: list[str]) -> FastAPI:
    """The probes and the scrape over `readiness` (Platform.readiness); `lifespan` starts and stops the roles' services."""
    token = env.get("COINWIRE_METRICS_TOKEN", "").encode()
    app = FastAPI(title=f"coinwire ({', '.join(roles)})", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        """Liveness: the process answers."""
        return json_response({"status": "ok", "roles": roles})

    @app.get("/readyz")
    async def readyz() -> Response:
        """Readiness: 200 when the ports answer and no role waits; `roles` says what each waits for."""
        report = await readiness()
        return json_response(report, 200 if report["ready"] else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of this process (`coinwire_process_roles` names its roles)."""
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip().encode()
            if not hmac.compare_digest(given, token):
                return json_response({"error": {"code": "unauthorized", "message": "the metrics token is required"}}, 401)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
