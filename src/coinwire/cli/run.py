"""`coinwire run`: run a strategy from the command line (a backtest, or a paper session), print or save its report."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coinwire.core.errors import CoinwireError

__all__ = ["run_command", "runs_app"]

console = Console()
err = Console(stderr=True, soft_wrap=True)
runs_app = typer.Typer(help="Runs stored in the data directory.", no_args_is_help=True)


def _settings_of(ctx: typer.Context) -> Any:
    """Settings for the data directory chosen by the root command's --config / --data-dir."""
    from coinwire.config import ConfigError, load_settings

    root = ctx.find_root().params
    try:
        return load_settings(root.get("config"), {"data_dir": root.get("data_dir")})
    except ConfigError as exc:
        raise CoinwireError("invalid_config", str(exc)) from None


def _params(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for value in values:
        if "=" not in value:
            raise CoinwireError("invalid_parameter", f"--param {value!r} must look like NAME=VALUE")
        name, raw = value.split("=", 1)
        out[name.strip()] = raw.strip()
    return out


def run_command(
    ctx: typer.Context,
    strategy: str = typer.Argument(..., help="Built-in strategy name (ma_cross, hodl, ...) or path/to/file.py:ClassName."),
    mode: str = typer.Option("backtest", "--mode", "-m", help="backtest, paper (an embedded gateway; --data CAPTURE replays a "
                             "recording) or live (a configured live exchange: real money)."),
    data: list[str] | None = typer.Option(None, "--data", help="Candle file(s) or directory, recorded:EXCHANGE (candles this "
                                          "platform recorded from trades), or a capture; default: the history store."),
    balance: list[str] = typer.Option([], "--balance", help="EXCHANGE:CURRENCY=AMOUNT, repeatable."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter NAME=VALUE, repeatable."),
    fee: str = typer.Option("0.001", "--fee", help="Maker and taker fee rate (0.001 = 0.1%)."),
    fill: str = typer.Option("open", "--fill", help="Market orders fill at the next candle's open, or the signal candle's close."),
    liquidity: str = typer.Option("volume", "--liquidity", help="volume: a candle fills at most its volume; unlimited."),
    intrabar: str = typer.Option("pessimistic", "--intrabar", help="The path assumed inside a candle, where stops and targets "
                                 "fire: pessimistic (what hurts the position more comes first), ohlc or olhc."),
    start: str | None = typer.Option(None, "--start", "-s", help="First candle (unix seconds or ISO date)."),
    end: str | None = typer.Option(None, "--end", "-e", help="End, exclusive (unix seconds or ISO date)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write a self-contained HTML report."),
    save: bool = typer.Option(True, "--save/--no-save", help="Store the run under the data directory."),
    speed: str = typer.Option("max", "--speed", help="Paper replay pace: 1 = as recorded, 10 = ten times faster, max."),
    warmup: str = typer.Option("best_effort", "--warmup", help="Paper and live: best_effort starts without the history it could "
                               "not load (the run log says what is missing); required refuses to start (warmup_unavailable)."),
    rules: Path | None = typer.Option(None, "--rules", help="A TOML file of rule sets ([[rule_sets]], scope \"run\") evaluated at "
                                      "every portfolio sample of the run (docs/RULES.md)."),
    compare: bool = typer.Option(False, "--compare", help="With --rules (backtests): run again without the rules and report "
                                 "rules_effect, the final equity with them minus without."),
) -> None:
    """Run a strategy; backtests print total return, Sharpe, drawdown and trades."""
    try:
        outcome = _run(strategy, mode, data, balance, param, fee, fill, liquidity, start, end, report, save, lambda: _settings_of(ctx),
                       speed, warmup, intrabar, rules, compare)
    except CoinwireError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)} [dim]({exc.code})[/dim]")
        if exc.code == "timeframe_unavailable":
            err.print(f"fix: run again with --param timeframe={escape(str(exc.data.get('data_timeframe')))}")
        raise typer.Exit(2) from None
    rep = outcome.report or {}
    if as_json:
        sys.stdout.write(json.dumps({**rep, "status": outcome.status, "error": outcome.error}) + "\n")
    else:
        _print_summary(rep, outcome.status, outcome.error)
    if outcome.status == "failed":
        raise typer.Exit(1)


