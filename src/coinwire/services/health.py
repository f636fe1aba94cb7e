"""Health of one coinwire process, `online` or `degraded` with the reasons why: the one answer /readyz and get_status give.

The signals are the ones the platform already keeps: the ports' pings (store, bus, cache),
the SQLite journal's helper (stopped, or records set aside that the database refused), and
each exchange's state in the gateway (markets loaded, books synced, a live feed's stale
symbols, a live venue's account read, a feed that stopped). Every reason is a stable code with
a human message, and names no user and no internal detail (no URL, no path, no exception
text): /readyz is public.

The pings are the only I/O, and `get_status` is a latency probe for clients and benchmarks: a
ping result is reused for `PING_TTL` seconds (measured from when the ping started, so no answer
is older than that plus the ping's own time), and callers that arrive while a ping is under way
wait for that same ping instead of starting another. Everything else is read from memory on
every call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from coinwire.services.gateway import Gateway
    from coinwire.store import Store
    from coinwire.venues.hosted import HostedVenue

__all__ = ["Health", "Reason", "breaker_reasons", "PING_TTL", "PING_TIMEOUT", "ONLINE", "DEGRADED"]

PING_TTL = 1.0  # seconds a ping of the store, bus and cache answers for
PING_TIMEOUT = 2.0  # seconds a port has to answer before it counts as unreachable
ONLINE, DEGRADED = "online", "degraded"
_LISTED = 10  # symbols named in a message; the reason's `symbols` has them all


class Pingable(Protocol):
    async def ping(self) -> bool: ...


class Reason(msgspec.Struct, frozen=True, omit_defaults=True):
    """Why the process is degraded: a stable `code`, a human `message`, and what it concerns."""

    code: str
    message: str
    exchange: str | None = None
    symbols: list[str] | None = None
    dependency: str | None = None  # an outbound dependency whose circuit breaker is not closed


_PORT_REASONS = {
    "store": Reason("store_unreachable", "the database does not answer: reads and writes fail until it is back"),
    "bus": Reason("bus_unreachable", "the message bus does not answer: market data, orders' notifications and logs do not flow"),
    "cache": Reason("cache_unreachable", "the cache does not answer: latest prices and rate limits kept there are unavailable"),
}
_JOURNAL_STOPPED = Reason(
    "store_journal_stopped",
    "the store journal's helper process stopped: changes are kept in the journal, but reads fail until the server restarts",
)


def _symbols(symbols: list[str]) -> str:
    shown = ", ".join(symbols[:_LISTED])
    return shown if len(symbols) <= _LISTED else f"{shown} and {len(symbols) - _LISTED} more"


def exchange_reasons(exchange: HostedVenue, feed_stopped: bool = False) -> list[Reason]:
    """Why an exchange is not `ready`, from what the gateway knows of it (empty when it is ready)."""
    name = exchange.name
    if exchange.status == "stopped":
        return [Reason("exchange_stopped", f"exchange {name} is stopped", name)]
    reasons = []
    if feed_stopped:
        reasons.append(Reason("feed_stopped", f"the market-data feed of exchange {name} stopped with an error (see the server log); "
                                              "its books no longer move", name))
    if not exchange.funds_known:  # a live exchange until the venue's account has been read
        reasons.append(Reason("venue_not_connected", f"exchange {name} has not reached its venue's account yet "
                                                     "(connecting, retried with backoff); orders are refused until it has", name))
    if not exchange.markets:
        if not feed_stopped:
            reasons.append(Reason("feed_not_connected", f"exchange {name} has no markets yet: its market-data feed has not "
                                                        "connected (retried with backoff)", name))
    else:
        stale = sorted(exchange.stale)
        if stale:
            reasons.append(Reason("feed_stale", f"market data for {_symbols(stale)} on exchange {name} is not flowing "
                                                "(the feed is retrying)", name, stale))
        unsynced = sorted(s for s, m in exchange.markets.items() if not m.synced)
        if unsynced:
            reasons.append(Reason("book_not_synced", f"the order book of {_symbols(unsynced)} on exchange {name} is not synced",
                                  name, unsynced))
    if not reasons and exchange.status != "ready":  # between a change and the gateway's announcing it
        reasons.append(Reason("exchange_not_ready", f"exchange {name} is {exchange.status}", name))
    return reasons


class OpenBreakers(Protocol):
    """The breakers' registry as health reads it (services/breakers.Breakers)."""

    def reasons(self) -> list[tuple[str, str, str]]: ...


