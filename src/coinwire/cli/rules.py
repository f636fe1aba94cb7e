"""`coinwire rules list|add FILE|enable ID|disable ID|firings ID`: a running server's rule sets, as COINWIRE_TOKEN may see them."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coinwire.cli.http import UrlOption, server_base, server_call
from coinwire.core.errors import InvalidInput
from coinwire.core.rules import needs_confirmation, parse_rule_set, parse_rule_sets, rule_set_dict

__all__ = ["rules_app"]

rules_app = typer.Typer(help="Rule sets of a running server: list, add from a TOML file, enable, disable, and their firings.",
                        no_args_is_help=True)
_out = Console()
_err = Console(stderr=True, soft_wrap=True)
YesOption = typer.Option(False, "--yes", "-y", help="Confirm enabling a live close_all (it sells everything in its scope when it fires).")
_SPEC_FIELDS = ("name", "scope", "scope_id", "mode", "after", "cooldown", "rules", "actions")
_CONFIRM = "{name}: a live rule set with close_all sells everything in its scope when it fires. Enable it?"


def _fail(message: str) -> NoReturn:
    _err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def _confirmed(name: str, yes: bool) -> bool:
    """--yes, or the user's answer at a terminal (no answer: not confirmed, and nothing is enabled)."""
    return yes or typer.confirm(_CONFIRM.format(name=name), default=False)


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _state(rule_set: dict[str, Any]) -> str:
    """One line of live state: a trailing stop's armed/peak/trigger/distance, else whether each rule holds."""
    parts = []
    for rule in rule_set["status"]["rules"]:
        if "armed" in rule:
            text = "armed" if rule["armed"] else "not armed"
            for key in ("peak", "trigger", "distance_pct"):
                if rule.get(key) is not None:
                    text += f" {key} {rule[key]}"
            parts.append(text)
        else:
            parts.append(f"{rule['kind']} {'holds' if rule.get('holds') else 'waits'}")
    done = " (fired, done)" if rule_set["status"].get("done") else ""
    return "; ".join(parts) + done


@rules_app.command("list")
def list_rule_sets(ctx: typer.Context, url: str | None = UrlOption,
                   as_json: bool = typer.Option(False, "--json", help="Print raw JSON.")) -> None:
    """Your rule sets (admins: every one), with their scope, mode and live state."""
    rule_sets = server_call(server_base(ctx, url), "GET", "/api/v1/rulesets")
    if as_json:
        typer.echo(json.dumps(rule_sets))
        return
    table = Table("id", "name", "scope", "mode", "after", "enabled", "rules", "actions", "state", title="Rule sets")
    for r in rule_sets:
        table.add_row(str(r["id"]), escape(r["name"]), f"{r['scope']} {r['scope_id']}", r["mode"],
                      r["after"] + (f" {r['cooldown']}" if r["cooldown"] else ""), "yes" if r["enabled"] else "no",
                      ", ".join(x["kind"] for x in r["rules"]), ", ".join(x["kind"] for x in r["actions"]), escape(_state(r)))
    _out.print(table)


@rules_app.command("add")
def add(ctx: typer.Context, file: Path = typer.Argument(..., help="A TOML file of [[rule_sets]] (docs/RULES.md)."),
        yes: bool = YesOption, url: str | None = UrlOption) -> None:
    """Add every rule set of a TOML file; the whole file is checked before any is added."""
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        _fail(f"invalid_toml: {file}: {exc}")
    try:
        rule_sets = parse_rule_sets(document)
    except InvalidInput as exc:
        _fail(f"{exc.code}: {file}: {exc.message}")
    confirm = {rs.name: needs_confirmation(rs) and _confirmed(rs.name, yes) for rs in rule_sets}
    refused = [rs.name for rs in rule_sets if needs_confirmation(rs) and not confirm[rs.name]]
    if refused:  # asked before any is added: the file is added whole or not at all
        _fail(f"confirmation_required: not confirmed: {', '.join(refused)}; nothing was added (--yes confirms)")
    base = server_base(ctx, url)
    for rs in rule_sets:
        made = server_call(base, "POST", "/api/v1/rulesets", body={**rule_set_dict(rs), "confirm": confirm[rs.name]})
        typer.echo(f"added rule set {made['id']} {made['name']}: {made['scope']} {made['scope_id']}, {made['mode']}, "
                   f"{'enabled' if made['enabled'] else 'disabled'}")


@rules_app.command("enable")
def enable(ctx: typer.Context, rule_set_id: int, yes: bool = YesOption, url: str | None = UrlOption) -> None:
    """Enable one of your rule sets (its next sample is its reference); a live close_all asks for confirmation."""
    base = server_base(ctx, url)
    found = server_call(base, "GET", f"/api/v1/rulesets/{rule_set_id}")
    sells = needs_confirmation(parse_rule_set({k: found[k] for k in _SPEC_FIELDS} | {"enabled": True}))
    confirm = sells and _confirmed(found["name"], yes)
    if sells and not confirm:
        _fail(f"confirmation_required: rule set {rule_set_id} was not enabled")
    server_call(base, "POST", f"/api/v1/rulesets/{rule_set_id}/enable", body={"confirm": confirm})
    typer.echo(f"enabled rule set {rule_set_id}")


@rules_app.command("disable")
def disable(ctx: typer.Context, rule_set_id: int, url: str | None = UrlOption) -> None:
    """Disable one of your rule sets: it is not evaluated until enabled again."""
    server_call(server_base(ctx, url), "POST", f"/api/v1/rulesets/{rule_set_id}/disable")
    typer.echo(f"disabled rule set {rule_set_id}")


@rules_app.command("firings")
def firings(ctx: typer.Context, rule_set_id: int, limit: int = typer.Option(100, "--limit", help="At most this many, newest first."),
            url: str | None = UrlOption, as_json: bool = typer.Option(False, "--json", help="Print raw JSON.")) -> None:
    """A rule set's firings: when, the values that made it fire, and what each action did."""
    found = server_call(server_base(ctx, url), "GET", f"/api/v1/rulesets/{rule_set_id}/firings", params={"limit": limit})
    if as_json:
        typer.echo(json.dumps(found))
        return
    table = Table("id", "time (UTC)", "mode", "values", "actions", title=f"Firings of rule set {rule_set_id}")
    for f in found:
        values = ", ".join(f"{k} {v}" for k, v in f["values"].items())
        actions = ", ".join(f"{a['kind']} {a['status']}" for a in f["actions"])
        table.add_row(str(f["id"]), _when(f["time"]), f["mode"], escape(values), escape(actions))
    _out.print(table)
