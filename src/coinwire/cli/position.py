"""`coinwire position list | leverage | margin-mode | mode | margin | close | funding`: perpetual positions on a running server.

Over HTTP with COINWIRE_TOKEN, the `/api/v1/positions` routes (docs/DERIVATIVES.md, API and
streams). The server checks everything; a refusal's code and sentence are printed (exit 2).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import typer
from rich.table import Table

from coinwire.cli.common import console, fail, root_settings
from coinwire.cli.http import UrlOption, server_call, server_url

__all__ = ["position_app"]

position_app = typer.Typer(help="Perpetual positions on a running server: list, leverage, margin mode, margin, close, funding.",
                           no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="Print raw JSON.")
AccountOption = typer.Option(None, "--account", help="The account (default: your own on the exchange).")


def _call(ctx: typer.Context, url: str | None, method: str, path: str, body: dict[str, Any] | None = None,
          params: dict[str, Any] | None = None) -> Any:
    base = server_url(url, lambda: root_settings(ctx))
    return server_call(base, method, path, params=params, body={k: v for k, v in body.items() if v is not None} if body else None)


def _market(exchange: str, pair: str) -> str:
    """`/api/v1/positions/{exchange}/{pair}` with the pair as BTC_USDT:USDT (a slash cannot go in a path)."""
    return f"/api/v1/positions/{quote(exchange, safe='')}/{quote(pair.replace('/', '_'), safe=':')}"


def _show(views: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(views))
        return
    table = Table("account", "exchange", "symbol", "side", "size", "entry", "mark", "uPnL", "lev", "mode", "margin ratio", "liq. price",
                  title="Positions")
    for p in views:
        side = p["side"] if p["position_side"] == "both" else f"{p['side']} ({p['position_side']})"
        table.add_row(str(p["account"]), p["exchange"], p["symbol"], side, p["size"], p["entry_price"], p["mark_price"],
                      p["unrealised_pnl"], f"{p['leverage']}x", p["margin_mode"], p["margin_ratio"], p["liquidation_price"] or "")
    console.print(table)


def _print(answer: Any, as_json: bool) -> None:
    if isinstance(answer, dict) and "position_side" in answer and not as_json:
        _show([answer], as_json)
    else:
        console.print_json(json.dumps(answer))


@position_app.command("list")
def list_positions(
    ctx: typer.Context,
    exchange: str | None = typer.Option(None, "--exchange"),
    pair: str | None = typer.Option(None, "--pair", help="BTC_USDT:USDT or BTC/USDT:USDT (with --exchange)."),
    account: int | None = AccountOption,
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Open positions of the accounts you may read, with mark, uPnL, margin ratio and liquidation price."""
    _show(_call(ctx, url, "GET", "/api/v1/positions", params={"exchange": exchange, "pair": pair, "account": account}), as_json)


@position_app.command("leverage")
def leverage(ctx: typer.Context, exchange: str, pair: str,
             value: int = typer.Argument(..., help="Whole leverage, 1 to the bracket's maximum."),
             account: int | None = AccountOption, url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """Set a market's leverage."""
    _print(_call(ctx, url, "PUT", _market(exchange, pair) + "/leverage", {"leverage": value, "account": account}), as_json)


@position_app.command("margin-mode")
def margin_mode(ctx: typer.Context, exchange: str, pair: str, mode: str = typer.Argument(..., help="isolated or cross."),
                account: int | None = AccountOption, url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """Set a market's margin mode (refused while a position or order is open there)."""
    _print(_call(ctx, url, "PUT", _market(exchange, pair) + "/margin-mode", {"mode": mode, "account": account}), as_json)


@position_app.command("mode")
def position_mode(ctx: typer.Context, exchange: str, mode: str = typer.Argument(..., help="hedge or one-way."),
                  account: int | None = AccountOption, url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """Hedge mode (long and short legs) or one-way mode on an exchange."""
    if mode not in ("hedge", "one-way"):
        fail(f"mode must be hedge or one-way, got {mode!r}")
    path = f"/api/v1/positions/{quote(exchange, safe='')}/mode"
    _print(_call(ctx, url, "PUT", path, {"hedge_mode": mode == "hedge", "account": account}), as_json)


@position_app.command("margin")
def margin(ctx: typer.Context, exchange: str, pair: str,
           amount: str = typer.Argument(..., help="Settle currency to add (25) or remove (-25) from an isolated position."),
           position_side: str | None = typer.Option(None, "--position-side", help="Hedge mode: long or short."),
           account: int | None = AccountOption, url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """Add or remove isolated margin."""
    body = {"amount": amount, "position_side": position_side, "account": account}
    _print(_call(ctx, url, "POST", _market(exchange, pair) + "/margin", body), as_json)


@position_app.command("close")
def close(ctx: typer.Context, exchange: str, pair: str,
          position_side: str | None = typer.Option(None, "--position-side", help="Hedge mode: long or short."),
          account: int | None = AccountOption, url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """Close a position with a reduce-only market order for its whole size."""
    _print(_call(ctx, url, "POST", _market(exchange, pair) + "/close", {"position_side": position_side, "account": account}), as_json)


@position_app.command("funding")
def funding(ctx: typer.Context, exchange: str | None = typer.Option(None, "--exchange"), pair: str | None = typer.Option(None, "--pair"),
            account: int | None = AccountOption, limit: int = typer.Option(100, "--limit"), url: str | None = UrlOption) -> None:
    """Funding payments, newest first (received positive, paid negative)."""
    console.print_json(json.dumps(_call(ctx, url, "GET", "/api/v1/funding",
                                        params={"exchange": exchange, "pair": pair, "account": account, "limit": limit})))
