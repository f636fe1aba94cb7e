"""Keeps reference data current: fetches FX rates and top coins hourly, stores them, keeps the last good value.

A fetch that fails (unreachable, an HTTP error, a payload that is not what the source
documents) is logged, counted in `coinwire_refdata_fetches_total{outcome=...}`, and changes
nothing: the last good value stays in use, and its age (`coinwire_refdata_age_seconds`, and
`status()`) says how old it is. A failed source is asked again after `retry` seconds rather
than a whole `interval`. On start the last stored snapshot of each source is loaded, so a
restarted process converts at once, with honest ages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import structlog

from coinwire import metrics
from coinwire.core.breaker import DependencyUnavailable, GuardSource
from coinwire.refdata.repository import RefDataRepository
from coinwire.refdata.sources import CoinSource, CoinStat, FxRates, FxSource, SourceError

__all__ = ["RefDataService"]

log = structlog.get_logger("coinwire.refdata")

_NS = 1_000_000_000


def _source_failed(exc: BaseException) -> bool:
    """A source's failure that is its unavailability (no answer, an HTTP error), not a garbled body."""
    return isinstance(exc, SourceError) and exc.code in ("source_unreachable", "source_http_error")


class RefDataService:
    """The FX and coin sources of one process, their last good values, and the loops that refresh them."""

    def __init__(
        self,
        repository: RefDataRepository,
        *,
        fx: FxSource | None = None,
        coins: CoinSource | None = None,
        top: int = 100,
        interval: float = 3600.0,
        retry: float = 300.0,
        timeout: float = 10.0,
        clock: Callable[[], int] = time.time_ns,
        breakers: GuardSource | None = None,
    ) -> None:
        if top < 1 or interval <= 0 or retry <= 0 or timeout <= 0:
            raise ValueError("top must be >= 1; interval, retry and timeout > 0 seconds")
        self.repository = repository
        self.fx_source = fx
        self.coin_source = coins
        self.top = top
        self.interval = interval
        self.retry = retry
        self.fx: FxRates | None = None
        self.coins: list[CoinStat] = []
        self.fetched_at: dict[str, int] = {}  # source -> ns of the last good fetch
        self.errors: dict[str, SourceError] = {}  # source -> the last failure, while failing
        self._clock = clock
        self.breakers = breakers  # each source behind its `refdata:<source>` breaker
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, loops: bool = True) -> None:
        """Load the last stored values, then (with `loops`) refresh each source now and every `interval`."""
        if self.fx_source is not None:
            self.fx = await self.repository.latest_fx(self.fx_source.name)
        if self.coin_source is not None:
            self.coins = await self.repository.latest_coins(self.coin_source.name)
        if not loops:
            return
        for source, refresh in ((self.fx_source, self.refresh_fx), (self.coin_source, self.refresh_coins)):
            if source is not None:
                self._tasks.append(asyncio.create_task(self._loop(refresh), name=f"refdata-{source.name}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._http.aclose()

    async def refresh_fx(self) -> bool:
        """Fetch and store the FX source's rates; False (last good value kept) when it failed."""
        source = self.fx_source
        if source is None:
            return False
        rates = await self._attempt(source.name, lambda: source.fetch(self._http), self.repository.save_fx)
        if rates is not None:
            self.fx = rates
        return rates is not None

    async def refresh_coins(self) -> bool:
        """Fetch and store the top coins; False (last good list kept) when it failed."""
        source = self.coin_source
        if source is None:
            return False
        coins = await self._attempt(source.name, lambda: source.fetch(self._http, self.top), self.repository.save_coins)
        if coins is not None:
            self.coins = coins
        return coins is not None

    async def _attempt(self, name: str, fetch: Callable[[], Awaitable[Any]], save: Callable[[Any, int], Awaitable[None]]) -> Any:
        """The fetched value once stored, or None (logged and counted) when the source failed."""
        try:
            if self.breakers is None:
                value = await fetch()
            else:
                try:
                    async with self.breakers.get(f"refdata:{name}").call(_source_failed):
                        value = await fetch()
                except DependencyUnavailable as exc:  # paused after repeated failures: the last good value stays
                    raise SourceError(exc.code, name, exc.message) from None
            await save(value, self._clock())
        except SourceError as exc:
            self.errors[name] = exc
            metrics.REFDATA_FETCHES.labels(name, exc.code).inc()
            log.warning("reference data source failed, keeping the last good value", source=name, code=exc.code,
                        error=str(exc), last_good_age=self.age(name))
            return None
        self.errors.pop(name, None)
        self.fetched_at[name] = self._clock()
        metrics.REFDATA_FETCHES.labels(name, "ok").inc()
        self.age(name)
        return value

    def age(self, name: str) -> float | None:
        """Seconds since the data in use for source `name` was true (its own timestamp); None without data."""
        ts: int | None = None
        if self.fx is not None and self.fx.source == name:
            ts = self.fx.ts
        elif self.coins and self.coins[0].source == name:
            ts = min(c.ts for c in self.coins)
        if ts is None:
            return None
        age = max(0.0, (self._clock() - ts) / _NS)
        metrics.REFDATA_AGE.labels(name).set(age)
        return age

    def status(self) -> list[dict[str, Any]]:
        """Each configured source: what it gives, how old its data is, and its failure while failing."""
        out = []
        for kind, source in (("fx", self.fx_source), ("coins", self.coin_source)):
            if source is None:
                continue
            error = self.errors.get(source.name)
            fetched = self.fetched_at.get(source.name)
            out.append({
                "source": source.name,
                "kind": kind,
                "age": None if (age := self.age(source.name)) is None else round(age, 3),
                "fetched_at": None if fetched is None else fetched / _NS,
                "error": None if error is None else {"code": error.code, "message": str(error)},
            })
        return out

    async def _loop(self, refresh: Callable[[], Awaitable[bool]]) -> None:
        while True:
            try:
                ok = await refresh()
            except Exception:  # the store failed: a bug or an outage, not the source; try again later
                log.exception("reference data refresh failed")
                ok = False
            await asyncio.sleep(self.interval if ok else self.retry)
