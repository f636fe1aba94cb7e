"""`coinwire accounts list|open|grant|revoke`: a running server's accounts and grants, as the caller (COINWIRE_TOKEN) may see them."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coinwire.cli.http import UrlOption, server_base, server_call

__all__ = ["accounts_app"]

accounts_app = typer.Typer(help="Accounts of a running server: list, open paper ones, grant and revoke (admins).",
                           no_args_is_help=True)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)


def _user_id(base: str, user: str) -> int:
    """A user named by id or by name (names are looked up in the users list, which admins may read)."""
    if user.isdigit():
        return int(user)
    for row in server_call(base, "GET", "/api/v1/users"):
        if row["username"] == user:
            return int(row["id"])
    _err.print(f"[red]error:[/red] unknown_user: no user named {escape(user)!r}")
    raise typer.Exit(2)


def _members(account: dict[str, Any]) -> str:
    return ", ".join(f"{m['user_id']}:{m['role']}" for m in account.get("members", []))


@accounts_app.command("list")
def list_accounts(ctx: typer.Context, url: str | None = UrlOption,
                  as_json: bool = typer.Option(False, "--json", help="Print raw JSON.")) -> None:
    """The accounts you may read (admins: every account), with your role on each and, where you may see them, its members."""
    accounts = server_call(server_base(ctx, url), "GET", "/api/v1/accounts")
    if as_json:
        typer.echo(json.dumps(accounts))
        return
    table = Table("id", "exchange", "kind", "name", "owner", "role", "members", title="Accounts")
    for a in accounts:
        table.add_row(str(a["id"]), a["exchange"], a["kind"], escape(a["name"]), str(a["owner"]), a["role"], _members(a))
    _out.print(table)


@accounts_app.command("open")
def open_account(ctx: typer.Context, exchange: str, name: str, url: str | None = UrlOption) -> None:
    """Open a further paper account of yours on a paper exchange, funded with its paper funds."""
    made = server_call(server_base(ctx, url), "POST", "/api/v1/accounts", body={"exchange": exchange, "kind": "paper", "name": name})
    typer.echo(f"opened account {made['id']} on {made['exchange']}: {made['name']}")


@accounts_app.command("grant")
def grant(ctx: typer.Context, account: int, user: str,
          role: str = typer.Option(..., "--role", help="view (read its funds, orders, notifications) or trade (also trade on it)."),
          url: str | None = UrlOption) -> None:
    """Admins: let USER (a name or an id) view or trade ACCOUNT."""
    base = server_base(ctx, url)
    answer = server_call(base, "PUT", f"/api/v1/accounts/{account}/members/{_user_id(base, user)}", body={"role": role})
    typer.echo(f"account {answer['account']} members: {_members(answer) or 'none'}")


@accounts_app.command("revoke")
def revoke(ctx: typer.Context, account: int, user: str, url: str | None = UrlOption) -> None:
    """Admins: take USER's (a name or an id) grant on ACCOUNT back."""
    base = server_base(ctx, url)
    answer = server_call(base, "DELETE", f"/api/v1/accounts/{account}/members/{_user_id(base, user)}")
    typer.echo(f"account {answer['account']} members: {_members(answer) or 'none'}")
