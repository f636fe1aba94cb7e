"""The `coinwire` command: serve the platform, show configuration, and view a running server."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coinwire.cli_accounts import accounts_app
from coinwire.cli_data import data_app
from coinwire.cli_frontier import frontier_command
from coinwire.cli_http import server_call, server_url
from coinwire.cli_ohlcv import ohlcv_command
from coinwire.cli_run import run_command, runs_app
from coinwire.cli_user import keys_app, user_app
from coinwire.config import ConfigError, Settings, load_settings

app = typer.Typer(help="coinwire: self-hosted crypto trading and portfolio platform.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.command("run")(run_command)
app.command("ohlcv")(ohlcv_command)
app.add_typer(runs_app, name="runs")
app.add_typer(data_app, name="data")
app.add_typer(user_app, name="user")
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.command("frontier")(frontier_command)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # never break a URL or a path across lines

_state: dict[str, Any] = {}


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


@app.callback()
def main_options(
    config: str | None = typer.Option(None, "--config", "-c", help="TOML configuration file."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data directory (store, history, run files)."),
) -> None:
    _state["config"] = config
    _state["data_dir"] = data_dir


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(_state.get("config"), {"data_dir": _state.get("data_dir"), **overrides})
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to bind (default 8000)."),
) -> None:
    """Start the platform (gateway, paper exchanges, API) on the configured ports."""
    import uvicorn

    from coinwire.api.ws_protocol import FastWebSocketProtocol
    from coinwire.app import create_app
    from coinwire.logs import configure_logging

    settings = _settings(host=host, port=port)
    configure_logging(settings.log_level)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] binding {settings.host}: put TLS and authentication in front of coinwire")
    console.print(f"coinwire serving on http://{settings.host}:{settings.port}  (data: {settings.data_path})")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning",
        ws_max_size=1 << 20, ws_per_message_deflate=False,
        ws=FastWebSocketProtocol,
    )


def _toml(value: Any) -> str:
    """A TOML value: JSON's strings, numbers, booleans and arrays are TOML too; objects become inline tables."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _toml_lines(table: dict[str, Any]) -> list[str]:
    # TOML has no null: an unset value is shown as a comment
    return [f"{k} = {_toml(v)}" if v is not None else f"# {k} is not set" for k, v in table.items()]


@config_app.command("show")
def config_show(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of TOML.")) -> None:
    """Print the effective configuration (defaults < file < environment < flags), as a usable --config file."""
    data = _settings().to_public()
    if as_json:
        console.print_json(json.dumps(data))
        return
    # plain echo: Rich would read `[[exchanges]]` as markup and wrap long paths
    lines = _toml_lines({k: v for k, v in data.items() if k != "exchanges" or not v})  # `exchanges = []` stays
    for ex in data["exchanges"]:
        lines += ["", "[[exchanges]]", *_toml_lines(ex)]
    typer.echo("\n".join(lines))


# --- views of a running server ---------------------------------------------------------------------
def _get(url: str | None, path: str, **params: Any) -> Any:
    return server_call(server_url(url, _settings), "GET", path, params)


UrlOption = typer.Option(None, "--url", help="Server URL (default from the configuration: http://127.0.0.1:8000).")
JsonOption = typer.Option(False, "--json", help="Print raw JSON.")


@app.command()
def exchanges(url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """List the exchanges of a running server with their status."""
    data = _get(url, "/xwrap/v1/exchanges")
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("exchange", "mode", "status", "pairs", "currencies", title="Exchanges")
    for ex in data:
        table.add_row(ex["exchange"], ex["mode"], ex["status"], ", ".join(ex["pairs"]), ", ".join(ex["currencies"]))
    console.print(table)


@app.command()
def book(
    exchange: str,
    symbol: str,
    depth: int = typer.Option(10, help="Levels per side."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the top of a mirrored order book."""
    pair = symbol.upper().replace("/", "_")
    data = _get(url, f"/xwrap/v1/{exchange}/book/{pair}", depth=depth)
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


@app.command()
def wallets(url: str | None = UrlOption, as_json: bool = JsonOption) -> None:
    """Show total, allocated and unallocated funds, and each wallet set."""
    data = _get(url, "/xwrap/v1/wallets/sets")
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("set", "exchange", "currency", "balance", "available", "hold", "USD", title="Wallets")
    for key, wallet_set in data.items():
        for w in wallet_set["wallets"]:
            usd = (w.get("present_value") or {}).get("balance_usd") or ""
            table.add_row(str(key), w["exchange"], w["currency"], w["balance"], w["available"], w["hold"], usd)
    console.print(table)


@app.command()
def orders(
    open_only: bool = typer.Option(False, "--open", help="Only resting orders."),
    limit: int = typer.Option(50, help="How many recent orders."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """List open or recent orders."""
    if open_only:
        data = _get(url, "/xwrap/v1/orders/open")
    else:
        data = _get(url, "/xwrap/v1/orders/recent", include_open="true", limit=limit)
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


@app.command()
def convert(
    amount: str = typer.Argument(..., help="Amount to convert, a decimal number."),
    source: str = typer.Argument(..., metavar="FROM", help="Currency to convert from (BTC, USDT, EUR, ...)."),
    target: str = typer.Argument(..., metavar="TO", help="Currency to convert to (a fiat: USD, EUR, ...)."),
    url: str | None = UrlOption,
    as_json: bool = JsonOption,
) -> None:
    """Convert an amount through the best route of live tickers, FX rates and pegs (asks the running server)."""
    body = _get(url, "/api/v1/convert", amount=amount, **{"from": source, "to": target})
    if as_json:
        typer.echo(json.dumps(body))
        return
    console.print(f"{escape(body['amount'])} {body['from']} = [bold]{escape(body['result'])}[/bold] {body['to']}")
    for step in body["route"]:
        console.print(f"  1 {step['from']} = {escape(step['rate'])} {step['to']}  ({escape(step['source'])}, {step['age']:.0f} s old)")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
