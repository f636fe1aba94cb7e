"""What every command module of the CLI shares: the consoles, one way to fail, the settings the root options choose."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from coinwire.config import ConfigError, Settings, load_settings

__all__ = ["console", "err", "fail", "on_store", "root_settings"]

T = TypeVar("T")

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


def on_store(settings: Settings, read: Callable[[Any], Awaitable[T]]) -> T | None:
    """`read(store)` on the configured store, started and closed around it; None when the default SQLite file
    does not exist (nothing was ever stored: a command that only reads must not create one)."""
    from coinwire.store import Store

    if not settings.store_url and not (settings.data_path / "coinwire.db").exists():
        return None

    async def run() -> T:
        store = Store(settings.resolved_store_url)
        await store.start()
        try:
            return await read(store)
        finally:
            await store.close()

    return asyncio.run(run())