def _run(strategy: str, mode: str, data: list[str] | None, balance: list[str], param: list[str], fee: str, fill: str,
         liquidity: str, start: str | None, end: str | None, report: Path | None, save: bool, settings_fn: Any,
         speed: str = "max", warmup: str = "best_effort", intrabar: str = "pessimistic", rules: Path | None = None,
         compare: bool = False) -> Any:
    from coinwire.engine.backtest import BacktestConfig
    from coinwire.engine.rules import load_rules_file
    from coinwire.engine.runs import finish_backtest, parse_balances, parse_funds, parse_time, prepare_any_backtest, prepare_backtest
    from coinwire.engine.valuation import plain_decimal
    from coinwire.engine.warmup import parse_policy
    from coinwire.strategies.registry import load_strategy

    parse_policy(warmup)
    if mode not in ("backtest", "paper", "live"):
        raise CoinwireError("invalid_mode", f"--mode must be backtest, paper or live, not {mode!r}")
    if compare and (rules is None or mode != "backtest"):
        raise CoinwireError("invalid_params", "--compare runs a backtest again without its --rules: give both, in backtest mode")
    rule_sets = load_rules_file(rules) if rules is not None else []
    if mode in ("paper", "live"):
        from coinwire.cli.paper_session import run_paper_session
        from coinwire.history.recorded import is_recorded

        if any(is_recorded(item) for item in data or ()):
            raise CoinwireError("invalid_data", "recorded:EXCHANGE is candles for backtests; a paper session replays a capture "
                                "(`coinwire record`) or follows the live feed")

        if start is not None or fill != "open" or liquidity != "volume" or intrabar != "pessimistic":
            raise CoinwireError("invalid_params", "--start, --fill, --liquidity and --intrabar apply to backtests; a paper session "
                                "starts now and fills against the book")
        settings = settings_fn()
        outcome, runtime = run_paper_session(settings, strategy, _params(param), parse_funds(balance), parse_time(end, "--end"),
                                             data, None if speed == "max" else _speed(speed), mode, warmup, rule_sets)
        return _keep(outcome, runtime, save, report, settings_fn)
    exchange, balances = parse_balances(balance)
    config = BacktestConfig(exchange=exchange, balances=balances, fee=fee, fill=fill, liquidity=liquidity,
                            intrabar=intrabar, start=parse_time(start, "--start"), end=parse_time(end, "--end"), rules=rule_sets)
    cls = load_strategy(strategy)
    recorded = _recorded(data, cls, _params(param), config, settings_fn())
    if recorded is not None:  # `--data recorded:EXCHANGE`: the candles this platform recorded, from its store
        data = None

    def prepare(config: BacktestConfig) -> Any:
        if recorded is not None:
            return prepare_backtest(cls, _params(param), recorded, config)
        return prepare_any_backtest(cls, _params(param), data, config, settings_fn().data_path)

    prepared = prepare(config)
    if prepared.timeframe_note is not None:  # on stderr, so --json output stays one object
        err.print(f"[yellow]note:[/yellow] {escape(prepared.timeframe_note)} (--param timeframe=... chooses another)")
    with console.status("running backtest", spinner="dots") if sys.stderr.isatty() else _null():
        outcome = finish_backtest(prepared)
        if compare and outcome.report is not None:
            without = prepare(msgspec.structs.replace(config, rules=[]))
            other = finish_backtest(without).report or {}
            outcome.report["final_equity_without_rules"] = other.get("final_equity_exact")
            outcome.report["rules_effect"] = plain_decimal(Decimal(outcome.report["final_equity_exact"])
                                                           - Decimal(other["final_equity_exact"]))
    return _keep(outcome, prepared.runtime, save, report, settings_fn)


def _recorded(data: list[str] | None, cls: Any, params: dict[str, Any], config: Any, settings: Any) -> list[Any] | None:
    """`--data recorded:EXCHANGE`: the recorded candles, read from the configured store; None for files."""
    from coinwire.cli.common import on_store
    from coinwire.engine.runs import recorded_candles
    from coinwire.history.recorded import is_recorded

    if not any(is_recorded(item) for item in data or ()):
        return None
    known = [c.name for c in settings.exchanges]
    found = on_store(settings, lambda store: recorded_candles(store, data, cls, params, config, known))
    if found is None:
        raise CoinwireError("recorded_missing", f"nothing is recorded in {settings.data_path}: paper or live trading in a "
                            "server records candles (`coinwire serve`)")
    return found


