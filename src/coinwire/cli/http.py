"""The CLI's requests to a running server: its address, the caller's token (COINWIRE_TOKEN), failures as one clear line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from coinwire.cli.user import token_headers
from coinwire.config import ConfigError, Settings, load_settings

__all__ = ["UrlOption", "server_base", "server_call", "server_url"]

_err = Console(stderr=True, soft_wrap=True)  # never break a URL across lines


def _fail(message: str) -> None:
    _err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


UrlOption = typer.Option(None, "--url", help="Server URL (default from the configuration: http://127.0.0.1:8000).")


def server_base(ctx: typer.Context, url: str | None) -> str:
    """The server a command talks to: `--url`, else the one the root options' configuration names (read only then)."""
    options = ctx.find_root().params or {}

    def settings() -> Settings:
        try:
            return load_settings(options.get("config"), {"data_dir": options.get("data_dir")})
        except ConfigError as exc:
            _fail(str(exc))
            raise  # _fail exits

    return server_url(url, settings)


def server_url(url: str | None, settings: Callable[[], Settings]) -> str:
    """`--url` as given, else the configured server's (a wildcard bind address means this machine)."""
    if url:
        return url.rstrip("/")
    s = settings()
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
    return f"http://{host}:{s.port}"


def server_call(base: str, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
    """One request; the answer's JSON, or exit 2 naming the error's code and message (or why the server was not reached)."""
    try:
        response = httpx.request(method, base + path, params={k: v for k, v in (params or {}).items() if v is not None},
                                 json=body, timeout=10, headers=token_headers())
    except httpx.HTTPError as exc:
        _fail(f"cannot reach coinwire at {base}: {exc}. Is `coinwire serve` running?")
    try:
        answer = response.json()
    except ValueError:
        _fail(f"{base}{path} answered HTTP {response.status_code} without JSON: is {base} a coinwire server?")
    if response.status_code >= 400:
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        _fail(f"{error.get('code', response.status_code)}: {error.get('message', response.text)}")
    return answer
