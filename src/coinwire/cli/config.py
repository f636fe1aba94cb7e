"""`coinwire config`: the effective configuration, as a usable --config file or JSON."""

from __future__ import annotations

import json
from typing import Any

import typer

from coinwire.cli.common import console, root_settings

__all__ = ["config_app"]

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


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
def config_show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON instead of TOML.")) -> None:
    """Print the effective configuration (defaults < file < environment < flags), as a usable --config file."""
    data = root_settings(ctx).to_public()
    if as_json:
        console.print_json(json.dumps(data))
        return
    # plain echo: Rich would read `[[exchanges]]` as markup and wrap long paths
    lines = _toml_lines({k: v for k, v in data.items() if k != "exchanges" or not v})  # `exchanges = []` stays
    for ex in data["exchanges"]:
        lines += ["", "[[exchanges]]", *_toml_lines(ex)]
    typer.echo("\n".join(lines))
