"""`coinwire frontier`: the exact efficient frontier of candle files or stored history, as a table, JSON or a plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coinwire.config import ConfigError, load_settings
from coinwire.core import frontier as fr
from coinwire.core.errors import CoinwireError
from coinwire.history.frontier_input import estimates_from_candles, load_from_files, load_from_store
from coinwire.history.store import HistoryStore, default_history_root

__all__ = ["frontier_command"]

console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _symbols(values: list[str] | None) -> list[str]:
    """`--symbols BTC/USDT,ETH/USDT` or the option repeated."""
    return [s.strip() for v in values or [] for s in v.split(",") if s.strip()]


def frontier_command(
    ctx: typer.Context,
    data: list[Path] | None = typer.Option(None, "--data", "-d", help="Candle files or folders (default: the history store)."),
    symbols: list[str] | None = typer.Option(
        None, "--symbols", "-s", help="Assets, e.g. BTC/USDT,ETH/USDT (default: every one in --data)."
    ),
    exchange: str | None = typer.Option(None, "--exchange", "-x", help="Exchange of the stored history (default binance); "
                                           "with --data, labels the files (a frontier of files needs none)."),
    timeframe: str | None = typer.Option(None, "--timeframe", "-t", help="Bar length (default: the files'; 5m for the store)."),
    window: str = typer.Option("180d", "--window", "-w", help="History used: a duration like 180d or 12h, or 'all'."),
    risk_free: float = typer.Option(fr.DEFAULT_RISK_FREE, "--risk-free", help="Annual risk-free rate for Sharpe ratios."),
    points: int = typer.Option(100, "--points", "-n", help="Frontier points at evenly spaced returns."),
    covariance: str = typer.Option("sample", "--covariance", help="sample or ledoit_wolf."),
    returns: str = typer.Option("simple", "--returns", help="simple or log returns of closes."),
    max_weight: float | None = typer.Option(None, "--max-weight", help="Upper bound on every asset's weight."),
    cloud: int = typer.Option(10_000, "--cloud", help="Random portfolios drawn under the frontier in --plot."),
    seed: int = typer.Option(1, "--seed", help="Seed of the random cloud."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: Path | None = typer.Option(None, "--plot", help="Draw the frontier over the random cloud: FILE.png or FILE.html."),
) -> None:
    """The exact long-only efficient frontier (Markowitz) of the given assets, with max-Sharpe and min-variance weights."""
    try:
        wanted = _symbols(symbols)
        if data:
            candles = load_from_files(data, wanted or None, timeframe, exchange)
        else:
            if not wanted:
                _fail("symbols_required: name the assets (--symbols BTC/USDT,ETH/USDT) or pass --data")
            root = ctx.find_root().params
            try:
                settings = load_settings(root.get("config"), {"data_dir": root.get("data_dir")})
            except ConfigError as exc:
                _fail(str(exc))
            store = HistoryStore(default_history_root(settings.data_path))
            candles = load_from_store(store, exchange or "binance", wanted, timeframe or "5m")
        est = estimates_from_candles(candles, window, covariance, returns)
        frontier = fr.efficient_frontier(est, upper=max_weight)
        summary = fr.summary(frontier, points, risk_free)
        if plot is not None:
            from coinwire.cli.frontier_plot import write_plot

            rc = fr.random_portfolios(est, np.random.default_rng(seed), cloud, risk_free)
            singles = [{"asset": a, **p.to_dict(est.assets)} for a, p in zip(est.assets, frontier.single_assets(risk_free), strict=True)]
            write_plot(plot, summary, rc.vol, rc.ret, singles)
    except CoinwireError as exc:
        _fail(f"{exc.code}: {exc.message}")
    if as_json:
        print(json.dumps(summary))
        return
    _print(summary)
    if plot is not None:
        console.print(f"plot written to {escape(str(plot))}")


def _weights_table(title: str, p: dict[str, Any]) -> Table:
    table = Table(title=title, caption=f"return {p['return']:.2%}, volatility {p['volatility']:.2%}, Sharpe {p['sharpe']:.3f}")
    table.add_column("asset")
    table.add_column("weight", justify="right")
    for asset, w in sorted(p["weights"].items(), key=lambda kv: -kv[1]):
        if w >= 5e-5:
            table.add_row(asset, f"{w:.2%}")
    return table


def _print(summary: dict[str, Any]) -> None:
    table = Table(title=f"Efficient frontier ({len(summary['assets'])} assets, {summary['observations']} returns)")
    for name in ("#", "return", "volatility", "sharpe", "largest weights"):
        table.add_column(name, justify="right" if name != "largest weights" else "left")
    for i, p in enumerate(summary["frontier"]):
        top = sorted(p["weights"].items(), key=lambda kv: -kv[1])[:3]
        table.add_row(str(i + 1), f"{p['return']:.2%}", f"{p['volatility']:.2%}", f"{p['sharpe']:.3f}",
                      ", ".join(f"{a} {w:.0%}" for a, w in top if w >= 0.005))
    console.print(table)
    if summary["max_sharpe"] is not None:
        console.print(_weights_table("Max Sharpe", summary["max_sharpe"]))
    else:
        console.print(f"no portfolio returns more than the risk-free rate {summary['risk_free']:.2%}: no max-Sharpe portfolio")
    console.print(_weights_table("Min variance", summary["min_variance"]))
