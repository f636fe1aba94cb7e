"""`coinwire data`: import candle files into the history store, list what is stored, download through CCXT."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from coinwire.cli.common import on_store
from coinwire.config import ConfigError, Settings, load_settings
from coinwire.core.errors import CoinwireError
from coinwire.history.candles import KINDS, format_time, parse_time
from coinwire.history.store import HistoryStore, SeriesInfo, default_history_root

__all__ = ["data_app"]

data_app = typer.Typer(help="Candle history: import files, list what is stored, download from an exchange.", no_args_is_help=True)
console = Console()
err = Console(stderr=True, soft_wrap=True)

ExchangeOption = typer.Option(None, "--exchange", "-x", help="CCXT exchange id (default: from the format or the folder name).")
SymbolOption = typer.Option(None, "--symbol", help="Symbol like BTC/USDT (default: from the file name, e.g. BTC_USDT-5m.json).")
TimeframeOption = typer.Option(None, "--timeframe", "-t", help="Bar length like 5m, 1h, 1d (default: from the name or the rows).")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _settings(ctx: typer.Context) -> Settings:
    """The settings chosen by the root command's --config / --data-dir."""
    root = ctx.find_root().params
    try:
        return load_settings(root.get("config"), {"data_dir": root.get("data_dir")})
    except ConfigError as exc:
        _fail(str(exc))


def _store(ctx: typer.Context) -> HistoryStore:
    """The history store under the data directory."""
    return HistoryStore(default_history_root(_settings(ctx).data_path))


def _recorded(settings: Settings) -> list[SeriesInfo]:
    """The candle series this platform recorded from trades (history.recorded), read from its configured store."""
    from coinwire.history.recorded import recorded_series

    return on_store(settings, recorded_series) or []


def _info_json(info: SeriesInfo) -> dict[str, Any]:
    return {
        "exchange": info.exchange,
        "symbol": info.symbol,
        "timeframe": info.timeframe,
        "kind": info.kind,
        "rows": info.rows,
        "first": info.first,
        "last": info.last,
        "first_utc": format_time(info.first) if info.first is not None else None,
        "last_utc": format_time(info.last) if info.last is not None else None,
        "path": info.path,
    }


def _series_table(title: str, infos: list[SeriesInfo], extra: dict[str, list[str]] | None = None) -> Table:
    extra = extra or {}
    table = Table("exchange", "symbol", "tf", "kind", *extra, "bars", "first (UTC)", "last (UTC)", title=title)
    for i, info in enumerate(infos):
        first = format_time(info.first).removesuffix(" UTC") if info.first is not None else ""
        last = format_time(info.last).removesuffix(" UTC") if info.last is not None else ""
        row = (info.exchange, info.symbol, info.timeframe, info.kind, *(v[i] for v in extra.values()))
        table.add_row(*row, f"{info.rows:,}", first, last)
    return table


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True
    )


@data_app.command("import")
def import_files(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(
        ...,
        help="Candle files: freqtrade/CCXT JSON (.json, .json.gz), freqtrade feather (.feather, futures layout too), "
        "Binance CSV (.csv, .zip), CSV with a header (any column order, ISO-8601 or epoch times), raw Binance captures (.gz).",
    ),
    exchange: str | None = ExchangeOption,
    symbol: str | None = SymbolOption,
    timeframe: str | None = TimeframeOption,
    replace: bool = typer.Option(False, "--replace", help="Replace the stored series instead of merging into it."),
    as_json: bool = JsonOption,
) -> None:
    """Read candle files and merge them into the history store (new bars win on equal times).

    Raw capture files of one market are read together, as one stream."""
    from coinwire.history.formats import file_groups, read_files

    store = _store(ctx)
    stored: list[SeriesInfo] = []
    read_rows: list[int] = []
    names: list[str] = []
    try:
        groups = file_groups(files)
        with _progress() as progress:
            task = progress.add_task("importing", total=len(files))
            for group in groups:
                label = group[0].name + (f" (+{len(group) - 1})" if len(group) > 1 else "")
                progress.update(task, description=f"reading {label}")
                for candles in read_files(group, exchange, symbol, timeframe):
                    progress.update(task, description=f"storing {candles.symbol} {candles.timeframe} {candles.kind}")
                    stored.append(store.write(candles, merge=not replace))
                    read_rows.append(len(candles))
                    names.append(label)
                progress.advance(task, len(group))
    except CoinwireError as exc:
        _fail(f"{exc.code}: {exc.message}")
    if as_json:
        rows = [{"files": f, "read": n, **_info_json(i)} for f, n, i in zip(names, read_rows, stored, strict=True)]
        typer.echo(json.dumps(rows))
        return
    console.print(_series_table("Imported (stored series after merging)", stored, {"read": [f"{n:,}" for n in read_rows]}))
    console.print("from " + ", ".join(escape(n) for n in names))


