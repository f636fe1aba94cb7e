"""The process's circuit breakers by dependency name, each call through one, their state in /metrics and /readyz.

Why: every outbound dependency (a CCXT venue or feed, the SMTP relay, Telegram, a webhook's
host, a reference-data source, the CCXT rate source) gets one breaker (core/breaker.py), shared
by every caller of that dependency in this process, so that a dependency that is down is
refused at once instead of timing out each caller, and comes back through one probe.
Names: `ccxt:<exchange>`, `feed:<exchange>`, `rates:<exchange>`, `smtp`, `telegram`,
`webhook:<host>`, `refdata:<source>` (docs/BREAKERS.md).

The thresholds are the settings `breaker_failures` and `breaker_reset_seconds`; the clock is
the event loop's monotonic one (passed in, so tests can move it).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

import structlog

from coinwire.core.breaker import Breaker, BreakerState, DependencyUnavailable, FailureTest
from coinwire.metrics import BREAKER_OPENS, watch_breakers

if TYPE_CHECKING:
    from coinwire.config import Settings

__all__ = ["Breakers", "Guard", "breaker_reason", "public_name"]

log = structlog.get_logger("coinwire.breakers")


def _any_exception(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


class Guard:
    """One named breaker as its callers hold it (a `core.breaker.DependencyGuard`)."""

    def __init__(self, name: str, breaker: Breaker, clock: Callable[[], float]) -> None:
        self.name = name
        self.breaker = breaker
        self._clock = clock

    def call(self, is_failure: FailureTest | None = None) -> AbstractAsyncContextManager[None]:
        """`async with guard.call(is_failure): <one call>`: refused at once when open (DependencyUnavailable)."""
        return self._call(is_failure or _any_exception)

    @asynccontextmanager
    async def _call(self, is_failure: FailureTest) -> AsyncIterator[None]:
        breaker = self.breaker
        now = self._clock()
        permit = breaker.admit(now)
        if permit is None:
            raise DependencyUnavailable(self.name, breaker.retry_after(now))
        opens = breaker.opens
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, Exception):  # cancelled, interpreter exit: no verdict on the dependency
                breaker.abandoned(permit)
            elif is_failure(exc):
                breaker.failed(permit, self._clock())
            else:
                breaker.succeeded(permit, self._clock())
            if breaker.opens != opens:
                self._opened(exc)
            raise
        else:
            was = breaker.state
            breaker.succeeded(permit, self._clock())
            if was is not BreakerState.CLOSED and breaker.state is BreakerState.CLOSED:
                log.info("dependency back: its breaker closed", dependency=self.name)

    def _opened(self, exc: BaseException) -> None:
        BREAKER_OPENS.labels(self.name).inc()
        log.warning("dependency failing: its breaker opened", dependency=self.name, failures=self.breaker.failures,
                    pause_seconds=self.breaker.reset_seconds, error=type(exc).__name__)


class Breakers:
    """The registry: one breaker per dependency name, made on first use with the process's thresholds."""

    def __init__(self, failures: int = 5, reset_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        Breaker(failures, reset_seconds)  # the thresholds' check, before any dependency needs one
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self._guards: dict[str, Guard] = {}

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.monotonic) -> Breakers:
        """The registry with `breaker_failures` and `breaker_reset_seconds`."""
        return cls(settings.breaker_failures, settings.breaker_reset_seconds, clock)

    def get(self, name: str) -> Guard:
        """The guard of dependency `name` (made closed on first use)."""
        guard = self._guards.get(name)
        if guard is None:
            guard = self._guards[name] = Guard(name, Breaker(self.failures, self.reset_seconds), self.clock)
        return guard

    def states(self) -> dict[str, int]:
        """Each known dependency's state as the gauge shows it (0 closed, 1 half-open, 2 open)."""
        now = self.clock()
        return {name: int(g.breaker.state_at(now)) for name, g in self._guards.items()}

    def not_closed(self) -> list[tuple[str, BreakerState, float]]:
        """(name, state, seconds until a probe may pass) of every breaker that is not closed, by name."""
        now = self.clock()
        out: list[tuple[str, BreakerState, float]] = []
        for name in sorted(self._guards):
            breaker = self._guards[name].breaker
            state = breaker.state_at(now)
            if state is not BreakerState.CLOSED:
                out.append((name, state, breaker.retry_after(now)))
        return out

    def reasons(self) -> list[tuple[str, str, str]]:
        """(dependency, code, message) of each breaker that is not closed: /readyz's reasons (services/health.py).

        /readyz is public: a webhook's host is a user's setting, so those breakers show as `webhook` (once).
        """
        out: dict[str, tuple[str, str, str]] = {}
        for name, state, wait in self.not_closed():
            public = public_name(name)
            if public not in out or state is BreakerState.OPEN:
                out[public] = (public, *breaker_reason(public, state, wait))
        return list(out.values())

    def watch(self) -> None:
        """Show these breakers' states on /metrics (`coinwire_breaker_state`), read at scrape time."""
        watch_breakers(self)


def public_name(name: str) -> str:
    """The name a public page shows: a webhook's host (a user's setting) left out."""
    return "webhook" if name.startswith("webhook:") else name


def breaker_reason(name: str, state: BreakerState, retry_after: float) -> tuple[str, str]:
    """The /readyz reason's code and message for a breaker that is not closed (what degrades, not why)."""
    if state is BreakerState.OPEN:
        return ("breaker_open", f"calls to {name} are paused after repeated failures (the next try in {retry_after:.0f} s); "
                                "only the features that need it are degraded")
    return ("breaker_half_open", f"calls to {name} were paused after repeated failures; the next call tries it again")
