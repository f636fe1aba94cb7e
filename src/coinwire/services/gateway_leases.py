"""The gateway's leases: one process writes a shard (`gateway:<exchange>`) at a time; another takes over when it dies.

Why: with a shared PostgreSQL store several gateway processes may run; each exchange's accounts
must have exactly one writer. At start the gateway takes its shard's leases (waiting, while
another holds one, until that one expires or is released), and only then reads its state from
the store, so it sees everything the previous holder committed. The leases are renewed every
third of their duration; a holder that cannot renew before its lease would expire steps down
(stops writing; the store's fence refuses its change sets anyway: store.fence). Expiry is judged
by the database's clock (store.leases), so holders on different machines agree.

A gateway renews only while its bus answers (connected, and a ping's round trip back within a sixth
of the lease: a link cut without a reset leaves a NATS connection "connected" for minutes): one cut
off from NATS can neither hear market data nor publish what it commits, so it lets its leases run out (stepping down at the deadline,
`lost` says the bus was lost) and a gateway that still has the bus takes over after the expiry.
A waiting gateway takes a lease only while its bus is connected, for the same reason. A gateway
that stepped down tries, at its renewal pace, to take its shard back: once its bus answers and
every lease of the shard is free (no other gateway took it over), it takes them, reloads its memory
from the store (another holder may have written meanwhile; its own memory may have run ahead of a
refused commit) and writes again. While another holds the shard it stays down, a standby.

Each process with a PostgreSQL store also says it runs (`cluster_members`, a heartbeat at the
same pace) for `coinwire cluster status`. With a SQLite store there is one process: nothing here
runs and nothing changes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from coinwire.config import Settings
from coinwire.core.leases import Lease
from coinwire.services.waiting_probe import WaitingProbe
from coinwire.store import Store
from coinwire.store.leases import acquire_lease, heartbeat, leave, release_lease, renew_lease

__all__ = ["Connected", "GatewayLeases", "holder_id", "lease_name"]

log = structlog.get_logger("coinwire.gateway_leases")

_FORGET_MS = 60_000  # members unseen this long (or ten leases, if longer) leave `cluster status`
_RETRY_CAP = 1.0  # seconds between a waiting gateway's attempts at most, whatever the lease's duration (a clean stop is seen soon)


def lease_name(exchange: str) -> str:
    """The lease a gateway holds to write an exchange's accounts."""
    return f"gateway:{exchange}"


