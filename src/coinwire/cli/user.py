"""`coinwire user add|list|passwd|disable` and `coinwire keys set|list|rotate`: users and the vault, on the store directly."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coinwire.config import ConfigError, load_settings
from coinwire.core.errors import CoinwireError

if TYPE_CHECKING:
    from coinwire.auth.service import AuthService

__all__ = ["user_app", "keys_app", "token_headers"]

user_app = typer.Typer(help="Manage users (roles admin/trader/viewer, plans free/pro).", no_args_is_help=True)
_err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def token_headers() -> dict[str, str]:
    """The Authorization header the CLI sends to a running server: COINWIRE_TOKEN (access token or API key)."""
    token = os.environ.get("COINWIRE_TOKEN", "")
    return {"Authorization": f"Bearer {token}"} if token else {}


def _with_service(ctx: typer.Context, work: Callable[[AuthService], Awaitable[T]]) -> T:
    options = (ctx.find_root().params if ctx else {}) or {}
    try:
        settings = load_settings(options.get("config"), {"data_dir": options.get("data_dir")})
    except ConfigError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None

    # imported here, not at the top: the store and the hasher load SQLAlchemy and argon2, which
    # every other `coinwire` command (token_headers's users among them) would pay for at start-up
    from coinwire.auth.repository import AuthRepository
    from coinwire.auth.service import AuthService
    from coinwire.auth.tokens import TokenSigner, load_secret
    from coinwire.private_files import private_dir
    from coinwire.store import Store

    async def run() -> T:
        private_dir(settings.data_path)
        store = Store(settings.resolved_store_url)
        await store.start()
        try:
            service = AuthService(AuthRepository(store), TokenSigner(load_secret(settings.data_path, os.environ)))
            return await work(service)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except CoinwireError as exc:
        _err.print(f"[red]error:[/red] {exc.code}: {escape(exc.message)}")
        raise typer.Exit(2) from None


def _password(given: str | None, stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if given:
        return given
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


PasswordStdin = typer.Option(False, "--password-stdin", help="Read the password from the first line of stdin.")


@user_app.command("add")
def add(
    ctx: typer.Context,
    username: str,
    role: str = typer.Option("trader", help="admin, trader or viewer."),
    plan: str = typer.Option("free", help="free or pro."),
    password_stdin: bool = PasswordStdin,
) -> None:
    """Create a user (asks for the password unless --password-stdin)."""
    password = _password(None, password_stdin)
    user = _with_service(ctx, lambda s: s.create_user(username, password, role, plan))
    typer.echo(f"created user {user['username']} (id {user['id']}, {user['role']}, {user['plan']})")


@user_app.command("list")
def list_(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every user with role, plan and state."""
    users: list[dict[str, Any]] = _with_service(ctx, lambda s: s.list_users())
    if as_json:
        import json

        typer.echo(json.dumps(users))
        return
    table = Table("id", "user", "role", "plan", "state")
    for u in users:
        table.add_row(str(u["id"]), u["username"], u["role"], u["plan"], "disabled" if u["disabled"] else "active")
    Console().print(table)


@user_app.command("passwd")
def passwd(ctx: typer.Context, username: str, password_stdin: bool = PasswordStdin) -> None:
    """Set a user's password (ends all their sessions)."""
    password = _password(None, password_stdin)
    _with_service(ctx, lambda s: s.set_password(username, password))
    typer.echo(f"password of {username} changed; their sessions are ended")


@user_app.command("disable")
def disable(ctx: typer.Context, username: str, enable: bool = typer.Option(False, "--enable", help="Enable again.")) -> None:
    """Disable a user (sign-in refused, sessions ended, API keys refused); --enable undoes it."""
    _with_service(ctx, lambda s: s.set_disabled(username, not enable))
    typer.echo(f"{username} {'enabled' if enable else 'disabled'}")


keys_app = typer.Typer(help="The credential vault: exchange API keys encrypted under the master key.", no_args_is_help=True)


def _with_vault(ctx: typer.Context, work: Callable[[Any, AuthService], Awaitable[T]]) -> T:
    from coinwire.auth.vault import MasterKeys, Vault

    options = (ctx.find_root().params if ctx else {}) or {}
    settings = load_settings(options.get("config"), {"data_dir": options.get("data_dir")})

    async def run(service: AuthService) -> T:
        vault = Vault(service.repo.store, MasterKeys.load(settings.data_path, os.environ))
        return await work(vault, service)

    return _with_service(ctx, run)


@keys_app.command("set")
def keys_set(ctx: typer.Context, exchange: str, user: str = typer.Option("admin", "--user", help="Owner of the credentials.")) -> None:
    """Store exchange credentials for a user: stdin lines api_key, secret[, password] (never on the command line)."""
    import time as _time

    from coinwire.auth.vault import Credentials

    lines = [line.rstrip("\r\n") for line in sys.stdin.readlines()]
    if len(lines) < 2:
        _err.print("[red]error:[/red] give the API key and the secret on two lines of stdin")
        raise typer.Exit(2)
    if not lines[0].strip() or not lines[1].strip():
        _err.print("[red]error:[/red] empty_credentials: the API key and the secret must not be empty or blank")
        raise typer.Exit(2)
    creds = Credentials(api_key=lines[0], secret=lines[1], password=lines[2] if len(lines) > 2 and lines[2] else None)

    async def work(vault: Any, service: AuthService) -> None:
        owner = await service.require_user(user)
        await vault.put(owner["id"], exchange, creds, int(_time.time()))

    _with_vault(ctx, work)
    typer.echo(f"credentials for {exchange} stored encrypted for {user}")


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """Stored credentials: user id, exchange, master key id (never the keys)."""
    rows: list[dict[str, Any]] = _with_vault(ctx, lambda vault, _: vault.list())
    for row in rows:
        typer.echo(f"{row['user_id']}\t{row['exchange']}\tkey {row['key_id']}")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Make a new master key and re-encrypt every stored credential under it."""
    result: dict[str, Any] = _with_vault(ctx, lambda vault, _: vault.rotate())
    typer.echo(f"new master key {result['key_id']}; {result['reencrypted']} credentials re-encrypted")
