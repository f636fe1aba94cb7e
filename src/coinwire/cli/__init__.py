"""The `coinwire` command: one Typer app, one module per command group (serve, config, the views of a running
server, order, run and runs, ohlcv, data, record, user and keys, accounts, schedule, rules, frontier).
"""

from __future__ import annotations

import typer

from coinwire.cli.accounts import accounts_app
from coinwire.cli.cluster import cluster_app
from coinwire.cli.config import config_app
from coinwire.cli.data import data_app
from coinwire.cli.frontier import frontier_command
from coinwire.cli.ohlcv import ohlcv_command
from coinwire.cli.order import order_app
from coinwire.cli.position import position_app
from coinwire.cli.record import record_command
from coinwire.cli.rules import rules_app
from coinwire.cli.run import run_command, runs_app
from coinwire.cli.schedule import schedule_app
from coinwire.cli.serve import serve
from coinwire.cli.server import book, convert, exchanges, orders, wallets
from coinwire.cli.user import keys_app, user_app

__all__ = ["app", "main"]

app = typer.Typer(help="coinwire: self-hosted crypto trading and portfolio platform.", no_args_is_help=True)


@app.callback()
def main_options(
    config: str | None = typer.Option(None, "--config", "-c", help="TOML configuration file."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Data directory (store, history, run files)."),
) -> None:
    """Options of every command: read by each through `ctx.find_root()` (cli/common.py)."""


app.add_typer(config_app, name="config")
app.command("run")(run_command)
app.command("ohlcv")(ohlcv_command)
app.command("record")(record_command)
app.add_typer(runs_app, name="runs")
app.add_typer(data_app, name="data")
app.add_typer(user_app, name="user")
app.add_typer(keys_app, name="keys")
app.add_typer(accounts_app, name="accounts")
app.add_typer(order_app, name="order")
app.add_typer(position_app, name="position")
app.add_typer(schedule_app, name="schedule")
app.add_typer(rules_app, name="rules")
app.command("frontier")(frontier_command)
app.add_typer(cluster_app, name="cluster")  # gateway leases
for command in (serve, exchanges, book, wallets, orders, convert):
    app.command()(command)


def main() -> None:
    app()
