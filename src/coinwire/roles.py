"""The roles a coinwire process runs: their names, `parse_roles`, the services each runs and the shared ports each needs.

One table (`SERVICES`) says which services a role runs, one (`NEEDS`) which shared ports it needs
when the roles are spread over processes; the composition root (coinwire.app) starts a service
only when one of the process's roles lists it, and `refusals` says why a set of roles cannot
start on the settings given. Pure: no I/O, so that config (which checks `roles`) can use it.
docs/SCALING.md explains each role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["ROLES", "ALL", "SERVICES", "NEEDS", "NEED_GATEWAY", "parse_roles", "services_of", "is_all", "refusals",
           "RoleError"]

ROLES: tuple[str, ...] = ("api", "gateway", "marketdata", "engine", "tracker", "scheduler", "notifier")
ALL = "all"  # every role in one process: the default, today's server

# role -> the services it runs (the names coinwire.app checks before starting each one)
SERVICES: Mapping[str, tuple[str, ...]] = {
    # HTTP, JSON-RPC and push: the access layer, the push streams, recent public trades, live candle and analysis streams
    "api": ("http_api", "push", "public_trades"),
    # the venues' host: accounts, orders, wallets; external accounts' webhook trades, account imports, the log feed
    "gateway": ("gateway", "external_accounts", "account_imports", "log_feed"),
    # feeds, ticker streamers, reference data, candle recording, and the answers to a remote gateway's requests
    "marketdata": ("feeds", "ticker_streamers", "reference_data", "candle_recording", "market_answers"),
    "engine": ("runs",),  # backtests and paper/live runs resumed and driven
    "tracker": ("portfolio_tracker", "daily_stats", "analyser", "controller"),
    "scheduler": ("scheduler",),
    "notifier": ("notifications", "telegram_bots"),
}

# role -> the ports it needs shared (not the embedded SQLite / memory:// defaults) when it runs apart from other roles
NEEDS: Mapping[str, tuple[str, ...]] = {
    "api": ("store", "bus", "cache"),  # users and sessions in the store, pushes off the bus, rate limits and prices in the cache
    "gateway": ("store", "bus"),  # the ledger in the store; market data in and notifications out over the bus
    "marketdata": ("store", "bus", "cache"),  # candles to the store, market data out on the bus, latest prices to the cache
    "engine": ("store", "bus"),  # runs in the store, fills off the bus
    "tracker": ("store", "bus", "cache"),  # portfolio candles to the store, prices from the cache and the bus
    "scheduler": ("store", "bus"),  # schedules and claimed ticks in the store; apart, each tick's job goes to the gateway
    "notifier": ("store", "bus"),  # the outbox in the store, what to notify off the bus
}

# Roles that today reach the gateway in their own process. `api` and `scheduler` are not among them: an api replica
# apart forwards its calls to the gateway's process over the bus, and a scheduler apart claims each tick in the store and
# sends its job there (api/forwarding.py, docs/SCALING.md "Commands across processes", "A scheduler apart").
NEED_GATEWAY: frozenset[str] = frozenset({"engine", "tracker", "notifier"})

_SETTING = {
    "store": "COINWIRE_STORE_URL=postgresql://user@host/db (the default is a SQLite file of this process's own)",
    "bus": "COINWIRE_BUS_URL=nats://host:4222 (the default memory:// bus reaches no other process)",
    "cache": "COINWIRE_CACHE_URL=redis://host:6379/0 (the default memory:// cache is this process's own)",
}


class RoleError(ValueError):
    """A roles value names no known role (the message lists them)."""


def parse_roles(value: str | Iterable[str]) -> frozenset[str]:
    """`"api, gateway"` or `["api", "gateway"]` -> frozenset({"api", "gateway"}); `all` (or nothing) -> every role.

    RoleError names an unknown role and lists the known ones.
    """
    names = value.split(",") if isinstance(value, str) else list(value)
    wanted = {n.strip().lower() for n in names if isinstance(n, str) and n.strip()}
    unknown = sorted(n for n in wanted if n != ALL and n not in ROLES)
    bad = [n for n in names if not isinstance(n, str)]
    if unknown or bad:
        shown = ", ".join(unknown) if unknown else repr(bad[0])
        raise RoleError(f"unknown role {shown}: roles are {ALL} or a comma list of {', '.join(ROLES)}")
    if not wanted or ALL in wanted:
        return frozenset(ROLES)
    return frozenset(wanted)


def is_all(roles: Iterable[str]) -> bool:
    """Whether `roles` is every role (one process serving everything: nothing needs to be shared)."""
    return set(roles) >= set(ROLES)


def services_of(roles: Iterable[str]) -> frozenset[str]:
    """Every service the roles run, from `SERVICES`."""
    return frozenset(s for role in roles for s in SERVICES[role])


def refusals(roles: Iterable[str], *, store_url: str, bus_url: str, cache_url: str) -> list[str]:
    """Why these roles cannot start on these ports (empty: they can), each a message naming the setting to change.

    Every role in one process shares nothing and runs on the embedded defaults. Fewer roles
    are one process of several: each port a role needs must be a shared server, and a role
    that reaches the gateway in-process needs `gateway` beside it (`api` and `scheduler` alone forward to it).
    """
    chosen = set(roles)
    if is_all(chosen):
        return []
    problems: list[str] = []
    lonely = sorted(chosen & NEED_GATEWAY) if "gateway" not in chosen else []
    if lonely:
        problems.append(f"role(s) {', '.join(lonely)} need the gateway role in the same process for now (commands across "
                        f"processes are not there yet): add gateway, e.g. --roles {','.join([*lonely, 'gateway'])}")
    embedded = {
        "store": not store_url.startswith(("postgresql", "postgres")),
        "bus": bus_url in ("", "memory://", "memory"),
        "cache": cache_url in ("", "memory://", "memory"),
    }
    for port in ("store", "bus", "cache"):
        needing = sorted(r for r in chosen if port in NEEDS[r])
        if needing and embedded[port]:
            problems.append(f"role(s) {', '.join(needing)} without every other role in this process need a shared {port}: "
                            f"set {_SETTING[port]}")
    return problems
