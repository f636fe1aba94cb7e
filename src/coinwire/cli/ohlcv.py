"""`coinwire ohlcv EXCHANGE SYMBOL`: candles of any timeframe in any time zone, from the local store and history.

Reads what this machine holds (the store's recorded candles and the history store's imported
or downloaded series) through the same OhlcvQuery as `GET /api/v1/ohlcv`, following its
pages, so no server needs to run.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coinwire.config import ConfigError, Settings, load_settings
from coinwire.core.errors import CoinwireError

__all__ = ["ohlcv_command"]

console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


async def _collect(settings: Settings, exchange: str, symbol: str, timeframe: str, tz: str, start: Any, end: Any) -> dict[str, Any]:
    # imported here: the store loads SQLAlchemy, which the other `coinwire` commands would pay for at start-up
    from coinwire.history.store import HistoryStore, default_history_root
    from coinwire.services.ohlcv import OhlcvQuery
    from coinwire.store import Store

    store = Store(settings.resolved_store_url)
    await store.start()
    try:
        history = HistoryStore(default_history_root(settings.data_path))
        query = OhlcvQuery(store, history, None, max_points=settings.ohlcv_max_points)
        answer = await query.candles(exchange, symbol, timeframe, tz, start, end)
        while answer["next"] is not None:  # follow the pages: the command prints the whole range
            page = await query.candles(exchange, symbol, timeframe, tz, answer["next"], answer["end"])
            answer["candles"] += page["candles"]
            answer["next"] = page["next"]
        return answer
    finally:
        await store.close()


def ohlcv_command(
    ctx: typer.Context,
    exchange: str = typer.Argument(..., help="Exchange name, e.g. binance."),
    symbol: str = typer.Argument(..., help="Symbol like BTC/USDT or BTC_USDT."),
    timeframe: str = typer.Option("1h", "--timeframe", "-t", help="1m, 5m, 15m, 1h, 4h, 1d, 1w, 1M or e.g. 90m."),
    tz: str = typer.Option("UTC", "--tz", help="IANA time zone: days start at its local midnight."),
    start: str | None = typer.Option(None, "--start", help="Unix seconds or ISO 8601 (default: as many buckets as one page holds)."),
    end: str | None = typer.Option(None, "--end", help="Unix seconds or ISO 8601 (default: now)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer of GET /api/v1/ohlcv as JSON."),
) -> None:
    """Candles of a series in any timeframe and time zone, from the store and the history store."""
    root = ctx.find_root().params
    try:
        settings = load_settings(root.get("config"), {"data_dir": root.get("data_dir")})
    except ConfigError as exc:
        _fail(str(exc))
    try:
        answer = asyncio.run(_collect(settings, exchange, symbol, timeframe, tz, start, end))
    except CoinwireError as exc:
        _fail(f"{exc.message} ({exc.code})")
    if as_json:
        typer.echo(json.dumps(answer))
        return
    from coinwire.services.ohlcv import zone

    zone_info = zone(tz)
    table = Table(title=f"{answer['exchange']} {answer['symbol']} {answer['timeframe']} ({tz})")
    for name in ("time", "open", "high", "low", "close", "volume"):
        table.add_column(name, justify="left" if name == "time" else "right", no_wrap=True)
    for t, *values in answer["candles"]:
        table.add_row(datetime.fromtimestamp(t, zone_info).strftime("%Y-%m-%d %H:%M %Z"), *(f"{v:.10g}" for v in values))
    console.print(table)
    if not answer["candles"]:
        err.print("no candles in this range: record trades (coinwire serve) or `coinwire data import/download` history")
