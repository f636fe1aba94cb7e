"""A circuit breaker's state machine (closed, open, half-open), pure: the caller passes the time in.

Why: an outbound dependency that is down (an exchange in maintenance, an SMTP relay that
refuses connections) should cost its callers nothing while it is down, instead of a timeout
each, and should be tried again by one call, not by every waiting caller at once.

    closed     calls pass; `failures` consecutive failures open it (a success resets the count)
    open       calls are refused at once, for `reset_seconds` from the opening
    half-open  exactly ONE call (the probe) passes; its success closes the breaker, its
               failure opens it again for another `reset_seconds`; the others are refused

A call asks `admit(now)` for a `Permit` (None: refused) and ends with `succeeded`, `failed` or
`abandoned` (cancelled, or an outcome that says nothing about the dependency). A permit carries
the breaker's generation: the outcome of a call admitted before the breaker last opened or
closed is stale and changes nothing (a slow call from the closed era cannot close a breaker
that opened meanwhile, nor count twice towards opening it).

The refusal itself is `DependencyUnavailable` (code `dependency_unavailable`, retryable, naming
the dependency): a 503 to a client, never a 500.
"""

from __future__ import annotations

import math
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from coinwire.core.errors import NotReady

__all__ = ["Breaker", "BreakerState", "DependencyGuard", "DependencyUnavailable", "FailureTest", "GuardSource", "Permit"]


class BreakerState(IntEnum):
    """The states, numbered as the `coinwire_breaker_state` gauge shows them."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one call: `probe` when it is the half-open state's single trial."""

    generation: int
    probe: bool


class DependencyUnavailable(NotReady):
    """A call refused because the dependency's breaker is open: retry after `retry_after` seconds."""

    def __init__(self, dependency: str, retry_after: float) -> None:
        wait = max(0.0, retry_after)
        super().__init__(
            "dependency_unavailable",
            f"{dependency} is unavailable after repeated failures; calls to it are paused, retry in {math.ceil(wait)} s",
            dependency=dependency,
            retryable=True,
            retry_after=round(wait, 3),
        )
        self.dependency = dependency
        self.retry_after = wait


class Breaker:
    """One dependency's breaker. Not thread-safe; the owner's event loop is its only caller."""

    def __init__(self, failures: int, reset_seconds: float) -> None:
        if failures < 1 or not reset_seconds > 0 or not math.isfinite(reset_seconds):
            raise ValueError("a breaker needs failures >= 1 and a finite reset_seconds > 0")
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.state = BreakerState.CLOSED
        self.consecutive = 0  # failures in a row while closed
        self.opened_at = 0.0
        self.opens = 0  # how many times it opened
        self.generation = 0  # moves at every open and close: permits from before are stale
        self.probing = False  # the half-open probe is out

    def state_at(self, now: float) -> BreakerState:
        """What a caller arriving at `now` meets: an open breaker whose wait is over lets the next call probe."""
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.reset_seconds:
            return BreakerState.HALF_OPEN
        return self.state

    def retry_after(self, now: float) -> float:
        """Seconds until a refused caller may be let through (0 when it may be now, or a probe is out)."""
        if self.state is BreakerState.OPEN:
            return max(0.0, self.opened_at + self.reset_seconds - now)
        return 0.0

    def admit(self, now: float) -> Permit | None:
        """A permit to call now, or None: refused (open, or half-open with its probe out)."""
        if self.state is BreakerState.CLOSED:
            return Permit(self.generation, probe=False)
        if self.state is BreakerState.OPEN:
            if now - self.opened_at < self.reset_seconds:
                return None
            self.state = BreakerState.HALF_OPEN
        if self.probing:
            return None
        self.probing = True
        return Permit(self.generation, probe=True)

    def succeeded(self, permit: Permit, now: float) -> None:
        """The call answered: the dependency works (a probe closes the breaker)."""
        if permit.generation != self.generation:
            return
        if permit.probe:
            if self.state is BreakerState.HALF_OPEN:
                self._close()
        elif self.state is BreakerState.CLOSED:
            self.consecutive = 0

    def failed(self, permit: Permit, now: float) -> None:
        """The dependency failed the call: counted while closed (the threshold opens it); a probe's reopens it."""
        if permit.generation != self.generation:
            return
        if permit.probe:
            if self.state is BreakerState.HALF_OPEN:
                self._open(now)
        elif self.state is BreakerState.CLOSED:
            self.consecutive += 1
            if self.consecutive >= self.failures:
                self._open(now)

    def abandoned(self, permit: Permit) -> None:
        """The call ended without a verdict on the dependency (cancelled): a probe's place is free again."""
        if permit.probe and permit.generation == self.generation and self.state is BreakerState.HALF_OPEN:
            self.probing = False

    def _open(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = now
        self.opens += 1
        self.generation += 1
        self.probing = False
        self.consecutive = 0

    def _close(self) -> None:
        self.state = BreakerState.CLOSED
        self.generation += 1
        self.probing = False
        self.consecutive = 0


class FailureTest(Protocol):
    """Whether an exception a call raised is the dependency's failure (True) or an answer from it (False)."""

    def __call__(self, exc: BaseException, /) -> bool: ...


class DependencyGuard(Protocol):
    """What a client of a dependency holds (services/breakers.py makes them): one breaker, used around each call.

    `async with guard.call(): ...` raises DependencyUnavailable before the call when the breaker
    refuses; an exception from the body counts as a failure when `is_failure(exc)` says so (else
    the dependency answered: a success), and passes through either way.
    """

    name: str

    def call(self, is_failure: FailureTest | None = None) -> AbstractAsyncContextManager[None]: ...


class GuardSource(Protocol):
    """The breakers' registry as a client with several dependencies holds it: the guard of a dependency by name."""

    def get(self, name: str) -> DependencyGuard: ...