def breaker_reasons(breakers: OpenBreakers) -> Callable[[], list[Reason]]:
    """A reason source for `Health.reason_sources`: one reason per circuit breaker that is not closed.

    They say what is degraded (the features that need that dependency) and leave `ready` alone:
    an open SMTP breaker must not take a process that still takes orders out of its load balancer.
    """
    return lambda: [Reason(code, message, dependency=name) for name, code, message in breakers.reasons()]


class Health:
    """Computes the process's health on demand; `report()` is what /readyz and get_status answer from."""

    def __init__(
        self,
        store: Store,
        bus: Pingable,
        cache: Pingable,
        gateway: Gateway,
        *,
        ttl: float = PING_TTL,
        timeout: float = PING_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.ttl = ttl
        self.timeout = timeout
        self._ports: tuple[tuple[str, Pingable], ...] = (("store", store), ("bus", bus), ("cache", cache))
        self._clock = clock
        self._checks: dict[str, bool] | None = None
        self._checked_at = 0.0
        self._probe: asyncio.Future[dict[str, bool]] | None = None
        self.feeds_stopped: set[str] = set()  # exchanges whose feed task ended with an error
        # more reasons, asked at every report: degraded features that do not make the process not ready (the circuit
        # breakers' `breaker_reasons`); add to this list, never replace it
        self.reason_sources: list[Callable[[], list[Reason]]] = []

    def feed_stopped(self, exchange: str) -> None:
        """A feed's task ended with an error: its exchange's books no longer move (until the next start)."""
        self.feeds_stopped.add(exchange)

    async def checks(self) -> dict[str, bool]:
        """Whether each port answers: the last ping if it started less than `ttl` ago, else a new one (shared)."""
        if self._checks is not None and self._clock() - self._checked_at < self.ttl:
            return self._checks
        probe = self._probe
        if probe is None:
            probe = self._probe = asyncio.ensure_future(self._ping_all())
        # shielded: a caller that goes away (its connection closed) does not cancel the others' ping
        return await asyncio.shield(probe)

    async def _ping_all(self) -> dict[str, bool]:
        started = self._clock()
        try:
            answers = await asyncio.gather(*(self._ping(port) for _, port in self._ports))
            checks = {name: ok for (name, _), ok in zip(self._ports, answers, strict=True)}
            self._checks, self._checked_at = checks, started
            return checks
        finally:
            self._probe = None

    async def _ping(self, port: Pingable) -> bool:
        try:
            return bool(await asyncio.wait_for(port.ping(), self.timeout))
        except Exception:  # noqa: BLE001 - a port that raises instead of answering is as unreachable as one that says so
            return False

    async def report(self) -> dict[str, Any]:
        """`status` (`online` | `degraded`), `reasons`, `ready` (the ports all answer), `checks` and each exchange's status."""
        checks = dict(await self.checks())  # a copy: the journal's state may change this answer, not the cached one
        reasons: list[Reason] = []
        journal = self.store.journal
        journal_stopped = journal is not None and journal.failure is not None
        if journal_stopped:
            reasons.append(_JOURNAL_STOPPED)  # the database itself may answer; what matters is that reads wait in vain
            checks["store"] = False  # as Store.ping says, now rather than at the next ping
        for name, ok in checks.items():
            if not ok and not (name == "store" and journal_stopped):
                reasons.append(_PORT_REASONS[name])
        if journal is not None and journal.refused:
            reasons.append(Reason("store_journal_refused", f"{journal.refused} acknowledged change set(s) the database refused were "
                                                           "set aside, not applied (see the server log); they are missing from the "
                                                           "database"))
        if self.store.fence.lost is not None:  # gateway leases: stepped down, another process owns the shard
            reasons.append(Reason("lease_lost", "this gateway stepped down: its lease was lost, another process writes its "
                                                "shard; orders are refused with gateway_unavailable"))
            checks["lease"] = False
        exchanges = self.gateway.venues
        for name, exchange in exchanges.items():
            reasons += exchange_reasons(exchange, name in self.feeds_stopped)
        for source in self.reason_sources:
            reasons += source()
        return {
            "status": DEGRADED if reasons else ONLINE,
            "reasons": [msgspec.to_builtins(r) for r in reasons],
            "ready": all(checks.values()),
            "checks": checks,
            "exchanges": {name: e.status for name, e in exchanges.items()},
        }

    async def close(self) -> None:
        """Wait for a ping under way (a shutdown leaves no task behind)."""
        if self._probe is not None:
            await asyncio.gather(self._probe, return_exceptions=True)
