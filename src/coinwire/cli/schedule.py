"""`coinwire schedule list|add|remove|pause|resume`: a running server's schedules, as the caller (COINWIRE_TOKEN) may see them."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coinwire.cli.http import UrlOption, server_base, server_call

__all__ = ["schedule_app"]

schedule_app = typer.Typer(help="Schedules of a running server: list, add, remove, pause and resume your scheduled jobs.",
                           no_args_is_help=True)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)


def _when(schedule: dict[str, Any]) -> str:
    return f"cron {schedule['cron']}" if schedule["cron"] else f"every {schedule['every']}"


def _next(schedule: dict[str, Any]) -> str:
    return "paused" if schedule["paused"] else (schedule["next_runs"][0]["at"] if schedule["next_runs"] else "-")


def _last(schedule: dict[str, Any]) -> str:
    tick = schedule["last_tick"]
    if tick is None:
        return "-"
    return f"{tick['at']} {tick['outcome']}" + (f" ({tick['error']})" if tick["error"] else "")


@schedule_app.command("list")
def list_schedules(ctx: typer.Context, url: str | None = UrlOption,
                   as_json: bool = typer.Option(False, "--json", help="Print raw JSON.")) -> None:
    """Your schedules (admins: every one), with their next run and their latest tick."""
    schedules = server_call(server_base(ctx, url), "GET", "/api/v1/schedules")
    if as_json:
        typer.echo(json.dumps(schedules))
        return
    table = Table("id", "name", "when", "zone", "job", "next run", "last tick", title="Schedules")
    for s in schedules:
        table.add_row(str(s["id"]), escape(s["name"]), _when(s), s["timezone"], s["job"]["kind"], _next(s), escape(_last(s)))
    _out.print(table)


@schedule_app.command("add")
def add(ctx: typer.Context, name: str,
        job: str = typer.Option(..., "--job", help='The job as JSON, e.g. \'{"kind": "run_strategy", "strategy": "ma_cross", '
                                                    '"mode": "paper", "balances": {"demo:USDT": "1000"}, "for": "1h"}\'.'),
        cron: str | None = typer.Option(None, "--cron", help="A cron expression in the time zone, e.g. '*/5 * * * *'."),
        every: str | None = typer.Option(None, "--every", help="An interval: 30s, 1m, 1h, 1d (local midnight), 1w."),
        timezone: str | None = typer.Option(None, "--timezone", help="An IANA zone (default: your preference's)."),
        misfire: str = typer.Option("skip", "--misfire", help="skip (run the latest missed tick) or catch_up."),
        limit: int | None = typer.Option(None, "--limit", help="catch_up: at most this many missed ticks run."),
        paused: bool = typer.Option(False, "--paused", help="Add it paused."),
        url: str | None = UrlOption) -> None:
    """Add a schedule: a job run on a cron expression or an interval, in your time zone."""
    try:
        job_body = json.loads(job)
    except ValueError as exc:
        _err.print(f"[red]error:[/red] invalid_job: --job is not JSON: {escape(str(exc))}")
        raise typer.Exit(2) from None
    body: dict[str, Any] = {"name": name, "job": job_body, "misfire": {"policy": misfire, "limit": limit}, "paused": paused}
    body.update({k: v for k, v in (("cron", cron), ("every", every), ("timezone", timezone)) if v is not None})
    made = server_call(server_base(ctx, url), "POST", "/api/v1/schedules", body=body)
    typer.echo(f"added schedule {made['id']} {made['name']}: {_when(made)} in {made['timezone']}, next {_next(made)}")


@schedule_app.command("remove")
def remove(ctx: typer.Context, schedule_id: int, url: str | None = UrlOption) -> None:
    """Remove one of your schedules (with its tick history)."""
    server_call(server_base(ctx, url), "DELETE", f"/api/v1/schedules/{schedule_id}")
    typer.echo(f"removed schedule {schedule_id}")


@schedule_app.command("pause")
def pause(ctx: typer.Context, schedule_id: int, url: str | None = UrlOption) -> None:
    """Pause one of your schedules: nothing runs until it is resumed."""
    server_call(server_base(ctx, url), "POST", f"/api/v1/schedules/{schedule_id}/pause")
    typer.echo(f"paused schedule {schedule_id}")


@schedule_app.command("resume")
def resume(ctx: typer.Context, schedule_id: int, url: str | None = UrlOption) -> None:
    """Resume one of your schedules from now (the ticks it missed while paused do not run)."""
    made = server_call(server_base(ctx, url), "POST", f"/api/v1/schedules/{schedule_id}/resume")
    typer.echo(f"resumed schedule {schedule_id}, next {_next(made)}")
