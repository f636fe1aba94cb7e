"""Views of a running server: `coinwire exchanges | book | wallets | orders | convert` (over HTTP, with COINWIRE_TOKEN)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from coinwire.cli.common import console, root_settings
from coinwire.cli.http import UrlOption, server_call, server_url

__all__ = ["book", "convert", "exchanges", "orders", "wallets"]


def _get(ctx: typer.Context, url: str | None, path: str, **params: Any) -> Any:
    return server_call(server_url(url, lambda: root_settings(ctx)), "GET", path, params)


JsonOption = typer.Option(False, "--json", help="Print raw JSON.")


def exchanges(
    ctx: typer.Context,url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """List the exchanges of a running server with their status."""
    data = _get(ctx, url, "/xwrap/v1/exchanges")
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("exchange", "mode", "status", "pairs", "currencies", title="Exchanges")
    for ex in data:
        table.add_row(ex["exchange"], ex["mode"], ex["status"], ", ".join(ex["pairs"]), ", ".join(ex["currencies"]))
    console.print(table)


def book(
    ctx: typer.Context,
    exchange: str,
    symbol: str,
    depth: int = typer.Option(10, help="Levels per side."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the top of a mirrored order book."""
    pair = symbol.upper().replace("/", "_")
    data = _get(ctx, url, f"/xwrap/v1/{exchange}/book/{pair}", depth=depth)
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("bid size", "bid", "ask", "ask size", title=f"{exchange} {data['symbol']}")
    bids, asks = data["bids"], data["asks"]
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else ["", ""]
        a = asks[i] if i < len(asks) else ["", ""]
        table.add_row(b[1], f"[green]{b[0]}[/green]", f"[red]{a[0]}[/red]", a[1])
    console.print(table)


def wallets(
    ctx: typer.Context,url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """Show total, allocated and unallocated funds, and each wallet set."""
    data = _get(ctx, url, "/xwrap/v1/wallets/sets")
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("set", "exchange", "currency", "balance", "available", "hold", "USD", title="Wallets")
    for key, wallet_set in data.items():
        for w in wallet_set["wallets"]:
            usd = (w.get("present_value") or {}).get("balance_usd") or ""
            table.add_row(str(key), w["exchange"], w["currency"], w["balance"], w["available"], w["hold"], usd)
    console.print(table)


def orders(
    ctx: typer.Context,
    open_only: bool = typer.Option(False, "--open", help="Only resting orders."),
    limit: int = typer.Option(50, help="How many recent orders."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """List open or recent orders."""
    if open_only:
        data = _get(ctx, url, "/xwrap/v1/orders/open")
    else:
        data = _get(ctx, url, "/xwrap/v1/orders/recent", include_open="true", limit=limit)
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("id", "exchange", "pair", "side", "type", "size", "limit", "filled", "avg price", "status", title="Orders")
    for o in data:
        status = o["status"] + (f" ({o['done_reason']})" if o.get("done_reason") else "")
        table.add_row(
            str(o["id"]), o["exchange"], o["pair"], o["side"], o["type"], o["size"], o["limit"], o["filled_size"], o["avg_price"], status
        )
    console.print(table)


def convert(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="Amount to convert, a decimal number."),
    source: str = typer.Argument(..., metavar="FROM", help="Currency to convert from (BTC, USDT, EUR, ...)."),
    target: str = typer.Argument(..., metavar="TO", help="Currency to convert to (a fiat: USD, EUR, ...)."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Convert an amount through the best route of live tickers, FX rates and pegs (asks the running server)."""
    body = _get(ctx, url, "/api/v1/convert", amount=amount, **{"from": source, "to": target})
    if as_json:
        typer.echo(json.dumps(body))
        return
    console.print(f"{escape(body['amount'])} {body['from']} = [bold]{escape(body['result'])}[/bold] {body['to']}")
    for step in body["route"]:
        console.print(f"  1 {step['from']} = {escape(step['rate'])} {step['to']}  ({escape(step['source'])}, {step['age']:.0f} s old)")
