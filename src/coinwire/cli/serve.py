"""`coinwire serve`: the platform and its HTTP server (the composition root builds it: coinwire.app.create_app)."""

from __future__ import annotations

import typer

from coinwire.cli.common import console, err, fail, root_settings
from coinwire.config import ConfigError

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Address to bind (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to bind (default 8000)."),
    roles: str | None = typer.Option(None, "--roles", help="Roles this process runs, a comma list of api, gateway, marketdata, "
                                     "engine, tracker, scheduler, notifier; or all (default; COINWIRE_ROLES). See docs/SCALING.md."),
) -> None:
    """Start the platform (gateway, paper exchanges, API) on the configured ports; with --roles, a part of it."""
    import uvicorn

    from coinwire.api.ws_protocol import FastWebSocketProtocol
    from coinwire.app import create_app
    from coinwire.logs import configure_logging

    settings = root_settings(ctx, host=host, port=port, roles=roles.split(",") if roles is not None else None)
    configure_logging(settings.log_level)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] binding {settings.host}: put TLS and authentication in front of coinwire")
    try:
        app = create_app(settings)
    except ConfigError as exc:  # what only building the platform finds (a demo_epoch too old to catch up from): exit 2
        fail(str(exc))
    shown = "" if settings.roles == ["all"] else f"  roles: {','.join(settings.roles)}"
    console.print(f"coinwire serving on http://{settings.host}:{settings.port}  (data: {settings.data_path}){shown}")
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="warning",
        ws_max_size=1 << 20, ws_per_message_deflate=False,
        ws=FastWebSocketProtocol,
    )
