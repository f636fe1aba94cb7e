"""Reference-data sources behind their `refdata:<source>` breakers, against the local source server (tests/refdata).

Unreachable or HTTP errors count; a garbled body does not (the source answered). While open, a
refresh is refused at once (the last good value stays) and the server sees no request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coinwire.core.breaker import BreakerState
from coinwire.refdata.repository import RefDataRepository
from coinwire.refdata.service import RefDataService
from coinwire.refdata.sources import CoinGecko, EcbRates
from coinwire.services.breakers import Breakers
from coinwire.store import Store
from tests.feeds.binance_server import ServerRunner
from tests.refdata.refdata_server import RefDataVenue


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def venue() -> RefDataVenue:
    return RefDataVenue()


@pytest.fixture
async def base_url(venue: RefDataVenue) -> AsyncIterator[str]:
    runner = ServerRunner(venue)
    await runner.start()
    yield f"http://127.0.0.1:{runner.port}"
    await runner.stop()


def asked(venue: RefDataVenue, name: str) -> int:
    return sum(n == name for n, _ in venue.requests)


async def test_a_failing_source_opens_its_breaker_keeps_the_last_value_and_a_probe_closes_it(
    tmp_path: Path, base_url: str, venue: RefDataVenue
) -> None:
    clock = Clock()
    breakers = Breakers(failures=2, reset_seconds=60.0, clock=clock)
    async with Store(f"sqlite:///{tmp_path / 'store.db'}", journal=False) as store:
        service = RefDataService(RefDataRepository(store), fx=EcbRates(f"{base_url}/ecb/eurofxref-daily.xml"),
                                 coins=CoinGecko(f"{base_url}/cg/api/v3"), top=3, breakers=breakers)
        try:
            assert await service.refresh_fx()
            good = service.fx
            venue.refuse("ecb", 503, 502)
            assert not await service.refresh_fx() and not await service.refresh_fx()
            ecb = breakers.get("refdata:ecb").breaker
            assert ecb.state is BreakerState.OPEN and asked(venue, "ecb") == 3
            for _ in range(5):
                assert not await service.refresh_fx()
            assert service.errors["ecb"].code == "dependency_unavailable" and service.fx == good
            assert asked(venue, "ecb") == 3  # refused without a request
            # a garbled body is an answer: the coin source's breaker stays closed however often it happens
            venue.fail("cg", "<html>nope</html>", "<html>nope</html>", "<html>nope</html>")
            for _ in range(3):
                assert not await service.refresh_coins()
            assert breakers.get("refdata:coingecko").breaker.state is BreakerState.CLOSED
            # after reset_seconds the probe goes through and closes it
            clock.now += 60.0
            assert await service.refresh_fx() and "ecb" not in service.errors
            assert ecb.state is BreakerState.CLOSED and asked(venue, "ecb") == 4
        finally:
            await service.close()