def _keep(outcome: Any, runtime: Any, save: bool, report: Path | None, settings_fn: Any) -> Any:
    """Store the run (unless --no-save) and write its HTML report (with --report)."""
    from coinwire.engine.runs import RunStore

    if save:
        RunStore(settings_fn().data_path / "runs").save(outcome, runtime)
    if report is not None:
        from coinwire.engine.html_report import write_html_report

        write_html_report(report, outcome, runtime)
    return outcome


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise CoinwireError("invalid_speed", f"--speed must be a positive factor (1 = recorded pace) or 'max', got {text!r}")
    return value


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_PERPETUAL_KEYS = ("funding_paid", "funding_received", "funding_gaps", "liquidation_count", "max_leverage_used", "long_exposure",
                   "short_exposure")


def _print_summary(rep: dict[str, Any], status: str, error: str | None) -> None:
    table = Table("metric", "value", title=f"{rep.get('strategy')} {rep.get('mode', 'backtest')} {rep.get('run_id')} ({status})")
    for key in ("start", "end", "initial_equity", "final_equity", "total_return", "cagr", "sharpe", "sortino", "max_drawdown",
                "entries", "exits", "win_rate", "profit_factor", "exposure", "fees", "orders", "candles", "intrabar",
                "bars_with_both_legs", *_PERPETUAL_KEYS):
        if key in ("intrabar", "bars_with_both_legs", *_PERPETUAL_KEYS) and key not in rep:
            continue  # candle backtests only; perpetual runs only
        value = rep.get(key)
        if isinstance(value, float):
            value = f"{value:.6g}" if key not in ("total_return", "cagr", "max_drawdown", "win_rate", "exposure", "long_exposure",
                                                 "short_exposure") else f"{value:.2%}"
        table.add_row(key, "-" if value is None else str(value))
    if "rules_effect" in rep:
        table.add_row("rules_effect", str(rep["rules_effect"]))
    console.print(table)
    firings = rep.get("rule_firings")
    if firings is not None:
        console.print(f"rule firings: {len(firings)}" if firings else "rule firings: none")
        for firing in firings:
            values = ", ".join(f"{k}={v}" for k, v in firing["values"].items())
            actions = ", ".join(f"{a['kind']} {a['status']}" for a in firing["actions"])
            console.print(f"  {firing['time']} {escape(firing['rule_set'])}: {escape(values)} -> {actions}")
    if error:
        err.print(f"[red]strategy failed:[/red] {escape(error)}")


@runs_app.command("list")
def list_runs(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Runs stored in the data directory, newest first, with their headline figures."""
    from coinwire.engine.runs import RunStore

    runs = RunStore(_settings_of(ctx).data_path / "runs").list()
    if as_json:
        sys.stdout.write(json.dumps(runs) + "\n")
        return
    table = Table("run id", "strategy", "mode", "status", "total return", "sharpe", "max drawdown", "entries", title="Runs")
    for run in runs:
        m = run.get("metrics") or {}
        table.add_row(run["run_id"], run["strategy"], run["mode"], run["status"], _pct(m.get("total_return")),
                      _num(m.get("sharpe")), _pct(m.get("max_drawdown")), _num(m.get("entries")))
    console.print(table)


@runs_app.command("show")
def show_run(ctx: typer.Context, run_id: str = typer.Argument(..., help="A run id from `coinwire runs list`."),
             as_json: bool = typer.Option(False, "--json", help="Print the run with its report as one JSON object.")) -> None:
    """One run: its status, report figures and trades (or why it failed)."""
    from coinwire.engine.runs import RunStore

    try:
        run = RunStore(_settings_of(ctx).data_path / "runs").get(run_id)
    except CoinwireError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)} [dim]({exc.code})[/dim]")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(run) + "\n")
        return
    if run.get("report"):
        _print_summary(run["report"], run["status"], run.get("error"))
    else:
        console.print(f"{escape(run['strategy'])} {run['mode']} {run['run_id']}: {run['status']}")
        if run.get("error"):
            err.print(f"[red]{escape(run['error'])}[/red]")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.2%}"


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