def holder_id(roles: Sequence[str]) -> str:
    """This process as a lease holder and cluster member: host:pid:roles (unique while it runs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{'+'.join(roles) or 'all'}"


class GatewayLeases:
    """Acquires, renews and releases this gateway's leases; `waiting` says what it waits for, `lost` why it stepped down."""

    def __init__(self, store: Store, settings: Settings, holder: str | None = None, bus: Connected | None = None,
                 reload: Callable[[], Awaitable[None]] | None = None) -> None:
        """`bus`: the process's bus, whose `connected` gates every renewal and grant (None: the leases do not depend on it).

        `reload`: the gateway's reload from the store, run when it takes its shard back after a step-down
        (None: a gateway that stepped down stays down).
        """
        self.store = store
        self.bus = bus
        self.reload = reload
        self.rejoins = 0  # times this gateway took its shard back after stepping down
        self.bus_lost_at: float | None = None  # monotonic instant a renewal first found the bus away (None: connected)
        self.enabled = store.dialect == "postgresql"
        self.names = [lease_name(e) for e in settings.gateway_exchanges]
        self.seconds = settings.gateway_lease_seconds
        self.ttl_ms = max(1, int(settings.gateway_lease_seconds * 1000))
        self.roles = "+".join(settings.roles)
        self.holder = holder or holder_id(settings.roles)
        self.held: dict[str, Lease] = {}
        self.waiting: str | None = None  # "waiting for lease gateway:binance held by <holder>" while it does
        self._deadline: dict[str, float] = {}  # lease -> monotonic instant by which it surely expired (unless renewed)
        self._task: asyncio.Task[None] | None = None
        # while it waits, the server's port answers /readyz with what it waits for (the API binds it only later)
        self._probe = WaitingProbe(settings.host, settings.port, lambda: self.waiting)

    @property
    def lost(self) -> str | None:
        """Why this gateway stepped down (its store's fence is lost), or None while it writes."""
        return self.store.fence.lost

    async def acquire(self) -> None:
        """Take every lease of the shard, waiting as long as another holds one; then renew them in the background."""
        if not self.enabled:
            return
        await self._beat()
        self._task = asyncio.create_task(self._renew_loop(), name="gateway-leases")
        stop_waiting = _StopOnSignal()
        try:
            for name in self.names:
                await self._acquire_one(name, stop_waiting)
        finally:
            stop_waiting.restore()
            await self._probe.close()
        self.waiting = None
        if self.names:
            log.info("gateway leases held", leases={n: lease.token for n, lease in self.held.items()}, holder=self.holder)

    async def _acquire_one(self, name: str, stop_waiting: _StopOnSignal) -> None:
        told: str | None = None
        pause = min(_RETRY_CAP, self.seconds / 6)
        while True:
            if not await self._bus_answers():  # a gateway without its bus would hold the shard and serve nothing
                self.waiting = f"waiting for the bus before taking lease {name}"
                await asyncio.sleep(pause)
                continue
            sent = time.monotonic()
            try:
                granted, current = await acquire_lease(self.store, name, self.holder, self.ttl_ms)
            except Exception as exc:  # noqa: BLE001 - the store is unreachable: try again, as long as it takes
                log.warning("could not reach the store for a lease; retrying", lease=name, error=str(exc))
                await asyncio.sleep(pause)
                continue
            if granted is not None:
                self.held[name] = granted
                self._deadline[name] = sent + self.seconds
                self.store.fence.hold(name, self.holder, granted.token, self.ttl_ms)  # before the gateway reads or writes anything
                return
            holder = current.holder if current is not None else "?"
            first = self.waiting is None
            self.waiting = f"waiting for lease {name} held by {holder}"
            if first:
                await self._probe.start()
                stop_waiting.install()
            if holder != told:
                log.info(self.waiting, lease=name, holder=holder)
                told = holder
            await asyncio.sleep(pause)

    async def _beat(self) -> None:
        try:
            await heartbeat(self.store, self.holder, self.roles, forget_after_ms=max(_FORGET_MS, 10 * self.ttl_ms))
        except Exception as exc:  # noqa: BLE001 - presence is informational: the next beat tries again
            log.warning("cluster heartbeat failed", error=str(exc))

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            if self.lost is None:
                await self.renew()
            else:
                await self.rejoin()
            await self._beat()

    async def rejoin(self) -> bool:
        """After a step-down: take the shard back if every lease of it is free, reload from the store, write again.

        Why: most step-downs follow an outage of the store or the bus longer than a lease, or a stall
        of this process; once both answer and no other gateway took the shard, leaving it without a
        writer helps nobody. The leases are taken first, then memory is reloaded while the fence still
        refuses (commands answer `gateway_unavailable`), and only then is the fence held again. A lease
        taken while another of the shard is held elsewhere is given back at once. True when it wrote again.
        """
        if self.reload is None or not self.names or not await self._bus_answers():
            return False
        taken: dict[str, tuple[Lease, float]] = {}
        try:
            for name in self.names:
                sent = time.monotonic()
                granted, _ = await acquire_lease(self.store, name, self.holder, self.ttl_ms)
                if granted is None:  # another gateway holds it: this one stays a standby
                    break
                taken[name] = (granted, sent)
            if len(taken) == len(self.names):
                await self.reload()
        except Exception as exc:  # noqa: BLE001 - the store is still away or the reload failed: the next turn tries again
            log.warning("could not take the shard back yet", error=str(exc) or type(exc).__name__)
            await self._give_back([lease for lease, _ in taken.values()])
            return False
        if len(taken) < len(self.names):
            await self._give_back([lease for lease, _ in taken.values()])
            return False
        self.held.clear()
        self.store.fence.tokens.clear()
        for name, (lease, sent) in taken.items():
            self.held[name] = lease
            self._deadline[name] = sent + self.seconds
            self.store.fence.hold(name, self.holder, lease.token, self.ttl_ms)
        self.bus_lost_at = None
        self.rejoins += 1
        self.store.fence.regain()
        log.info("gateway took its shard back after stepping down", leases={n: lease.token for n, lease in self.held.items()})
        return True

    async def _give_back(self, leases: list[Lease]) -> None:
        for lease in leases:
            try:
                await release_lease(self.store, lease)
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                log.warning("could not give a lease back; it expires by itself", lease=lease.name, error=str(exc))

    async def renew(self) -> None:
        """Renew every lease held; step down when one was taken, or when it could not be renewed before it expired.

        While the bus does not answer nothing is renewed: the leases run out, then it steps down.
        """
        bus_ok = await self._bus_answers() if self.held else True
        for name, lease in list(self.held.items()):
            if self.lost is not None:
                return
            if time.monotonic() >= self._deadline[name]:
                why = "the bus was lost, so it was not renewed" if self.bus_lost_at is not None else "it could not be renewed"
                self._step_down(name, f"{why} before it expired")
                return
            if not bus_ok:  # cut off from NATS: let the lease run out, so a gateway with the bus takes over
                if self.bus_lost_at is None:
                    self.bus_lost_at = time.monotonic()
                    log.warning("the bus is away: gateway leases are not renewed (the gateway steps down at the deadline "
                                "unless the bus is back before)", lease=name, left=round(self._deadline[name] - self.bus_lost_at, 2))
                continue
            if self.bus_lost_at is not None:
                log.info("the bus is back before the lease's deadline: renewing again", lease=name)
                self.bus_lost_at = None
            sent = time.monotonic()
            try:  # a store that does not answer (a partition) must not keep this past the deadline
                renewed = await asyncio.wait_for(renew_lease(self.store, lease, self.ttl_ms), self._deadline[name] - sent)
            except TimeoutError:
                self._step_down(name, "the store did not answer its renewal before it expired")
                return
            except Exception as exc:  # noqa: BLE001 - tried again next turn, until its deadline
                log.warning("could not renew a gateway lease; retrying", lease=name, error=str(exc))
                continue
            if renewed is None:
                self._step_down(name, "it expired or another process took it")
                return
            self.held[name] = renewed
            self._deadline[name] = sent + self.seconds

    async def _bus_answers(self) -> bool:
        """The bus is connected and answers a ping within a sixth of the lease (at least 50 ms)."""
        bus = self.bus
        if bus is None:
            return True
        if not bus.connected:
            return False
        try:
            return await asyncio.wait_for(bus.ping(), max(0.05, self.seconds / 6))
        except Exception:  # noqa: BLE001 - a ping that fails or times out: the bus does not answer
            return False

    def _step_down(self, name: str, why: str) -> None:
        reason = f"lease {name} lost: {why}"
        log.error("gateway stepping down: it no longer writes its shard", lease=name, reason=reason)
        self.store.fence.lose(reason)

    async def close(self) -> None:
        """Stop renewing, give the leases back (the next holder need not wait for the expiry) and leave the cluster.

        Called after the gateway committed what it had acknowledged: nothing more is written under them.
        """
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if not self.enabled:
            return
        for name, lease in list(self.held.items()):
            self.store.fence.release(name)
            if self.lost is None:
                try:
                    await release_lease(self.store, lease)
                except Exception as exc:  # noqa: BLE001 - it expires by itself
                    log.warning("could not release a gateway lease; it expires by itself", lease=name, error=str(exc))
        self.held.clear()
        try:
            await leave(self.store, self.holder)
        except Exception as exc:  # noqa: BLE001 - its row ages; `cluster status` shows how long ago it was seen
            log.warning("could not leave the cluster members", error=str(exc))


class Connected(Protocol):
    """What the leases read of the bus: whether it is connected now (`Bus.connected`) and answers a ping (`Bus.ping`)."""

    @property
    def connected(self) -> bool: ...

    async def ping(self) -> bool: ...


class _StopOnSignal:
    """While a gateway waits for a lease, SIGTERM or SIGINT cancels the wait (the process then exits).

    Why: the HTTP server handles those signals only once every service started, and a standby may
    wait indefinitely; without this, stopping it would take a SIGKILL. The server's own handlers are
    put back once the wait is over.
    """

    _SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        task = asyncio.current_task()
        if task is None or self._loop is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            for sig in self._SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
                loop.add_signal_handler(sig, task.cancel)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread: nothing to take over
            self._previous.clear()
            return
        self._loop = loop
        log.debug("a stop signal ends the wait for the gateway leases")

    def restore(self) -> None:
        if self._loop is None:
            return
        for sig, previous in self._previous.items():
            self._loop.remove_signal_handler(sig)
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._loop = None
