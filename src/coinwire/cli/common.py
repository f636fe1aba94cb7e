"""What every command module of the CLI shares: the consoles, one way to fail, the settings the root options choose."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from coinwire.config import ConfigError, Settings, load_settings

__all__ = ["console", "err", "fail", "root_settings"]

console = Console()
err = Console(stderr=True, soft_wrap=True)  # never break a URL or a path across lines


def fail(message: str, code: int = 2) -> NoReturn:
    """One red line on stderr and exit `code`."""
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def root_settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings for the root command's --config / --data-dir, with `overrides` (flags of the command) on top."""
    root = ctx.find_root().params
    try:
        return load_settings(root.get("config"), {"data_dir": root.get("data_dir"), **overrides})
    except ConfigError as exc:
        fail(str(exc))
