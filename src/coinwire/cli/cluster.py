"""`coinwire cluster status`: the gateway leases, the live processes and the journal's lag, read from the store directly.

Why from the store and not a server: the leases and the members' heartbeats live there
(store.leases), so the answer is the same whichever process is up, and it works while none is.
Point it at the deployment's store with COINWIRE_STORE_URL (or --config).
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from coinwire.cli.common import console, fail, on_store, root_settings

__all__ = ["cluster_app"]

cluster_app = typer.Typer(help="The cluster sharing one store: gateway leases, live processes, lag.", no_args_is_help=True)


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


async def _status(store: Any) -> dict[str, Any]:
    from coinwire.store.journal_lag import journal_behind_bytes
    from coinwire.store.leases import as_rows, list_leases, list_members

    return {"store": store.dialect, "leases": as_rows(await list_leases(store)), "members": as_rows(await list_members(store)),
            "journal_behind_bytes": await journal_behind_bytes(store)}


@cluster_app.command("status")
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Who holds each gateway lease (and for how long yet), the processes last seen, and the SQLite journal's lag."""
    settings = root_settings(ctx)
    try:
        found = on_store(settings, _status)
    except Exception as exc:  # noqa: BLE001 - an unreachable store is the operator's answer, not a traceback
        fail(f"cannot read the store: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    answer = found or {"store": "sqlite", "leases": [], "members": [], "journal_behind_bytes": None}
    if as_json:
        typer.echo(json.dumps(answer))
        return
    leases = Table("lease", "holder", "token", "expires in", title="Gateway leases")
    for lease in answer["leases"]:
        left = lease["expires_in_ms"]
        leases.add_row(escape(lease["name"]), escape(lease["holder"]), str(lease["token"]),
                       _seconds(left) if left > 0 else f"expired {_seconds(-left)} ago")
    console.print(leases if answer["leases"] else "no gateway leases (a SQLite store, or no gateway ran on this store)")
    members = Table("process", "roles", "last seen", title="Processes")
    for member in answer["members"]:
        members.add_row(escape(member["holder"]), escape(member["roles"]), f"{_seconds(member['age_ms'])} ago")
    console.print(members if answer["members"] else "no process has said it runs (heartbeats need a PostgreSQL store)")
    behind = answer["journal_behind_bytes"]
    if behind is not None:
        console.print(f"store journal: {behind} bytes acknowledged, not yet in the database")
