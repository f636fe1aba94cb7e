"""`coinwire order place | oco | cancel`: orders on a running server (over HTTP, with COINWIRE_TOKEN), every type make_order takes.

The options are make_order's parameters under their CLI names; the server checks them (the
refusal's code and sentence are printed, exit 2). Only the bracket options have a grammar of
their own, read here: `--take-profit 66000` (a limit), `--take-profit stop=66000` (take-profit-market),
`--take-profit stop=66000,limit=65990` (take-profit-limit); `--stop-loss 55000` (stop-market),
`--stop-loss 55000,limit=54900` (stop-limit).
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from coinwire.cli.common import console, fail, root_settings
from coinwire.cli.http import UrlOption, server_call, server_url

__all__ = ["order_app", "bracket_leg"]

order_app = typer.Typer(help="Place and cancel orders on a running server: limit, market, stops, take-profits, trailing stops, OCO.",
                        no_args_is_help=True)

JsonOption = typer.Option(False, "--json", help="Print raw JSON.")
_SIDES = ("buy", "sell")


def bracket_leg(text: str, option: str, bare: str) -> dict[str, str]:
    """`--take-profit` / `--stop-loss` as make_order's object: `PRICE` (the `bare` key) or `stop=P[,limit=L]`.

    A malformed value exits 2 with the option's grammar, before anything is sent.
    """
    leg: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            key, value = bare, key
        key = {"stop": "stop_price", "stop_price": "stop_price", "limit": "limit"}.get(key.strip(), "")
        if not key or not value.strip() or key in leg:
            fail(f"{option} {text!r}: give PRICE, or stop=PRICE, or stop=PRICE,limit=PRICE")
        leg[key] = value.strip()
    return leg


def _post(ctx: typer.Context, url: str | None, path: str, body: dict[str, Any]) -> Any:
    return server_call(server_url(url, lambda: root_settings(ctx)), "POST", path, body={k: v for k, v in body.items() if v is not None})


def _show(views: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(views if len(views) > 1 else views[0]))
        return
    table = Table("id", "pair", "side", "type", "size", "limit", "stop", "status", "client_oid", title="Orders")
    for o in views:
        status = o["status"] + (f" ({o['done_reason']})" if o.get("done_reason") else "")
        table.add_row(str(o["id"]), o["pair"], o["side"], o["type"], o["size"], o.get("limit") or "", o.get("stop_price") or "", status,
                      o["client_order_id"])
    console.print(table)


def _side(side: str) -> str:
    if side.lower() not in _SIDES:
        fail(f"side must be buy or sell, got {side!r}")
    return side.lower()


@order_app.command("place")
def place(
    ctx: typer.Context,
    exchange: str,
    pair: str = typer.Argument(..., help="BTC_USDT or BTC/USDT."),
    side: str = typer.Argument(..., help="buy or sell."),
    size: str = typer.Argument(..., help="Base to buy or sell, a decimal."),
    order_type: str = typer.Option("limit", "--type", help="limit, market, limit-immediate-cancel, limit-fill-kill, limit-post-only, "
                                   "stop-market, stop-limit, take-profit-market, take-profit-limit, trailing-stop."),
    limit: str | None = typer.Option(None, "--limit", help="Limit price (of the order a *-limit type fires)."),
    stop_price: str | None = typer.Option(None, "--stop-price", help="Trigger level of a stop or take-profit."),
    trailing_delta: str | None = typer.Option(None, "--trailing-delta", help="A trailing stop's distance: 1.5% or a price distance."),
    activation_price: str | None = typer.Option(None, "--activation-price", help="A trailing stop follows from this price on."),
    trigger: str | None = typer.Option(None, "--trigger", help="The price that fires it: last (default), mark, bid_ask."),
    time_in_force: str | None = typer.Option(None, "--time-in-force", help="GTC (default), IOC, FOK, GTD (with --expire-at)."),
    expire_at: str | None = typer.Option(None, "--expire-at", help="ISO 8601 (2026-12-31T23:59:00Z) or epoch milliseconds."),
    take_profit: str | None = typer.Option(None, "--take-profit", help="Bracket: PRICE (limit), stop=P or stop=P,limit=L."),
    stop_loss: str | None = typer.Option(None, "--stop-loss", help="Bracket: PRICE (stop-market) or PRICE,limit=L (stop-limit)."),
    allow_immediate: bool = typer.Option(False, "--allow-immediate", help="Accept a stop the market has already reached."),
    reduce_only: bool = typer.Option(False, "--reduce-only", help="May only shrink a position."),
    position_side: str | None = typer.Option(None, "--position-side", help="Perpetuals: both (one-way), long or short (hedge mode)."),
    client_oid: str | None = typer.Option(None, "--client-oid", help="Idempotency key (a repeat answers the same order)."),
    account: int | None = typer.Option(None, "--account", help="The account it spends from."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Place an order of any type, with a bracket (--take-profit and --stop-loss) if given."""
    body: dict[str, Any] = {
        "exchange": exchange, "pair": pair, "side": _side(side), "size": size, "type": order_type, "limit": limit,
        "stop_price": stop_price, "trailing_delta": trailing_delta, "activation_price": activation_price, "trigger": trigger,
        "time_in_force": time_in_force, "client_oid": client_oid, "account": account,
        "allow_immediate": allow_immediate or None, "reduce_only": reduce_only or None, "position_side": position_side,
    }
    if expire_at is not None:
        body["expire_at"] = int(expire_at) if expire_at.isdigit() else expire_at
    if take_profit is not None:
        body["take_profit"] = bracket_leg(take_profit, "--take-profit", "limit")
    if stop_loss is not None:
        body["stop_loss"] = bracket_leg(stop_loss, "--stop-loss", "stop_price")
    _show([_post(ctx, url, "/xwrap/v1/orders/new", body)], as_json)


@order_app.command("oco")
def oco(
    ctx: typer.Context,
    exchange: str,
    pair: str = typer.Argument(..., help="BTC_USDT or BTC/USDT."),
    side: str = typer.Argument(..., help="buy or sell."),
    size: str = typer.Argument(..., help="Base to buy or sell, a decimal (both legs)."),
    limit: str = typer.Option(..., "--limit", help="The limit leg's price (a sell's above the market, a buy's below)."),
    stop_price: str = typer.Option(..., "--stop-price", help="The stop leg's trigger level (a sell's below the market)."),
    stop_limit: str | None = typer.Option(None, "--stop-limit", help="The stop leg's limit: a stop-limit leg (default stop-market)."),
    trigger: str | None = typer.Option(None, "--trigger", help="The stop leg's trigger price: last (default), mark, bid_ask."),
    client_oid: str | None = typer.Option(None, "--client-oid", help="Its legs' are <client_oid>:limit and <client_oid>:stop."),
    account: int | None = typer.Option(None, "--account", help="The account it spends from."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Place an OCO: a limit leg and a stop leg for the same size; one filling or firing cancels the other."""
    body = {"exchange": exchange, "pair": pair, "side": _side(side), "size": size, "limit": limit, "stop_price": stop_price,
            "stop_limit": stop_limit, "trigger": trigger, "client_oid": client_oid, "account": account}
    _show(_post(ctx, url, "/xwrap/v1/orders/oco", body), as_json)


@order_app.command("cancel")
def cancel(
    ctx: typer.Context,
    order_id: int = typer.Argument(..., help="The order's id (an OCO leg cancels its list, a bracket parent its children)."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Cancel an order."""
    _show([_post(ctx, url, "/xwrap/v1/orders/cancel", {"order_id": order_id})], as_json)
