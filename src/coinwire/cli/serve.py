"""`coinwire serve`: the platform and its HTTP server (the composition root builds it: coinwire.app.create_app)."""

from __future__ import annotations

import typer

from coinwire.cli.common import console, err, root_settings

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Address to bind (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to bind (default 8000)."),
) -> None:
    """Start the platform (gateway, paper exchanges, API) on the configured ports."""
    import uvicorn

    from coinwire.api.ws_protocol import FastWebSocketProtocol
    from coinwire.app import create_app
    from coinwire.logs import configure_logging

    settings = root_settings(ctx, host=host, port=port)
    configure_logging(settings.log_level)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] binding {settings.host}: put TLS and authentication in front of coinwire")
    console.print(f"coinwire serving on http://{settings.host}:{settings.port}  (data: {settings.data_path})")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning",
        ws_max_size=1 << 20, ws_per_message_deflate=False,
        ws=FastWebSocketProtocol,
    )