@data_app.command("list")
def list_series(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List the stored candle series, and those recorded from trades (a backtest reads those with --data recorded:EXCHANGE)."""
    settings = _settings(ctx)
    store = HistoryStore(default_history_root(settings.data_path))
    infos = store.list(KINDS)
    try:
        recorded = _recorded(settings)
    except CoinwireError as exc:
        _fail(f"{exc.code}: {exc.message}")
    if as_json:
        typer.echo(json.dumps([{**_info_json(i), "source": "history"} for i in infos]
                              + [{**_info_json(i), "source": "recorded"} for i in recorded]))
        return
    if not infos and not recorded:
        console.print(f"no candle history under {escape(str(store.root))}: `coinwire data import FILE` or `coinwire data download`; "
                      "none recorded from trades either")
        return
    if infos:
        console.print(_series_table(f"History in {store.root}", infos))
    if recorded:
        console.print(_series_table("Recorded from trades (a backtest's --data recorded:EXCHANGE)", recorded))


@data_app.command("download")
def download_series(
    ctx: typer.Context,
    exchange: str = typer.Argument(..., help="CCXT exchange id, e.g. binance."),
    symbol: str = typer.Argument(..., help="Symbol like BTC/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", "-t", help="Bar length like 5m, 1h, 1d."),
    since: str = typer.Option(..., "--since", help="First bar's open time: 2021-01-01, 2021-01-01T12:00 (UTC) or unix seconds."),
    until: str | None = typer.Option(None, "--until", help="Stop before this time (default: now; the open bar is never stored)."),
    api_url: str | None = typer.Option(None, "--api-url", help="Send the REST calls to this host instead (a mirror such as https://data-api.binance.vision)."),
    retries: int = typer.Option(5, "--retries", min=0, help="Retries of a failed request (network, rate limit), with backoff."),
    as_json: bool = JsonOption,
) -> None:
    """Download closed candles through CCXT (fetch_ohlcv, paged) and merge them into the history store."""
    from coinwire.history.candles import timeframe_seconds
    from coinwire.history.download import download, make_exchange

    store = _store(ctx)
    try:
        start = parse_time(since)
        end = parse_time(until) if until else None
        if end is not None and end <= start:
            _fail(f"invalid_range: --until ({format_time(end)}) must be after --since ({format_time(start)})")
        client = make_exchange(exchange, api_url)
        with _progress() as progress:
            horizon = end if end is not None else int(time.time())
            expected = max(1, (horizon - start) // timeframe_seconds(timeframe))
            task = progress.add_task(f"{exchange} {symbol} {timeframe}", total=expected)
            candles = download(
                client, symbol, timeframe, start, end, progress=lambda bars, _last: progress.update(task, completed=bars),
                retries=retries,
            )
        if not len(candles):
            _fail(f"history_missing: {exchange} returned no closed {timeframe} bars for {symbol} from {format_time(start)}")
        info = store.write(candles)
    except CoinwireError as exc:
        _fail(f"{exc.code}: {exc.message}")
    if as_json:
        typer.echo(json.dumps({"downloaded": len(candles), **_info_json(info)}))
        return
    console.print(f"downloaded {len(candles):,} bars ({format_time(candles.first)} .. {format_time(candles.last)})")
    console.print(_series_table("Stored", [info]))
